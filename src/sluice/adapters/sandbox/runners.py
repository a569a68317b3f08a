"""The programs the sandbox starts: each reads one JSON request on stdin
(``{code, inputs, token, block_network, memory_mb}``), runs the user's ``main`` and writes one
framed JSON answer to stdout: ``<<SLUICE-RESULT-<token>>>{"ok": ..., ...}<<SLUICE-RESULT-<token>>>``.

The token is random per run, so text the user's code prints can never be taken for the answer.
Besides running ``main``, each preamble refuses to start processes and, unless the network is
enabled, to open sockets through the language's own APIs. That is a convenience layer that gives
clear error messages; the network boundary proper is the network namespace the executor adds
when the host permits it (see ``SubprocessCodeExecutor``).
"""

from __future__ import annotations

PYTHON_RUNNER = r"""
import json, os, sys, traceback


def _sluice_block_processes():
    import subprocess
    try:
        import _posixsubprocess
    except ImportError:
        _posixsubprocess = None

    def deny(*_args, **_kwargs):
        raise PermissionError("Starting processes is disabled in the code sandbox")

    for name in (
        "system", "popen", "fork", "forkpty", "execv", "execve", "execl", "execle", "execlp",
        "execlpe", "execvp", "execvpe", "spawnv", "spawnve", "spawnl", "spawnle", "spawnlp",
        "spawnlpe", "spawnvp", "spawnvpe", "posix_spawn", "posix_spawnp",
    ):
        if hasattr(os, name):
            setattr(os, name, deny)

    class Popen(subprocess.Popen):
        def __init__(self, *_args, **_kwargs):
            deny()

    subprocess.Popen = Popen
    if _posixsubprocess is not None:
        _posixsubprocess.fork_exec = deny


def _sluice_block_network():
    import socket, _socket

    message = "Network access is disabled in the code sandbox"

    def deny(*_args, **_kwargs):
        raise PermissionError(message)

    original = _socket.socket

    class RawSocket(original):
        # socket.socket.__init__ calls _socket.socket.__init__, so this check covers both.
        # Wrapping an existing descriptor (socketpair, as asyncio uses) stays possible.
        def __init__(self, family=-1, type=-1, proto=-1, fileno=None):
            if fileno is None:
                raise PermissionError(message)
            original.__init__(self, family, type, proto, fileno)

    _socket.socket = RawSocket
    _socket.SocketType = RawSocket
    for module in (socket, _socket):
        for name in ("create_connection", "create_server", "getaddrinfo", "gethostbyname",
                     "gethostbyname_ex", "gethostbyaddr", "fromfd"):
            if hasattr(module, name):
                setattr(module, name, deny)


def _sluice_answer(token, payload):
    sys.stdout.flush()
    frame = "<<SLUICE-RESULT-%s>>" % token
    data = (frame + payload + frame).encode("utf-8")
    while data:
        data = data[os.write(1, data):]


def _sluice_run():
    request = json.loads(sys.stdin.buffer.read().decode("utf-8"))
    token = request["token"]
    _sluice_block_processes()
    if request["block_network"]:
        _sluice_block_network()
    scope = {"__name__": "__main__", "__builtins__": __builtins__}
    try:
        exec(compile(request["code"], "<code>", "exec"), scope)
        main = scope.get("main")
        if not callable(main):
            raise NameError("name 'main' is not defined")
        payload = json.dumps({"ok": True, "result": main(**request["inputs"])}, ensure_ascii=False)
    except BaseException as exc:
        answer = {"ok": False, "error": traceback.format_exception_only(type(exc), exc)[-1].strip()}
        if isinstance(exc, MemoryError):
            answer["limit"] = "memory"
        payload = json.dumps(answer)
    _sluice_answer(token, payload)
    os._exit(0)


_sluice_run()
"""

JAVASCRIPT_RUNNER = r"""
'use strict';
const fs = require('fs');
const vm = require('vm');
const Module = require('module');

const request = JSON.parse(fs.readFileSync(0, 'utf8'));
const frame = `<<SLUICE-RESULT-${request.token}>>`;
const networkMessage = 'Network access is disabled in the code sandbox';

const blocked = new Set(['child_process', 'cluster', 'worker_threads', 'inspector']);
if (request.block_network) {
  for (const name of ['net', 'tls', 'http', 'https', 'http2', 'dgram', 'dns', 'undici']) {
    blocked.add(name);
  }
  const deny = () => { throw new Error(networkMessage); };
  globalThis.fetch = deny;
  for (const name of ['WebSocket', 'EventSource']) {
    if (name in globalThis) globalThis[name] = deny;
  }
}
const load = Module._load;
Module._load = function sandboxedLoad(name, ...rest) {
  const bare = String(name).replace(/^node:/, '').split('/')[0];
  if (blocked.has(bare)) {
    throw new Error(`Module '${bare}' is disabled in the code sandbox`);
  }
  return load.call(this, name, ...rest);
};
for (const name of ['binding', '_linkedBinding', 'dlopen']) {
  process[name] = () => { throw new Error(`process.${name} is disabled in the code sandbox`); };
}
globalThis.require = require;

function answer(payload) {
  const data = Buffer.from(frame + payload + frame, 'utf8');
  let offset = 0;
  while (offset < data.length) offset += fs.writeSync(1, data, offset);
}

(async () => {
  let payload;
  try {
    vm.runInThisContext(request.code, { filename: 'code.js' });
    const main = vm.runInThisContext("typeof main === 'function' ? main : undefined");
    if (typeof main !== 'function') throw new ReferenceError('main is not defined');
    let result = main(request.inputs);
    if (result && typeof result.then === 'function') result = await result;
    payload = JSON.stringify({ ok: true, result: result === undefined ? null : result });
  } catch (err) {
    const message = err instanceof Error ? `${err.name}: ${err.message}` : `Error: ${String(err)}`;
    const limit = err instanceof RangeError && /allocation failed|out of memory/i.test(err.message);
    const failure = { ok: false, error: message };
    if (limit) failure.limit = 'memory';
    payload = JSON.stringify(failure);
  }
  answer(payload);
  process.exit(0);
})();
"""
