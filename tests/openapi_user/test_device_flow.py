"""Device authorization flow (openapi-user.md §6; acceptance scenarios 2, 4–8) on the real app
with an injected clock, on SQLite and on PostgreSQL + Redis."""

from __future__ import annotations

import asyncio
import re
from datetime import datetime, timedelta

import httpx
from sqlmodel import col, select

from sluice.adapters.sql.tables import DeviceAuthorization, OAuthAccessToken
from sluice.services.accounts import sha256_hex
from sluice.services.user_errors import OAuthProtocolError
from tests.openapi_user.conftest import Stack, assert_canonical, build_world, console_login

CODE = "/openapi/v1/oauth/device/code"
TOKEN = "/openapi/v1/oauth/device/token"
LOOKUP = "/openapi/v1/oauth/device/lookup"
APPROVE = "/openapi/v1/oauth/device/approve"
DENY = "/openapi/v1/oauth/device/deny"
USER_CODE_RE = re.compile(r"^[A-HJ-NP-Y3-9]{4}-[A-HJ-NP-Y3-9]{4}$")


async def new_code(client: httpx.AsyncClient, label: str = "difyctl on h1") -> dict[str, object]:
    resp = await client.post(CODE, json={"client_id": "difyctl", "device_label": label})
    assert resp.status_code == 200, resp.text
    return dict(resp.json())


async def poll(client: httpx.AsyncClient, device_code: object) -> httpx.Response:
    return await client.post(TOKEN, json={"device_code": device_code, "client_id": "difyctl"})


async def test_full_flow_scenario_2(stack: Stack) -> None:
    world = await build_world(stack)
    device, browser = stack.client(), stack.client()
    code = await new_code(device)
    assert re.match(r"^dc_[A-Za-z0-9_-]{32}$", str(code["device_code"]))
    assert USER_CODE_RE.match(str(code["user_code"]))
    assert code["expires_in"] == 900 and code["interval"] == 5
    assert str(code["verification_uri"]).endswith("/device")
    assert "verification_uri_complete" not in code

    first = await poll(device, code["device_code"])
    assert first.status_code == 400 and first.json() == {"error": "authorization_pending"}
    assert first.headers["cache-control"] == "no-store"
    stack.clock.advance(2)
    assert (await poll(device, code["device_code"])).json() == {"error": "slow_down"}

    csrf = await console_login(browser, world.ann.email)
    approved = await browser.post(
        APPROVE, json={"user_code": code["user_code"]}, headers={"X-CSRF-Token": csrf}
    )
    assert approved.status_code == 200 and approved.json() == {"status": "approved"}

    stack.clock.advance(6)
    granted = await poll(device, code["device_code"])
    assert granted.status_code == 200, granted.text
    body = granted.json()
    assert re.match(r"^dfoa_[A-Za-z0-9_-]{43}$", body["token"])
    expires = datetime.fromisoformat(body["expires_at"])
    assert body["expires_at"].endswith("+00:00")
    assert expires == stack.clock.now() + timedelta(days=14)
    assert body["subject_type"] == "account"
    assert body["account"] == {"id": world.ann.id, "email": world.ann.email, "name": "Ann"}
    assert body["workspaces"] == [{"id": world.w.id, "name": world.w.name, "role": "owner"}]
    assert body["default_workspace_id"] == world.w.id
    assert isinstance(body["token_id"], str)

    stack.clock.advance(6)
    again = await poll(device, code["device_code"])
    assert again.status_code == 400 and again.json() == {"error": "expired_token"}

    async with stack.app.state.container.db() as session:
        row = (
            await session.exec(select(OAuthAccessToken).where(OAuthAccessToken.id == body["token_id"]))
        ).one()
    assert row.token_hash == sha256_hex(body["token"]) and row.prefix == "dfoa_"
    assert row.client_id == "difyctl" and row.device_label == "difyctl on h1"


async def test_deny_then_poll_is_access_denied(stack: Stack) -> None:
    world = await build_world(stack)
    device, browser = stack.client(), stack.client()
    code = await new_code(device)
    csrf = await console_login(browser, world.ann.email)
    denied = await browser.post(DENY, json={"user_code": code["user_code"]}, headers={"X-CSRF-Token": csrf})
    assert denied.status_code == 200 and denied.json() == {"status": "denied"}
    assert (await poll(device, code["device_code"])).json() == {"error": "access_denied"}
    stack.clock.advance(6)
    assert (await poll(device, code["device_code"])).json() == {"error": "expired_token"}


async def test_expiry_scenario_4(stack: Stack) -> None:
    world = await build_world(stack)
    device, browser = stack.client(), stack.client()
    code = await new_code(device)
    stack.clock.advance(901)
    assert (await poll(device, code["device_code"])).json() == {"error": "expired_token"}
    lookup = await device.get(LOOKUP, params={"user_code": code["user_code"]})
    assert lookup.json() == {"valid": False, "expires_in_remaining": 0, "client_id": None}
    csrf = await console_login(browser, world.ann.email)
    resp = await browser.post(APPROVE, json={"user_code": code["user_code"]}, headers={"X-CSRF-Token": csrf})
    assert resp.status_code == 404 and resp.json() == {"error": "expired_or_unknown"}


async def test_concurrent_polls_and_consumes_scenario_5(stack: Stack) -> None:
    world = await build_world(stack)
    device, browser = stack.client(), stack.client()
    csrf = await console_login(browser, world.ann.email)
    code = await new_code(device)
    await browser.post(APPROVE, json={"user_code": code["user_code"]}, headers={"X-CSRF-Token": csrf})
    answers = await asyncio.gather(*(poll(device, code["device_code"]) for _ in range(10)))
    assert sorted(r.status_code for r in answers) == [200] + [400] * 9
    assert {r.json()["error"] for r in answers if r.status_code == 400} <= {"slow_down", "expired_token"}

    # The consume itself, called ten times at once: one token row.
    code2 = await new_code(device, "difyctl on h2")
    await browser.post(APPROVE, json={"user_code": code2["user_code"]}, headers={"X-CSRF-Token": csrf})
    devices = stack.users.devices
    outcomes = await asyncio.gather(
        *(devices.redeem(sha256_hex(str(code2["device_code"]))) for _ in range(10)), return_exceptions=True
    )
    wins = [o for o in outcomes if isinstance(o, dict)]
    losses = [o for o in outcomes if isinstance(o, OAuthProtocolError)]
    assert len(wins) == 1 and len(losses) == 9, outcomes
    assert {e.error for e in losses} == {"expired_token"}
    async with stack.app.state.container.db() as session:
        rows = (
            await session.exec(
                select(OAuthAccessToken).where(
                    col(OAuthAccessToken.device_label) == "difyctl on h2",
                    col(OAuthAccessToken.account_id) == world.ann.id,
                )
            )
        ).all()
    assert len(rows) == 1


async def test_code_validation_and_ip_limit_scenario_6(stack: Stack) -> None:
    device = stack.client()
    resp = await device.post(CODE, json={"client_id": "curl", "device_label": "x"})
    assert resp.status_code == 400 and resp.json() == {"error": "unsupported_client"}
    for raw in ("{}", "[]", '{"client_id":'):
        bad = await device.post(CODE, content=raw, headers={"Content-Type": "application/json"})
        assert_canonical(bad, 400, "bad_request")
    details = (await device.post(CODE, content="{}", headers={"Content-Type": "application/json"})).json()[
        "details"
    ]
    assert {tuple(d["loc"]) for d in details} == {("client_id",), ("device_label",)}
    blank = await device.post(CODE, json={"client_id": "difyctl", "device_label": "   "})
    assert_canonical(blank, 400, "bad_request", "Request validation failed")

    limited = stack.client()
    for _ in range(60):
        assert (
            await limited.post(CODE, json={"client_id": "difyctl", "device_label": "h"})
        ).status_code == 200
    over = await limited.post(CODE, json={"client_id": "difyctl", "device_label": "h"})
    body = assert_canonical(over, 429, "too_many_requests", "rate_limited")
    assert set(body) == {"code", "message", "status"}
    assert int(over.headers["retry-after"]) >= 1
    stack.clock.advance(3601)
    assert (await limited.post(CODE, json={"client_id": "difyctl", "device_label": "h"})).status_code == 200


async def test_approve_rules_scenario_7(stack: Stack) -> None:
    world = await build_world(stack)
    device, browser, anonymous = stack.client(), stack.client(), stack.client()
    code = await new_code(device)
    no_session = await anonymous.post(APPROVE, json={"user_code": code["user_code"]})
    assert_canonical(no_session, 401, "unauthorized", "console session required")
    csrf = await console_login(browser, world.ann.email)
    missing = await browser.post(APPROVE, json={"user_code": code["user_code"]})
    assert_canonical(missing, 403, "forbidden", "csrf_mismatch")
    wrong = await browser.post(
        APPROVE, json={"user_code": code["user_code"]}, headers={"X-CSRF-Token": "nope"}
    )
    assert_canonical(wrong, 403, "forbidden", "csrf_mismatch")
    foreign = await browser.post(
        APPROVE,
        json={"user_code": code["user_code"]},
        headers={"X-CSRF-Token": csrf, "Origin": "https://evil.example"},
    )
    assert_canonical(foreign, 403, "forbidden", "csrf_mismatch")
    forged = await browser.post(
        APPROVE,
        json={"user_code": code["user_code"], "account_id": world.bob.id, "workspace_id": world.w2.id},
        headers={"X-CSRF-Token": csrf},
    )
    assert forged.json() == {"status": "approved"}
    second = await browser.post(
        APPROVE, json={"user_code": code["user_code"]}, headers={"X-CSRF-Token": csrf}
    )
    assert second.status_code == 409 and second.json() == {"error": "already_resolved"}
    token = (await poll(device, code["device_code"])).json()
    assert token["account"]["id"] == world.ann.id and token["default_workspace_id"] == world.w.id

    bad_body = await browser.post(APPROVE, json={"code": "x"}, headers={"X-CSRF-Token": csrf})
    assert_canonical(bad_body, 400, "bad_request", "Request validation failed")
    # The 11th approve/deny of this session within the hour → 429 (3 counted so far; failed
    # session and CSRF checks come before the limit and are not counted).
    for _ in range(7):
        resp = await browser.post(DENY, json={"user_code": "AAAA-AAAA"}, headers={"X-CSRF-Token": csrf})
        assert resp.status_code == 404 and resp.json() == {"error": "expired_or_unknown"}
    over = await browser.post(DENY, json={"user_code": "AAAA-AAAA"}, headers={"X-CSRF-Token": csrf})
    assert_canonical(over, 429, "too_many_requests", "rate_limited")
    assert int(over.headers["retry-after"]) >= 1


async def test_lookup_scenario_8(stack: Stack) -> None:
    device = stack.client()
    unknown = await device.get(LOOKUP, params={"user_code": "WDJB-MJHT"})
    assert unknown.json() == {"valid": False, "expires_in_remaining": 0, "client_id": None}
    code = await new_code(device)
    chars = str(code["user_code"]).replace("-", "").lower()
    spaced = f" {chars[:4]} {chars[4:]} "
    pending = await device.get(LOOKUP, params={"user_code": spaced})
    assert pending.json() == {"valid": True, "expires_in_remaining": 900, "client_id": "difyctl"}
    stack.clock.advance(300)
    later = await device.get(LOOKUP, params={"user_code": code["user_code"]})
    assert later.json()["expires_in_remaining"] == 900
    for params in ({}, {"user_code": "  "}):
        assert_canonical(await device.get(LOOKUP, params=params), 400, "bad_request", "user_code required")


async def test_approval_extends_a_nearly_expired_code(stack: Stack) -> None:
    world = await build_world(stack)
    device, browser = stack.client(), stack.client()
    code = await new_code(device)
    csrf = await console_login(browser, world.ann.email)
    stack.clock.advance(880)
    assert (
        await browser.post(APPROVE, json={"user_code": code["user_code"]}, headers={"X-CSRF-Token": csrf})
    ).status_code == 200
    stack.clock.advance(30)  # past the original 900 s, inside the 60 s granted at approval
    assert (await poll(device, code["device_code"])).status_code == 200


async def test_housekeeping_purges_old_rows(stack: Stack) -> None:
    world = await build_world(stack)
    device, browser = stack.client(), stack.client()
    csrf = await console_login(browser, world.ann.email)
    code = await new_code(device)
    granted = await device_token_for(stack, device, browser, csrf, "purge me")
    await stack.users.tokens.revoke_current(
        await stack.users.tokens.authenticate(f"Bearer {granted['token']}")
    )
    db = stack.app.state.container.db

    async def rows() -> tuple[int, int]:
        async with db() as session:
            tokens = (
                await session.exec(select(OAuthAccessToken).where(OAuthAccessToken.id == granted["token_id"]))
            ).all()
            codes = (
                await session.exec(
                    select(DeviceAuthorization).where(DeviceAuthorization.user_code == code["user_code"])
                )
            ).all()
        return len(tokens), len(codes)

    stack.clock.advance(900 + 3000)
    await stack.users.purge()
    assert await rows() == (1, 1)  # expired less than an hour ago; revoked less than 30 days ago
    stack.clock.advance(700)
    await stack.users.purge()
    assert await rows() == (1, 0)
    stack.clock.advance(31 * 86400)
    await stack.users.purge()
    assert await rows() == (0, 0)


async def device_token_for(
    stack: Stack, device: httpx.AsyncClient, browser: httpx.AsyncClient, csrf: str, label: str
) -> dict[str, object]:
    code = await new_code(device, label)
    await browser.post(APPROVE, json={"user_code": code["user_code"]}, headers={"X-CSRF-Token": csrf})
    resp = await poll(device, code["device_code"])
    assert resp.status_code == 200, resp.text
    return dict(resp.json())
