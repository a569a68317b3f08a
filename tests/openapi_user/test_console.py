"""The console API and the sign-in page (openapi-user.md §7): session cookie, CSRF, failed-login
limit, imports into the session's workspace, API keys, the enable_api switch, run listings, and
workspace isolation; plus ``sluice accounts create`` error handling."""

from __future__ import annotations

import re

from tests.openapi_user.conftest import (
    FIXTURES,
    PASSWORD,
    Stack,
    assert_canonical,
    build_world,
    console_login,
)

C = "/console/api"


async def test_console_session_and_apps(stack: Stack) -> None:
    world = await build_world(stack)
    client = stack.client()
    resp = await client.post(f"{C}/login", json={"email": world.ann.email.upper(), "password": PASSWORD})
    assert resp.status_code == 200, resp.text
    cookie = resp.headers["set-cookie"]
    assert "sluice_session=" in cookie and "HttpOnly" in cookie and "samesite=lax" in cookie.lower()
    assert "Path=/" in cookie and "Secure" not in cookie
    body = resp.json()
    csrf = body["csrf_token"]
    assert body["current_workspace_id"] == world.w.id and body["account"]["id"] == world.ann.id
    assert (await client.get(f"{C}/session")).json()["csrf_token"] == csrf

    apps = (await client.get(f"{C}/apps")).json()["data"]
    assert {a["id"] for a in apps} == {world.a, world.c, world.d}
    assert next(a for a in apps if a["id"] == world.d)["enable_api"] is False
    assert_canonical(await client.get(f"{C}/apps", params={"workspace_id": world.w2.id}), 404, "not_found")

    yml = (FIXTURES / "app_a.yml").read_text()
    assert_canonical(
        await client.post(f"{C}/apps/imports", json={"yaml_content": yml}), 403, "forbidden", "csrf_mismatch"
    )
    imported = await client.post(
        f"{C}/apps/imports", json={"yaml_content": yml}, headers={"X-CSRF-Token": csrf}
    )
    assert imported.status_code == 201, imported.text
    app_id = imported.json()["app_id"]
    bad = await client.post(
        f"{C}/apps/imports", json={"yaml_content": "kind: nope"}, headers={"X-CSRF-Token": csrf}
    )
    assert bad.status_code == 400

    key = await client.post(f"{C}/apps/{app_id}/api-keys", headers={"X-CSRF-Token": csrf})
    assert key.status_code == 201 and re.match(r"^app-[A-Za-z0-9]{24}$", key.json()["token"])
    off = await client.post(
        f"{C}/apps/{app_id}/api-enable", json={"enable_api": False}, headers={"X-CSRF-Token": csrf}
    )
    assert off.json() == {"enable_api": False}
    runs = (await client.get(f"{C}/apps/{world.a}/workflow-runs")).json()
    assert runs == {"page": 1, "limit": 20, "total": 0, "has_more": False, "data": []}

    for path in (f"{C}/apps/{world.e}/api-keys", f"{C}/apps/{world.e}/api-enable"):
        resp = await client.post(path, json={"enable_api": True}, headers={"X-CSRF-Token": csrf})
        assert_canonical(resp, 404, "not_found", "app not found")
    assert_canonical(await client.get(f"{C}/apps/{world.e}/workflow-runs"), 404, "not_found")

    out = await client.post(f"{C}/logout", headers={"X-CSRF-Token": csrf})
    assert out.status_code == 200
    assert_canonical(await client.get(f"{C}/session"), 401, "unauthorized", "console session required")


async def test_console_login_failures_are_limited(stack: Stack) -> None:
    world = await build_world(stack)
    client = stack.client()
    for _ in range(10):
        resp = await client.post(f"{C}/login", json={"email": world.ann.email, "password": "wrong password"})
        assert_canonical(resp, 401, "unauthorized", "Invalid email or password.")
    limited = await client.post(f"{C}/login", json={"email": world.ann.email, "password": PASSWORD})
    assert_canonical(limited, 429, "too_many_requests", "rate_limited")
    other_ip = stack.client()
    assert (
        await other_ip.post(f"{C}/login", json={"email": world.ann.email, "password": PASSWORD})
    ).status_code == 200
    stack.clock.advance(15 * 60 + 1)
    assert (
        await client.post(f"{C}/login", json={"email": world.ann.email, "password": PASSWORD})
    ).status_code == 200
    unknown = await client.post(f"{C}/login", json={"email": "nobody@example.com", "password": PASSWORD})
    assert_canonical(unknown, 401, "unauthorized", "Invalid email or password.")


async def test_session_expires(stack: Stack) -> None:
    world = await build_world(stack)
    client = stack.client()
    await console_login(client, world.ann.email)
    stack.clock.advance(168 * 3600 + 1)
    assert (await client.get(f"{C}/session")).status_code == 401


async def test_sign_in_page(stack: Stack) -> None:
    world = await build_world(stack)
    client = stack.client()
    device = await client.get("/device", params={"user_code": "abcd efgh"})
    assert (
        device.status_code == 303
        and device.headers["location"] == "/login?next=%2Fdevice%3Fuser_code%3Dabcd%2Befgh"
    )
    page = await client.get("/login", params={"next": "/device"})
    assert page.status_code == 200
    for header, value in (
        ("cache-control", "no-store"),
        ("x-frame-options", "DENY"),
        ("referrer-policy", "no-referrer"),
        ("content-security-policy", "default-src 'self'; frame-ancestors 'none'; form-action 'self'"),
    ):
        assert page.headers[header] == value
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert token and 'id="login-form"' in page.text and 'id="login-button"' in page.text
    form = {"email": world.ann.email, "password": PASSWORD, "next": "/device", "csrf_token": "forged"}
    forged = await client.post("/login", data=form)
    assert forged.status_code == 403
    token = re.search(r'name="csrf_token" value="([^"]+)"', forged.text)  # each form gets a new token
    assert token
    wrong = await client.post("/login", data={**form, "csrf_token": token.group(1), "password": "nope"})
    assert wrong.status_code == 401 and "Invalid email or password." in wrong.text
    fresh = re.search(r'name="csrf_token" value="([^"]+)"', wrong.text)
    assert fresh
    evil = await client.post(
        "/login", data={**form, "csrf_token": fresh.group(1), "next": "//evil.example/x"}
    )
    assert evil.status_code == 303 and evil.headers["location"] == "/device"
    assert "sluice_session=" in evil.headers["set-cookie"]
    code_form = await client.get("/device")
    assert 'id="device-code-form"' in code_form.text and world.ann.email in code_form.text
    bad = await client.get("/device", params={"user_code": "ZZZZ-ZZZZ"})
    assert "This code is invalid or has expired." in bad.text
    missing_csrf = await client.post("/device", data={"user_code": "ZZZZ-ZZZZ", "action": "approve"})
    assert missing_csrf.status_code == 403 and 'data-status="error"' in missing_csrf.text
