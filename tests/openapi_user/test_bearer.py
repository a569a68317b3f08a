"""Bearer tokens and sessions (openapi-user.md §2, §3, §8.2–8.5; acceptance scenarios 9–15)."""

from __future__ import annotations

import uuid

from sqlmodel import select

from sluice.adapters.sql.tables import OAuthAccessToken
from tests.openapi_user.conftest import (
    Stack,
    assert_canonical,
    bearer,
    build_world,
    console_login,
    device_token,
)

ACCOUNT = "/openapi/v1/account"
SESSIONS = "/openapi/v1/account/sessions"


async def test_account_and_header_rules_scenario_9(stack: Stack) -> None:
    world = await build_world(stack)
    browser = stack.client()
    token = (await device_token(stack, browser, await console_login(browser, world.ann.email)))["token"]
    client = stack.client()
    resp = await client.get(ACCOUNT, headers=bearer(token))
    assert resp.status_code == 200, resp.text
    assert resp.json() == {
        "subject_type": "account",
        "subject_email": world.ann.email,
        "subject_issuer": None,
        "account": {"id": world.ann.id, "email": world.ann.email, "name": "Ann"},
        "workspaces": [{"id": world.w.id, "name": world.w.name, "role": "owner"}],
        "default_workspace_id": world.w.id,
    }
    assert (await client.get(ACCOUNT, headers={"authorization": f"BEARER   {token}  "})).status_code == 200
    required = {"code": "unauthorized", "message": "bearer required", "status": 401}
    assert (await client.get(ACCOUNT)).json() == required
    assert (await client.get(ACCOUNT, headers={"Authorization": "Basic x"})).json() == required
    assert (await client.get(ACCOUNT, headers={"Authorization": "Bearer "})).json() == required
    invalid = {"code": "unauthorized", "message": "invalid bearer", "status": 401}
    unknown = "dfoa_" + "A" * 43
    for value in (unknown, "app-" + "x" * 24, "dfoe_" + "B" * 43):
        resp = await client.get(ACCOUNT, headers=bearer(value))
        assert resp.status_code == 401 and resp.json() == invalid


async def test_expired_token_is_hard_expired_scenario_10(stack: Stack) -> None:
    world = await build_world(stack)
    browser = stack.client()
    granted = await device_token(stack, browser, await console_login(browser, world.ann.email))
    client = stack.client()
    stack.clock.advance(15 * 86400)
    for _ in range(2):
        resp = await client.get(ACCOUNT, headers=bearer(granted["token"]))
        assert resp.status_code == 401
        assert resp.json() == {"code": "unauthorized", "message": "invalid bearer", "status": 401}
    async with stack.app.state.container.db() as session:
        row = (
            await session.exec(select(OAuthAccessToken).where(OAuthAccessToken.id == granted["token_id"]))
        ).one()
    assert row.revoked_at is not None and row.token_hash is None and row.last_used_at is None


async def test_revoke_self_scenario_11(stack: Stack) -> None:
    world = await build_world(stack)
    browser = stack.client()
    token = (await device_token(stack, browser, await console_login(browser, world.ann.email)))["token"]
    client = stack.client()
    resp = await client.delete(f"{SESSIONS}/self", headers=bearer(token))
    assert resp.status_code == 200 and resp.json() == {"status": "revoked"}
    assert_canonical(await client.get(ACCOUNT, headers=bearer(token)), 401, "unauthorized", "invalid bearer")


async def test_rotation_per_device_label_scenario_12(stack: Stack) -> None:
    world = await build_world(stack)
    browser = stack.client()
    csrf = await console_login(browser, world.ann.email)
    first = await device_token(stack, browser, csrf)
    stack.clock.advance(1)
    second = await device_token(stack, browser, csrf)
    client = stack.client()
    assert (await client.get(ACCOUNT, headers=bearer(first["token"]))).status_code == 401
    assert (await client.get(ACCOUNT, headers=bearer(second["token"]))).status_code == 200
    stack.clock.advance(1)
    other = await device_token(stack, browser, csrf, label="difyctl on h2")
    assert (await client.get(ACCOUNT, headers=bearer(second["token"]))).status_code == 200
    assert (await client.get(ACCOUNT, headers=bearer(other["token"]))).status_code == 200
    listed = (await client.get(SESSIONS, headers=bearer(other["token"]))).json()
    assert (
        listed["total"] == 2
        and listed["page"] == 1
        and listed["limit"] == 100
        and listed["has_more"] is False
    )
    assert [row["id"] for row in listed["data"]] == [other["token_id"], second["token_id"]]
    row = listed["data"][0]
    assert set(row) == {
        "id",
        "prefix",
        "client_id",
        "device_label",
        "created_at",
        "last_used_at",
        "expires_at",
    }
    assert (
        row["prefix"] == "dfoa_" and row["client_id"] == "difyctl" and row["device_label"] == "difyctl on h2"
    )
    assert row["created_at"].endswith("Z") and row["expires_at"].endswith("Z") and row["last_used_at"] is None
    paged = (await client.get(SESSIONS, params={"limit": 1}, headers=bearer(other["token"]))).json()
    assert paged["has_more"] is True and len(paged["data"]) == 1


async def test_revoke_by_id_scenario_13(stack: Stack) -> None:
    world = await build_world(stack)
    ann_browser, bob_browser = stack.client(), stack.client()
    ann = await device_token(stack, ann_browser, await console_login(ann_browser, world.ann.email))
    bob = await device_token(stack, bob_browser, await console_login(bob_browser, world.bob.email))
    client = stack.client()
    for target in (bob["token_id"], "xyz", str(uuid.uuid4())):
        resp = await client.delete(f"{SESSIONS}/{target}", headers=bearer(ann["token"]))
        assert_canonical(resp, 404, "not_found", "session not found")
    stack.clock.advance(1)
    spare = await device_token(stack, ann_browser, await console_login(ann_browser, world.ann.email), "h3")
    for _ in range(2):  # own row, then own revoked row: both 200
        resp = await client.delete(f"{SESSIONS}/{spare['token_id']}", headers=bearer(ann["token"]))
        assert resp.status_code == 200 and resp.json() == {"status": "revoked"}
    assert (await client.get(ACCOUNT, headers=bearer(spare["token"]))).status_code == 401
    assert (await client.get(ACCOUNT, headers=bearer(bob["token"]))).status_code == 200


async def test_session_list_is_strict_scenario_14(stack: Stack) -> None:
    world = await build_world(stack)
    browser = stack.client()
    token = (await device_token(stack, browser, await console_login(browser, world.ann.email)))["token"]
    client = stack.client()
    body = assert_canonical(
        await client.get(SESSIONS, params={"foo": "1"}, headers=bearer(token)), 422, "invalid_param"
    )
    assert body["message"] == "Request validation failed" and body["details"][0]["loc"] == ["foo"]
    body = assert_canonical(
        await client.get(SESSIONS, params={"limit": 201}, headers=bearer(token)), 422, "invalid_param"
    )
    assert body["details"][0]["loc"] == ["limit"] and set(body["details"][0]) == {"type", "loc", "msg"}
    assert (await client.get(SESSIONS, params={"page": 0}, headers=bearer(token))).status_code == 422


async def test_per_token_rate_limit_scenario_15(stack: Stack) -> None:
    world = await build_world(stack)
    browser = stack.client()
    token = (await device_token(stack, browser, await console_login(browser, world.ann.email)))["token"]
    client = stack.client()
    for path in [ACCOUNT] * 30 + ["/openapi/v1/workspaces"] * 30:
        resp = await client.get(path, headers=bearer(token))
        assert resp.status_code == 200, (path, resp.text)
    over = await client.get(ACCOUNT, headers=bearer(token))
    assert over.json() == {"code": "too_many_requests", "message": "rate_limited", "status": 429}
    assert int(over.headers["retry-after"]) >= 1
    # counted before lookup: an unknown token is limited too, a malformed one is not counted
    unknown = "dfoa_" + "Z" * 43
    for _ in range(60):
        assert (await client.get(ACCOUNT, headers=bearer(unknown))).status_code == 401
    assert (await client.get(ACCOUNT, headers=bearer(unknown))).status_code == 429
    stack.clock.advance(61)
    assert (await client.get(ACCOUNT, headers=bearer(token))).status_code == 200
