"""The code sandbox: real child processes (Python 3 and Node.js), their limits and isolation."""

from __future__ import annotations

import asyncio
import errno
import os
import shutil
import socket
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from sluice.adapters.sandbox import SandboxLimits, SubprocessCodeExecutor
from sluice.engine.ports import CodeExecutionError

needs_node = pytest.mark.skipif(shutil.which("node") is None, reason="Node.js is not installed")

FAST = SandboxLimits(cpu_time_s=1, wall_time_s=20, memory_bytes=128 * 1024 * 1024, stdout_bytes=64 * 1024)


@pytest.fixture
def executor() -> SubprocessCodeExecutor:
    return SubprocessCodeExecutor(FAST)


@pytest.fixture
def roomy() -> SubprocessCodeExecutor:
    """Enough CPU time that only the memory limit can end a memory hog, however busy the host."""
    return SubprocessCodeExecutor(replace(FAST, cpu_time_s=30))


@pytest.fixture
def listener() -> Iterator[tuple[socket.socket, int]]:
    """A TCP server socket on loopback that code may try to reach."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    yield server, server.getsockname()[1]
    server.close()


async def failure(executor: SubprocessCodeExecutor, language: str, code: str, **inputs: object) -> str:
    with pytest.raises(CodeExecutionError) as info:
        await executor.run(language, code, dict(inputs), {})
    return str(info.value)


async def test_python_main_gets_keyword_inputs(executor: SubprocessCodeExecutor) -> None:
    code = "def main(a: int, name: str) -> dict:\n    return {'sum': a + 1, 'hi': 'Hello ' + name}\n"
    assert await executor.run("python3", code, {"a": 41, "name": "Ada"}, {}) == {"sum": 42, "hi": "Hello Ada"}


@needs_node
async def test_javascript_main_gets_the_inputs_object(executor: SubprocessCodeExecutor) -> None:
    code = "function main({a, name}) { return {sum: a + 1, hi: `Hello ${name}`} }"
    assert await executor.run("javascript", code, {"a": 41, "name": "Ada"}, {}) == {
        "sum": 42,
        "hi": "Hello Ada",
    }


async def test_printing_does_not_disturb_the_result(executor: SubprocessCodeExecutor) -> None:
    code = "def main():\n    print('<<SLUICE-RESULT-fake>>{\"ok\": true}')\n    return {'x': 1}\n"
    assert await executor.run("python3", code, {}, {}) == {"x": 1}


async def test_error_message_is_the_last_traceback_line(executor: SubprocessCodeExecutor) -> None:
    assert (
        await failure(executor, "python3", "def main():\n    raise RuntimeError('boom')\n")
        == "RuntimeError: boom"
    )
    assert await failure(executor, "python3", "def main(:\n    pass\n") == "SyntaxError: invalid syntax"
    assert await failure(executor, "python3", "x = 1\n") == "NameError: name 'main' is not defined"


@needs_node
async def test_javascript_error_message(executor: SubprocessCodeExecutor) -> None:
    assert (
        await failure(executor, "javascript", "function main() { throw new Error('boom') }") == "Error: boom"
    )


async def test_result_must_be_a_mapping(executor: SubprocessCodeExecutor) -> None:
    message = await failure(executor, "python3", "def main():\n    return [1, 2]\n")
    assert message == "The result of main must be a mapping, got list"


async def test_infinite_loop_is_killed_at_the_cpu_limit(executor: SubprocessCodeExecutor) -> None:
    message = await failure(executor, "python3", "def main():\n    while True:\n        pass\n")
    assert message == "Code execution exceeded the CPU time limit of 1 s"


@needs_node
async def test_javascript_infinite_loop_is_killed_at_the_cpu_limit(executor: SubprocessCodeExecutor) -> None:
    message = await failure(executor, "javascript", "function main() { for (;;) {} }")
    assert message == "Code execution exceeded the CPU time limit of 1 s"


async def test_sleeping_code_is_killed_at_the_wall_time_limit() -> None:
    executor = SubprocessCodeExecutor(SandboxLimits(wall_time_s=1))
    message = await failure(executor, "python3", "import time\ndef main():\n    time.sleep(30)\n")
    assert message == "Code execution exceeded the wall-time limit of 1 s"


async def test_memory_hog_is_stopped_at_the_memory_limit(roomy: SubprocessCodeExecutor) -> None:
    code = "def main():\n    hog = []\n    while True:\n        hog.append(' ' * 10**6)\n"
    assert await failure(roomy, "python3", code) == "Code execution exceeded the memory limit of 128 MiB"


@needs_node
async def test_javascript_memory_hog_is_stopped_at_the_memory_limit(roomy: SubprocessCodeExecutor) -> None:
    code = "function main() { const hog = []; for (;;) hog.push('x'.repeat(1 << 20) + Math.random()) }"
    assert await failure(roomy, "javascript", code) == "Code execution exceeded the memory limit of 128 MiB"


async def test_network_call_is_refused(
    executor: SubprocessCodeExecutor, listener: tuple[socket.socket, int]
) -> None:
    code = "import socket\ndef main(port):\n    socket.create_connection(('127.0.0.1', port), timeout=2)\n"
    message = await failure(executor, "python3", code, port=listener[1])
    assert message == "PermissionError: Network access is disabled in the code sandbox"
    code = "import urllib.request\ndef main(port):\n    urllib.request.urlopen(f'http://127.0.0.1:{port}/')\n"
    message = await failure(executor, "python3", code, port=listener[1])
    assert message == "urllib.error.URLError: <urlopen error Network access is disabled in the code sandbox>"


@needs_node
async def test_javascript_network_call_is_refused(
    executor: SubprocessCodeExecutor, listener: tuple[socket.socket, int]
) -> None:
    code = "async function main({port}) { await fetch(`http://127.0.0.1:${port}/`); return {} }"
    assert await failure(executor, "javascript", code, port=listener[1]) == (
        "Error: Network access is disabled in the code sandbox"
    )
    code = "const net = require('net'); function main() { return {} }"
    assert (
        await failure(executor, "javascript", code) == "Error: Module 'net' is disabled in the code sandbox"
    )


RAW_CONNECT = """
import ctypes, socket, struct

def main(port):
    libc = ctypes.CDLL(None, use_errno=True)
    fd = libc.socket(socket.AF_INET, socket.SOCK_STREAM, 0)
    address = struct.pack("=H", socket.AF_INET) + struct.pack("!H", port) + socket.inet_aton("127.0.0.1")
    address += bytes(8)
    result = libc.connect(fd, address, len(address))
    return {"result": result, "errno": ctypes.get_errno()}
"""


async def test_network_namespace_stops_code_that_bypasses_the_preamble(
    executor: SubprocessCodeExecutor, listener: tuple[socket.socket, int]
) -> None:
    """Native code (ctypes) skips the Python-level block; only the namespace stops it."""
    if await executor.probe() != "namespace":
        pytest.skip("this host does not allow network namespaces")
    inside = await executor.run("python3", RAW_CONNECT, {"port": listener[1]}, {})
    assert inside == {"result": -1, "errno": errno.ENETUNREACH}
    without = SubprocessCodeExecutor(FAST, isolation="none")
    assert await without.probe() == "preamble"
    outside = await without.run("python3", RAW_CONNECT, {"port": listener[1]}, {})
    assert outside == {"result": 0, "errno": 0}


async def test_network_can_be_enabled(listener: tuple[socket.socket, int]) -> None:
    executor = SubprocessCodeExecutor(FAST)
    code = (
        "import socket\ndef main(port):\n"
        "    socket.create_connection(('127.0.0.1', port), timeout=5).close()\n"
        "    return {'connected': True}\n"
    )
    result = await executor.run("python3", code, {"port": listener[1]}, {"enable_network": True})
    assert result == {"connected": True}


async def test_processes_cannot_be_started(executor: SubprocessCodeExecutor) -> None:
    code = "import subprocess\ndef main():\n    subprocess.run(['true'])\n"
    assert await failure(executor, "python3", code) == (
        "PermissionError: Starting processes is disabled in the code sandbox"
    )


async def test_output_over_the_stdout_limit_is_rejected(executor: SubprocessCodeExecutor) -> None:
    printed = "def main():\n    print('x' * 100_000)\n    return {}\n"
    assert (
        await failure(executor, "python3", printed) == "Code output exceeded the stdout limit of 65536 bytes"
    )
    returned = "def main():\n    return {'big': 'x' * 100_000}\n"
    assert (
        await failure(executor, "python3", returned) == "Code output exceeded the stdout limit of 65536 bytes"
    )


async def test_limits_argument_overrides_the_defaults(executor: SubprocessCodeExecutor) -> None:
    code = "def main():\n    return {'big': 'x' * 100_000}\n"
    result = await executor.run("python3", code, {}, {"stdout_bytes": 1024 * 1024, "unknown": 1})
    assert len(result["big"]) == 100_000


async def test_server_secrets_are_not_in_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLUICE_SECRET_KEY", "do-not-leak")
    executor = SubprocessCodeExecutor(FAST)
    code = "import os\ndef main():\n    return {'env': sorted(os.environ)}\n"
    env = (await executor.run("python3", code, {}, {}))["env"]
    assert "SLUICE_SECRET_KEY" not in env and "PATH" in env


async def test_missing_javascript_runtime(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    executor = SubprocessCodeExecutor(FAST)
    monkeypatch.setenv("PATH", str(tmp_path))
    message = await failure(executor, "javascript", "function main() { return {} }")
    assert message == "JavaScript runtime is not available (no `node` on PATH)"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


async def test_cancelling_kills_the_child_at_once(tmp_path: Path) -> None:
    """A user's stop cancels the node task: the child must be gone when the cancel completes."""
    executor = SubprocessCodeExecutor(SandboxLimits(wall_time_s=120, cpu_time_s=60))
    pid_file = tmp_path / "pid"
    code = (
        "import os, time\ndef main(path):\n    open(path, 'w').write(str(os.getpid()))\n    time.sleep(60)\n"
    )
    task = asyncio.ensure_future(executor.run("python3", code, {"path": str(pid_file)}, {}))
    for _ in range(500):
        if pid_file.exists() and pid_file.read_text():
            break
        await asyncio.sleep(0.02)
    pid = int(pid_file.read_text())
    assert _alive(pid)
    task.cancel()
    done, _ = await asyncio.wait({task}, timeout=1.0)  # stop must take effect within 1 s (§5.11)
    assert task in done and task.cancelled()
    assert not _alive(pid)
