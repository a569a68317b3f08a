"""Response headers and CORS scoped to the user API prefix (openapi-user.md §1).

The app-wide CORS middleware answers ``*`` without credentials (Service API). Under the prefix
this one answers instead: configured origins only, credentials allowed. CORS headers the inner
middleware adds are dropped, so the two never both answer (``Origin`` still reaches the handlers,
which check it for CSRF).
"""

from __future__ import annotations

from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

FRAME_HEADERS = ((b"x-frame-options", b"DENY"), (b"content-security-policy", b"frame-ancestors 'none'"))


class UserApiMiddleware:
    def __init__(self, app: ASGIApp, prefix: str, cors_origins: list[str]) -> None:
        self._app = app
        self._prefix = prefix
        self._cors = CORSMiddleware(
            self._without_outer_cors,
            allow_origins=cors_origins,
            allow_credentials=True,
            allow_methods=["GET", "POST", "PATCH", "DELETE", "OPTIONS"],
            allow_headers=["Authorization", "Content-Type", "X-CSRF-Token"],
            max_age=600,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not str(scope.get("path", "")).startswith(self._prefix):
            await self._app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                headers.extend(h for h in FRAME_HEADERS if h[0] not in present)
                message = {**message, "headers": headers}
            await send(message)

        await self._cors(scope, receive, send_with_headers)

    async def _without_outer_cors(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Run the inner app, dropping any CORS headers it (the app-wide middleware) added."""

        async def strip(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [
                    (k, v)
                    for k, v in message.get("headers", [])
                    if not k.lower().startswith(b"access-control-")
                ]
                message = {**message, "headers": headers}
            await send(message)

        await self._app(scope, receive, strip)
