"""A loopback TCP proxy that drops the first connection whose request matches a marker after a
given number of response bytes, so a client's resume path runs against a real server."""

from __future__ import annotations

import socket
import threading
from dataclasses import dataclass, field


@dataclass
class CutProxy:
    upstream: tuple[str, int]
    marker: bytes
    cut_after: int
    cuts: int = 0
    connections: int = 0
    _server: socket.socket = field(init=False)
    _threads: list[threading.Thread] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._server = socket.socket()
        self._server.bind(("127.0.0.1", 0))
        self._server.listen(16)
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.getsockname()[1]}"

    def close(self) -> None:
        self._server.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        upstream = socket.create_connection(self.upstream)
        request = client.recv(65536)
        cut = self.marker in request and self.cuts == 0
        if cut:
            self.cuts += 1
        upstream.sendall(request)
        threading.Thread(target=self._pipe, args=(client, upstream), daemon=True).start()
        sent = 0
        try:
            while True:
                chunk = upstream.recv(256 if cut else 65536)
                if not chunk:
                    break
                client.sendall(chunk)
                sent += len(chunk)
                if cut and sent >= self.cut_after:
                    break
        except OSError:
            pass
        finally:
            for sock in (client, upstream):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                sock.close()

    @staticmethod
    def _pipe(source: socket.socket, target: socket.socket) -> None:
        try:
            while chunk := source.recv(65536):
                target.sendall(chunk)
        except OSError:
            return
