"""Isolation matrix (issue 8, must-show 4): tokens, app keys and console sessions of one workspace
or app, against every endpoint that names a resource of another, answer as the spec says —
404 where the resource must not even be known to exist, 403 only where the spec's pipeline puts
an app check before membership (``service_api_disabled``), 401 across credential kinds, and the
always-200 stop without effect."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.openapi_user.live import LiveWorld, build_live_world, console
from tests.support.servers import LiveServer
from tests.support.sse import parse_sse

P = "/openapi/v1"


@pytest.fixture(scope="module")
def world(live_server: LiveServer) -> LiveWorld:
    return build_live_world(live_server)


def run_events(client: httpx.Client, app_id: str) -> list[dict[str, Any]]:
    with client.stream("POST", f"{P}/apps/{app_id}/run", json={"inputs": {"query": "hi"}}) as resp:
        assert resp.status_code == 200
        return [f.data for f in parse_sse(resp.read().decode()) if f.data is not None]


def expect(resp: httpx.Response, status: int, message: str | None, label: str) -> None:
    assert resp.status_code == status, f"{label}: {resp.status_code} {resp.text}"
    if message is not None:
        assert resp.json()["message"] == message, f"{label}: {resp.text}"


def test_isolation_matrix(world: LiveWorld) -> None:
    base = world.server.base_url
    key_a, key_e = world.server.create_key(world.a), world.server.create_key(world.e)
    with (
        world.client(world.ann_token) as ann,
        world.client(world.bob_token) as bob,
        httpx.Client(base_url=base, timeout=60) as anon,
    ):
        ann_run = run_events(ann, world.a)[0]
        bob_run = run_events(bob, world.e)[0]
        v1_run = anon.post(
            "/v1/workflows/run",
            json={"inputs": {"query": "hi"}, "user": "u1"},
            headers={"Authorization": f"Bearer {key_e}"},
        ).json()
        bob_session = bob.get(f"{P}/account/sessions").json()["data"][0]["id"]
        ann_session = ann.get(f"{P}/account/sessions").json()["data"][0]["id"]

        def user_matrix(client: httpx.Client, own: dict[str, Any], other: dict[str, Any]) -> list[Any]:
            """(label, method, path, params, body, status, message) for one side against the other."""
            o, ws, mine = other, other["workspace"], own["workspace"]
            nf, app, task = "workspace not found", o["app"], o["task"]
            run = {"inputs": {"query": "hi"}}
            rows = [
                ("workspace", "GET", f"/workspaces/{ws}", None, None, 404, nf),
                ("apps list", "GET", "/apps", {"workspace_id": ws}, None, 404, nf),
                ("apps by id", "GET", "/apps", {"workspace_id": mine, "name": app}, None, 200, None),
                ("describe", "GET", f"/apps/{app}/describe", None, None, 404, nf),
                ("describe by name", "GET", "/apps/App A/describe", {"workspace_id": ws}, None, 404, nf),
                ("describe, own ws", "GET", f"/apps/{app}/describe", {"workspace_id": mine}, None, 404, nf),
                ("run", "POST", f"/apps/{app}/run", None, run, 404, nf),
                ("events", "GET", f"/apps/{app}/tasks/{task}/events", None, None, 404, nf),
                ("events, own app", "GET", f"/apps/{own['app']}/tasks/{task}/events", None, None, 404, None),
                ("stop", "POST", f"/apps/{app}/tasks/{task}/stop", None, None, 404, nf),
                ("revoke session", "DELETE", f"/account/sessions/{o['session']}", None, None, 404, None),
            ]
            for label, method, path, params, body, status, message in rows:
                resp = client.request(method, P + path, params=params, json=body)
                expect(resp, status, message, label)
                if label == "apps by id":
                    assert resp.json()["total"] == 0
                if label == "events, own app":
                    assert resp.json()["message"] == "Workflow run not found"
                if label == "revoke session":
                    assert resp.json()["message"] == "session not found"
            return rows

        ann_side = {"app": world.a, "workspace": world.w, "task": ann_run["task_id"], "session": ann_session}
        bob_side = {"app": world.e, "workspace": world.w2, "task": bob_run["task_id"], "session": bob_session}
        user_matrix(ann, ann_side, bob_side)
        user_matrix(bob, bob_side, ann_side)
        # The pipeline checks enable_api (403) before membership, as the spec orders it.
        expect(bob.get(f"{P}/apps/{world.d}/describe"), 403, "service_api_disabled", "D for a non-member")
        expect(
            ann.get(f"{P}/apps/{world.e}/tasks/{v1_run['task_id']}/events"),
            404,
            "workspace not found",
            "v1 run",
        )
        expect(
            ann.get(f"{P}/apps/{world.a}/tasks/{v1_run['task_id']}/events"),
            404,
            "Workflow run not found",
            "x",
        )

        # App keys: scoped to their app; never bearer tokens of the user API (and vice versa).
        detail = anon.get(
            f"/v1/workflows/run/{bob_run['workflow_run_id']}", headers={"Authorization": f"Bearer {key_a}"}
        )
        expect(detail, 404, "Workflow run not found.", "key A on E's run")
        detail = anon.get(
            f"/v1/workflows/run/{ann_run['workflow_run_id']}", headers={"Authorization": f"Bearer {key_a}"}
        )
        assert detail.status_code == 200  # an account's run of A is A's run for A's key
        stop = anon.post(
            f"/v1/workflows/tasks/{bob_run['task_id']}/stop",
            json={"user": "u1"},
            headers={"Authorization": f"Bearer {key_a}"},
        )
        assert stop.status_code == 200 and stop.json() == {"result": "success"}
        for path in ("/account", "/workspaces", f"/apps/{world.a}/describe"):
            expect(
                anon.get(P + path, headers={"Authorization": f"Bearer {key_a}"}), 401, "invalid bearer", path
            )
        for path in ("/v1/info", "/v1/parameters"):
            expect(ann.get(path), 401, "Access token is invalid", path)

        # Console sessions: apps of another workspace do not exist for them.
        client, csrf = console(world.server, world.ann_email)
        try:
            headers = {"X-CSRF-Token": csrf}
            expect(
                client.get("/console/api/apps", params={"workspace_id": world.w2}),
                404,
                "workspace not found",
                "c1",
            )
            expect(
                client.post(f"/console/api/apps/{world.e}/api-keys", headers=headers),
                404,
                "app not found",
                "c2",
            )
            expect(
                client.post(
                    f"/console/api/apps/{world.e}/api-enable", json={"enable_api": False}, headers=headers
                ),
                404,
                "app not found",
                "c3",
            )
            expect(client.get(f"/console/api/apps/{world.e}/workflow-runs"), 404, "app not found", "c4")
            imported = client.post(
                "/console/api/apps/imports",
                json={"yaml_content": "x", "workspace_id": world.w2},
                headers=headers,
            )
            expect(imported, 404, "workspace not found", "c5")
        finally:
            client.close()
        # nothing above changed E
        assert bob.get(f"{P}/apps/{world.e}/describe", params={"fields": "info"}).json()["info"][
            "service_api_enabled"
        ]
