"""``SubprocessCodeExecutor``: the engine's ``CodeExecutor`` port, one child process per run.

What is enforced, for every run:

- **wall time**: the child's whole process group is killed with SIGKILL at ``wall_time_s``;
- **CPU time**: ``RLIMIT_CPU`` (SIGXCPU at the limit, SIGKILL one second later);
- **memory**: Python under ``RLIMIT_AS``; Node.js under ``RLIMIT_DATA`` plus
  ``--max-old-space-size`` (V8 reserves more address space than any sensible ``RLIMIT_AS``);
- **stdout**: at most ``stdout_bytes`` (the framed result included); more kills the child;
- **cancellation**: cancelling ``run`` kills the process group and reaps it before returning, so a
  user's stop never leaves a program running;
- **environment**: a scrubbed environment (no ``SLUICE_*`` secrets, no proxies) and a fresh
  temporary working directory, removed afterwards;
- **no network** (unless enabled): when the host allows it the child runs in a new network
  namespace (``unshare --user --map-root-user --net``, else ``unshare --net``): it has no
  interface but a loopback that is down, whatever code path it uses, native code included. The
  user namespace also means root inside cannot raise the limits above. Where neither is
  permitted, only the runner preamble stands: Python ``socket`` and Node's ``net``/``http``/
  ``fetch`` refuse to open connections and processes cannot be started, which stops ordinary
  code but not deliberately hostile native code (``ctypes``). ``isolation`` says which applies.

Not enforced: the file system (the child runs as the server's user, as Dify's sandbox does not).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import resource
import secrets
import shutil
import signal
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from sluice.adapters.sandbox.runners import JAVASCRIPT_RUNNER, PYTHON_RUNNER
from sluice.engine.ports import CodeExecutionError

log = logging.getLogger("sluice.sandbox")

NAMESPACE_PREFIXES: tuple[tuple[str, ...], ...] = (
    ("unshare", "--user", "--map-root-user", "--net", "--"),
    ("unshare", "--net", "--"),
)
STDERR_KEEP = 16 * 1024
OOM_MARKERS = ("out of memory", "bad_alloc", "failed to reserve", "allocation failed", "memoryerror")


@dataclass(frozen=True, slots=True)
class SandboxLimits:
    cpu_time_s: float = 10
    wall_time_s: float = 15
    memory_bytes: int = 256 * 1024 * 1024
    stdout_bytes: int = 1024 * 1024
    enable_network: bool = False

    def merged(self, overrides: dict[str, Any]) -> SandboxLimits:
        """These limits with the port call's overrides (unknown keys are ignored)."""
        known = {k: v for k, v in overrides.items() if k in self.__dataclass_fields__ and v is not None}
        return replace(self, **known) if known else self

    @property
    def memory_mib(self) -> int:
        return max(1, self.memory_bytes // (1024 * 1024))


class SubprocessCodeExecutor:
    """Runs ``python3`` and ``javascript`` code nodes in child processes (see the module doc)."""

    def __init__(
        self,
        limits: SandboxLimits | None = None,
        *,
        python: str | None = None,
        node: str | None = None,
        isolation: str = "auto",
    ) -> None:
        self.limits = limits or SandboxLimits()
        self._python = python or sys.executable
        self._node = node
        self._want_isolation = isolation
        self._prefix: tuple[str, ...] | None = None
        self._probe_lock = asyncio.Lock()
        self._prlimit = shutil.which("prlimit")

    @property
    def isolation(self) -> str | None:
        """``namespace`` or ``preamble`` once the first run has probed the host, else None."""
        if self._prefix is None:
            return None
        return "namespace" if self._prefix else "preamble"

    async def probe(self) -> str:
        """Find out (once) whether a network namespace can be created here."""
        async with self._probe_lock:
            if self._prefix is None:
                self._prefix = await self._find_prefix()
                log.info("code sandbox network isolation: %s", self.isolation)
        return self.isolation or "preamble"

    async def _find_prefix(self) -> tuple[str, ...]:
        if self._want_isolation == "none" or shutil.which("unshare") is None:
            return ()
        for prefix in NAMESPACE_PREFIXES:
            try:
                proc = await asyncio.create_subprocess_exec(
                    *prefix,
                    "true",
                    stdin=asyncio.subprocess.DEVNULL,
                    stdout=asyncio.subprocess.DEVNULL,
                    stderr=asyncio.subprocess.DEVNULL,
                )
                if await proc.wait() == 0:
                    return prefix
            except OSError:
                continue
        return ()

    async def run(
        self, language: str, code: str, inputs: dict[str, Any], limits: dict[str, Any]
    ) -> dict[str, Any]:
        effective = self.limits.merged(limits or {})
        if language == "python3":
            argv = [self._python, "-I", "-c", PYTHON_RUNNER]
        elif language == "javascript":
            node = self._node or shutil.which("node")
            if node is None:
                raise CodeExecutionError("JavaScript runtime is not available (no `node` on PATH)")
            # V8's own heap limit sits below RLIMIT_DATA so a hog usually ends in a clean V8
            # "heap out of memory" rather than a failed mmap somewhere in the runtime.
            heap = max(16, effective.memory_mib * 3 // 4)
            argv = [node, f"--max-old-space-size={heap}", "-e", JAVASCRIPT_RUNNER]
        else:
            raise CodeExecutionError(f"Unsupported code language: {language}")
        if not effective.enable_network:
            await self.probe()
            argv = [*(self._prefix or ()), *argv]
        token = secrets.token_hex(16)
        request = {
            "code": code,
            "inputs": inputs,
            "token": token,
            "block_network": not effective.enable_network,
            "memory_mb": effective.memory_mib,
        }
        stdin = json.dumps(request, ensure_ascii=False, default=str).encode("utf-8")
        memory_limit = resource.RLIMIT_AS if language == "python3" else resource.RLIMIT_DATA
        outcome = await self._execute(argv, stdin, effective, memory_limit)
        return _answer(outcome, token, effective, language)

    def _limit_argv(
        self, limits: SandboxLimits, memory_limit: int
    ) -> tuple[list[str], Callable[[], None] | None]:
        """The rlimits, set by ``prlimit`` when present, else in the child before ``exec``."""
        cpu = max(1, int(limits.cpu_time_s + 0.999))
        if self._prlimit:
            memory_flag = "--as" if memory_limit == resource.RLIMIT_AS else "--data"
            return (
                [
                    self._prlimit,
                    f"--cpu={cpu}:{cpu + 1}",
                    f"{memory_flag}={limits.memory_bytes}:{limits.memory_bytes}",
                    "--core=0:0",
                    "--",
                ],
                None,
            )

        def set_limits() -> None:
            resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
            resource.setrlimit(memory_limit, (limits.memory_bytes, limits.memory_bytes))
            resource.setrlimit(resource.RLIMIT_CORE, (0, 0))

        return [], set_limits

    async def _execute(
        self, argv: list[str], stdin: bytes, limits: SandboxLimits, memory_limit: int
    ) -> _Outcome:
        workdir = tempfile.mkdtemp(prefix="sluice-code-")
        env = {
            "PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
            "LANG": "C.UTF-8",
            "LC_ALL": "C.UTF-8",
            "HOME": workdir,
            "TMPDIR": workdir,
            "PYTHONIOENCODING": "utf-8",
            "PYTHONDONTWRITEBYTECODE": "1",
        }
        prefix, preexec = self._limit_argv(limits, memory_limit)
        proc: asyncio.subprocess.Process | None = None
        try:
            proc = await asyncio.create_subprocess_exec(
                *prefix,
                *argv,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                cwd=workdir,
                env=env,
                start_new_session=True,
                preexec_fn=preexec,
            )
            return await _supervise(proc, stdin, limits)
        except OSError as exc:
            raise CodeExecutionError(f"Code sandbox could not start: {exc}") from exc
        finally:
            if proc is not None and proc.returncode is None:
                _kill_group(proc)
                with contextlib.suppress(ProcessLookupError, ChildProcessError):
                    await asyncio.shield(proc.wait())
            shutil.rmtree(workdir, ignore_errors=True)


@dataclass(slots=True)
class _Outcome:
    stdout: bytes
    stderr: bytes
    returncode: int | None
    timed_out: bool = False
    stdout_overflow: bool = False


def _kill_group(proc: asyncio.subprocess.Process) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(ProcessLookupError):
        proc.kill()


async def _supervise(proc: asyncio.subprocess.Process, stdin: bytes, limits: SandboxLimits) -> _Outcome:
    assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
    stdout = bytearray()
    stderr = bytearray()
    overflow = False

    async def feed() -> None:
        assert proc.stdin is not None
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            proc.stdin.write(stdin)
            await proc.stdin.drain()
            proc.stdin.close()

    async def read_stdout() -> None:
        nonlocal overflow
        assert proc.stdout is not None
        while chunk := await proc.stdout.read(65536):
            stdout.extend(chunk)
            if len(stdout) > limits.stdout_bytes:
                overflow = True
                _kill_group(proc)
                return

    async def read_stderr() -> None:
        assert proc.stderr is not None
        while chunk := await proc.stderr.read(65536):
            stderr.extend(chunk)
            if len(stderr) > 2 * STDERR_KEEP:
                del stderr[:-STDERR_KEEP]

    timed_out = False
    try:
        async with asyncio.timeout(limits.wall_time_s):
            await asyncio.gather(feed(), read_stdout(), read_stderr())
            await proc.wait()
    except TimeoutError:
        timed_out = True
        _kill_group(proc)
        await proc.wait()
    return _Outcome(bytes(stdout), bytes(stderr), proc.returncode, timed_out, overflow)


def _answer(outcome: _Outcome, token: str, limits: SandboxLimits, language: str) -> dict[str, Any]:
    if outcome.timed_out:
        raise CodeExecutionError(f"Code execution exceeded the wall-time limit of {limits.wall_time_s:g} s")
    if outcome.stdout_overflow:
        raise CodeExecutionError(f"Code output exceeded the stdout limit of {limits.stdout_bytes} bytes")
    memory_error = f"Code execution exceeded the memory limit of {limits.memory_mib} MiB"
    frame = f"<<SLUICE-RESULT-{token}>>".encode()
    end = outcome.stdout.rfind(frame)
    start = outcome.stdout.rfind(frame, 0, end) if end > 0 else -1
    if start < 0:
        raise CodeExecutionError(_crash_message(outcome, limits, memory_error, language))
    try:
        answer = json.loads(outcome.stdout[start + len(frame) : end].decode("utf-8"))
    except ValueError as exc:
        raise CodeExecutionError(f"Code sandbox returned an unreadable result: {exc}") from exc
    if not answer.get("ok"):
        if answer.get("limit") == "memory":
            raise CodeExecutionError(memory_error)
        raise CodeExecutionError(str(answer.get("error") or "Code execution failed"))
    result = answer.get("result")
    if not isinstance(result, dict):
        kind = "null" if result is None else type(result).__name__
        raise CodeExecutionError(f"The result of main must be a mapping, got {kind}")
    return result


def _crash_message(outcome: _Outcome, limits: SandboxLimits, memory_error: str, language: str) -> str:
    """Why a child ended without an answer: a limit's signal, a runtime abort, or its stderr.

    Node.js cannot answer once an allocation fails: V8 aborts, or faults when ``RLIMIT_DATA``
    refuses memory outside its heap. The runner itself never crashes, so a Node.js child killed
    by SIGABRT, SIGSEGV, SIGBUS or SIGTRAP has run out of memory.
    """
    code = outcome.returncode
    text = outcome.stderr.decode("utf-8", "replace")
    out_of_memory = any(marker in text.lower() for marker in OOM_MARKERS)
    if code in (-signal.SIGXCPU, -signal.SIGKILL) and not out_of_memory:
        return f"Code execution exceeded the CPU time limit of {limits.cpu_time_s:g} s"
    crash_signals = (-signal.SIGABRT, -signal.SIGSEGV, -signal.SIGBUS, -signal.SIGTRAP)
    if out_of_memory or (language == "javascript" and code in crash_signals):
        return memory_error
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if lines:
        return lines[-1]
    return f"Code execution failed (exit status {code})"
