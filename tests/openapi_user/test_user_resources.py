"""Workspaces, apps and describe, errors and headers (openapi-user.md §1, §4, §8; scenarios 1,
16–19, 25, 26) on the real app in-process."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from sluice.adapters.sql import migrate
from sluice.api.app import create_app
from sluice.services.apps import AppService
from sluice.settings import Settings, UserApiSettings
from tests.openapi_user.conftest import (
    FIXTURES,
    Stack,
    World,
    assert_canonical,
    bearer,
    build_world,
    console_login,
    device_token,
    running,
)

P = "/openapi/v1"


async def ann_token(stack: Stack, world: World) -> str:
    browser = stack.client()
    return str((await device_token(stack, browser, await console_login(browser, world.ann.email)))["token"])


async def test_health_and_headers_scenario_1(stack: Stack) -> None:
    client = stack.client()
    resp = await client.get(f"{P}/_health")
    assert resp.status_code == 200 and resp.json() == {"ok": True}
    assert resp.headers["x-frame-options"] == "DENY"
    assert resp.headers["content-security-policy"] == "frame-ancestors 'none'"
    ignored = await client.get(f"{P}/_health", headers={"X-Dify-Env": "x", "X-Dify-Workspace-Id": "y"})
    assert ignored.status_code == 200


async def test_workspaces_scenario_16(stack: Stack) -> None:
    world = await build_world(stack)
    token = await ann_token(stack, world)
    client = stack.client()
    listed = await client.get(f"{P}/workspaces", headers=bearer(token))
    assert listed.json() == {
        "workspaces": [
            {"id": world.w.id, "name": world.w.name, "role": "owner", "status": "normal", "current": True}
        ]
    }
    detail = (await client.get(f"{P}/workspaces/{world.w.id}", headers=bearer(token))).json()
    assert detail["id"] == world.w.id and detail["current"] is True and detail["role"] == "owner"
    assert (
        "T" in detail["created_at"]
        and "+" not in detail["created_at"]
        and not detail["created_at"].endswith("Z")
    )
    for other in (world.w2.id, "not-a-uuid"):
        resp = await client.get(f"{P}/workspaces/{other}", headers=bearer(token))
        assert_canonical(resp, 404, "not_found", "workspace not found")


async def test_apps_listing_scenario_17(stack: Stack) -> None:
    world = await build_world(stack)
    token = await ann_token(stack, world)
    client = stack.client()
    resp = await client.get(f"{P}/apps", params={"workspace_id": world.w.id}, headers=bearer(token))
    body = resp.json()
    assert resp.status_code == 200, body
    assert {row["id"] for row in body["data"]} == {world.a, world.c}
    assert body["total"] == 2 and body["page"] == 1 and body["limit"] == 20 and body["has_more"] is False
    row = next(r for r in body["data"] if r["id"] == world.a)
    assert row == {
        "id": world.a,
        "name": "App A",
        "description": "The service API fixture app.",
        "mode": "workflow",
        "updated_at": row["updated_at"],
        "workspace_id": world.w.id,
        "workspace_name": world.w.name,
        "tags": [],
        "created_by_name": "Ann",
    }
    assert len(row["updated_at"]) == 19
    for params in ({"workspace_id": world.w2.id}, {}, {"workspace_id": "nope"}):
        resp = await client.get(f"{P}/apps", params=params, headers=bearer(token))
        assert_canonical(resp, 404, "not_found", "workspace not found")
    # membership is checked before validation
    resp = await client.get(
        f"{P}/apps", params={"workspace_id": world.w2.id, "page": 0}, headers=bearer(token)
    )
    assert resp.status_code == 404
    page0 = await client.get(
        f"{P}/apps", params={"workspace_id": world.w.id, "page": 0}, headers=bearer(token)
    )
    assert assert_canonical(page0, 422, "invalid_param")["details"][0]["loc"] == ["page"]
    mode = await client.get(
        f"{P}/apps", params={"workspace_id": world.w.id, "mode": "rag-pipeline"}, headers=bearer(token)
    )
    assert_canonical(mode, 422, "invalid_param", "Request validation failed")
    by_id = await client.get(
        f"{P}/apps",
        params={"workspace_id": world.w.id, "name": world.a, "limit": 5, "page": 3},
        headers=bearer(token),
    )
    assert by_id.json()["total"] == 1 and by_id.json()["limit"] == 1 and by_id.json()["page"] == 1
    hidden = await client.get(
        f"{P}/apps", params={"workspace_id": world.w.id, "name": world.d}, headers=bearer(token)
    )
    assert hidden.json() == {"page": 1, "limit": 1, "total": 0, "has_more": False, "data": []}
    search = await client.get(
        f"{P}/apps",
        params={"workspace_id": world.w.id, "name": "app c", "mode": "advanced-chat"},
        headers=bearer(token),
    )
    assert [r["id"] for r in search.json()["data"]] == [world.c]
    wildcard = await client.get(
        f"{P}/apps", params={"workspace_id": world.w.id, "name": "%"}, headers=bearer(token)
    )
    assert wildcard.json()["total"] == 0
    tag = await client.get(
        f"{P}/apps", params={"workspace_id": world.w.id, "tag": "nope"}, headers=bearer(token)
    )
    assert tag.json()["total"] == 0 and tag.json()["data"] == []


async def test_describe_scenario_18(stack: Stack) -> None:
    world = await build_world(stack)
    token = await ann_token(stack, world)
    client = stack.client()
    body = (await client.get(f"{P}/apps/{world.a}/describe", headers=bearer(token))).json()
    assert set(body) == {"info", "parameters", "input_schema"}
    info = body["info"]
    assert info["id"] == world.a and info["mode"] == "workflow" and info["service_api_enabled"] is True
    assert info["is_agent"] is False and info["author"] == "Ann" and info["tags"] == []
    assert body["parameters"]["user_input_form"][0]["paragraph"]["max_length"] == 10
    schema = body["input_schema"]
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    inputs = schema["properties"]["inputs"]
    assert inputs["properties"]["query"] == {"type": "string", "maxLength": 10, "title": "Query"}
    assert inputs["properties"]["color"]["enum"] == ["red", "green"]
    assert inputs["properties"]["count"] == {"type": "number", "title": "Count"}
    assert inputs["required"] == ["query"] and inputs["additionalProperties"] is False
    assert schema["required"] == ["inputs"]

    only = (
        await client.get(f"{P}/apps/{world.a}/describe", params={"fields": "info"}, headers=bearer(token))
    ).json()
    assert only["info"]["id"] == world.a and only["parameters"] is None and only["input_schema"] is None
    two = await client.get(
        f"{P}/apps/{world.a}/describe",
        params=[("fields", "info, input_schema"), ("fields", "")],
        headers=bearer(token),
    )
    assert two.json()["parameters"] is None and two.json()["input_schema"] is not None
    bogus = await client.get(
        f"{P}/apps/{world.a}/describe", params={"fields": "bogus"}, headers=bearer(token)
    )
    assert assert_canonical(bogus, 422, "invalid_param")["details"][0]["msg"] == "unknown field(s): ['bogus']"
    extra = await client.get(f"{P}/apps/{world.a}/describe", params={"x": "1"}, headers=bearer(token))
    assert assert_canonical(extra, 422, "invalid_param")["details"][0]["loc"] == ["x"]

    chat = (await client.get(f"{P}/apps/{world.c}/describe", headers=bearer(token))).json()
    assert chat["info"]["is_agent"] is True
    assert chat["input_schema"]["properties"]["query"] == {"type": "string", "minLength": 1}
    assert chat["input_schema"]["required"] == ["inputs", "query"]

    named = await client.get(
        f"{P}/apps/App C/describe",
        params={"workspace_id": world.w.id, "fields": "info"},
        headers=bearer(token),
    )
    assert named.json()["info"]["id"] == world.c
    no_ws = await client.get(f"{P}/apps/App C/describe", headers=bearer(token))
    assert_canonical(no_ws, 422, "invalid_param", "workspace_id is required for name-based lookup")
    by_name = {"workspace_id": world.w.id}
    once = await client.get(f"{P}/apps/App A/describe", params=by_name, headers=bearer(token))
    assert once.json()["info"]["id"] == world.a  # D is also "App A" but not visible
    await AppService(stack.app.state.container.db).import_app(
        (FIXTURES / "app_a.yml").read_text(), tenant_id=world.w.id
    )
    twice = await client.get(f"{P}/apps/App A/describe", params=by_name, headers=bearer(token))
    assert_canonical(twice, 409, "conflict")
    missing = await client.get(
        f"{P}/apps/Nope/describe", params={"workspace_id": world.w.id}, headers=bearer(token)
    )
    assert_canonical(missing, 404, "not_found", "app not found")


async def test_app_gate_scenario_19(stack: Stack) -> None:
    world = await build_world(stack)
    token = await ann_token(stack, world)
    client = stack.client()
    import uuid

    unknown = await client.get(f"{P}/apps/{uuid.uuid4()}/describe", headers=bearer(token))
    assert_canonical(unknown, 404, "not_found", "app not found")
    disabled = await client.get(f"{P}/apps/{world.d}/describe", headers=bearer(token))
    assert_canonical(disabled, 403, "forbidden", "service_api_disabled")
    other = await client.get(f"{P}/apps/{world.e}/describe", headers=bearer(token))
    assert_canonical(other, 404, "not_found", "workspace not found")
    mismatch = await client.get(
        f"{P}/apps/{world.a}/describe", params={"workspace_id": world.w2.id}, headers=bearer(token)
    )
    assert_canonical(mismatch, 422, "invalid_param", "workspace_id does not match app's workspace")
    # the gate precedes validation: a bad `fields` on E is still 404
    gated = await client.get(
        f"{P}/apps/{world.e}/describe", params={"fields": "bogus"}, headers=bearer(token)
    )
    assert gated.status_code == 404


async def test_permitted_external_apps_scenario_25(stack: Stack) -> None:
    world = await build_world(stack)
    token = await ann_token(stack, world)
    client = stack.client()
    for headers in ({}, bearer(token), {"Authorization": "Basic x"}):
        resp = await client.get(f"{P}/permitted-external-apps", headers=headers)
        assert_canonical(resp, 404, "not_found")


async def test_errors_scenario_26(stack: Stack) -> None:
    async def boom() -> None:
        raise RuntimeError("secret detail")

    stack.app.add_api_route(f"{P}/_boom", boom, include_in_schema=False)
    client = stack.client()
    resp = await client.get(f"{P}/_boom")
    assert resp.status_code == 500
    assert resp.json() == {"code": "internal_server_error", "message": "Internal Server Error", "status": 500}
    assert "secret" not in resp.text
    assert (await client.get(f"{P}/nope")).json() == {
        "code": "not_found",
        "message": "Not Found",
        "status": 404,
    }
    wrong = await client.delete(f"{P}/_health")
    assert wrong.json() == {"code": "method_not_allowed", "message": "Method Not Allowed", "status": 405}
    # the Service API keeps its own body
    v1 = await client.get("/v1/nope")
    assert v1.json()["code"] == "not_found" and v1.json()["message"].startswith("The requested URL")


async def test_disabled_surface_is_404(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data", demo_app=False, openapi=UserApiSettings(enabled=False))
    migrate.upgrade(settings.sql_url)
    app = create_app(settings)
    async with running(app):
        transport = httpx.ASGITransport(app=app, client=("10.9.9.9", 1))
        async with httpx.AsyncClient(transport=transport, base_url="http://sluice.test") as client:
            assert (await client.get(f"{P}/_health")).status_code == 404
            assert (await client.get("/device")).status_code == 404
            assert (await client.get("/login")).status_code == 200


@pytest.mark.parametrize("origin", ["https://app.example", "https://evil.example"])
async def test_cors_is_scoped_to_configured_origins(tmp_path: Path, origin: str) -> None:
    settings = Settings(
        data_dir=tmp_path / "data",
        demo_app=False,
        openapi=UserApiSettings(cors_allow_origins="https://app.example"),
    )
    migrate.upgrade(settings.sql_url)
    app = create_app(settings)
    async with running(app):
        transport = httpx.ASGITransport(app=app, client=("10.9.9.8", 1))
        async with httpx.AsyncClient(transport=transport, base_url="http://sluice.test") as client:
            simple = await client.get(f"{P}/_health", headers={"Origin": origin})
            preflight = await client.options(
                f"{P}/account",
                headers={
                    "Origin": origin,
                    "Access-Control-Request-Method": "GET",
                    "Access-Control-Request-Headers": "authorization",
                },
            )
            service = await client.get("/v1/info", headers={"Origin": origin})
    if origin == "https://app.example":
        assert simple.headers["access-control-allow-origin"] == origin
        assert simple.headers["access-control-allow-credentials"] == "true"
        assert preflight.status_code == 200 and preflight.headers["access-control-max-age"] == "600"
    else:
        assert "access-control-allow-origin" not in simple.headers
        assert "access-control-allow-origin" not in preflight.headers
    assert service.headers["access-control-allow-origin"] == "*"
