"""Locating the real PostgreSQL and Redis servers for service-backed tests.

Tests that need them skip when they are absent, and fail instead when
``SLUICE_TEST_REQUIRE_SERVICES=1`` (as in CI), so a missing server can never hide a failure.
"""

from __future__ import annotations

import os
import socket
import uuid
from urllib.parse import urlsplit

import pytest

DEFAULT_PG = "postgresql://postgres@127.0.0.1:5432/test"
DEFAULT_REDIS = "redis://127.0.0.1:6379/0"


def require_services() -> bool:
    return os.environ.get("SLUICE_TEST_REQUIRE_SERVICES", "") not in ("", "0", "false")


def _reachable(url: str) -> bool:
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 0), timeout=1):
            return True
    except OSError:
        return False


def service_url(env_name: str, default: str) -> str:
    """The server's URL, or skip (fail when services are required) if it cannot be reached."""
    url = os.environ.get(env_name, default)
    if not _reachable(url):
        message = f"{env_name}: no server at {url}"
        if require_services():
            pytest.fail(message + " (SLUICE_TEST_REQUIRE_SERVICES=1)")
        pytest.skip(message)
    return url


def pg_admin_url() -> str:
    return service_url("TEST_DATABASE_URL", DEFAULT_PG)


def redis_url() -> str:
    return service_url("TEST_REDIS_URL", DEFAULT_REDIS)


def unique_name(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:12]}"
