"""Outbound HTTP for the engine (§4.5): an httpx transport that only connects where the SSRF
policy allows."""

from sluice.adapters.http.guard import RequestBlocked, SsrfPolicy, is_public
from sluice.adapters.http.transport import GuardedHttpTransport

__all__ = ["GuardedHttpTransport", "RequestBlocked", "SsrfPolicy", "is_public"]
