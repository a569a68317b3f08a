"""``GET /v1/workflows/logs`` (service-api §5.5, scenario 23), in both modes."""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.support.servers import LiveServer

FIXTURES = Path(__file__).parent.parent / "fixtures"


def test_logs_filters_and_pages(live_server: LiveServer) -> None:
    key = live_server.create_key(live_server.import_app(FIXTURES / "app_a.yml"))
    headers = {"Authorization": f"Bearer {key}"}
    with httpx.Client(base_url=live_server.base_url, headers=headers, timeout=30) as client:
        run_ids = []
        for user, query in (("u1", "ünï"), ("u2", "b"), ("u1", "c")):
            resp = client.post("/v1/workflows/run", json={"inputs": {"query": query}, "user": user})
            assert resp.status_code == 200
            run_ids.append(resp.json()["workflow_run_id"])

        first = client.get("/v1/workflows/logs", params={"limit": 1}).json()
        assert first["total"] == 3 and first["has_more"] is True and first["limit"] == 1
        item = first["data"][0]
        assert item["workflow_run"]["id"] == run_ids[-1]
        assert item["created_from"] == "service-api" and item["created_by_role"] == "end_user"
        assert item["created_by_end_user"]["session_id"] == "u1" and item["created_by_account"] is None
        assert item["workflow_run"]["status"] == "succeeded" and item["workflow_run"]["total_steps"] == 3

        assert client.get("/v1/workflows/logs", params={"limit": 500}).json()["limit"] == 100
        page2 = client.get("/v1/workflows/logs", params={"page": 2, "limit": 2}).json()
        assert len(page2["data"]) == 1 and page2["has_more"] is False and page2["total"] == 3
        past = client.get("/v1/workflows/logs", params={"page": 9, "limit": 2}).json()
        assert past["data"] == [] and past["total"] == 3

        by_user = client.get("/v1/workflows/logs", params={"keyword": "u1"}).json()
        assert by_user["total"] == 2
        assert client.get("/v1/workflows/logs", params={"keyword": "ünï"}).json()["total"] == 1
        assert client.get("/v1/workflows/logs", params={"keyword": "100%"}).json()["total"] == 0
        assert client.get("/v1/workflows/logs", params={"keyword": run_ids[1]}).json()["total"] == 1
        exact = client.get("/v1/workflows/logs", params={"created_by_end_user_session_id": "u2"}).json()
        assert [i["workflow_run"]["id"] for i in exact["data"]] == [run_ids[1]]
        assert client.get("/v1/workflows/logs", params={"status": "succeeded"}).json()["total"] == 3
        assert client.get("/v1/workflows/logs", params={"status": "failed"}).json()["total"] == 0
        after = client.get("/v1/workflows/logs", params={"created_at__after": "2000-01-01T00:00:00Z"}).json()
        assert after["total"] == 3
        before = client.get("/v1/workflows/logs", params={"created_at__before": "2000-01-01T00:00:00"}).json()
        assert before["total"] == 0

        for params, field in (
            ({"limit": 0}, "limit"),
            ({"status": "running"}, "status"),
            ({"page": 0}, "page"),
            ({"created_at__before": "yesterday"}, "created_at__before"),
        ):
            resp = client.get("/v1/workflows/logs", params=params)
            assert resp.status_code == 400, resp.text
            body = resp.json()
            assert body["code"] == "invalid_param" and body["message"].startswith(f"{field}:"), body
        resp = client.get("/v1/workflows/logs", params={"created_by_account": "nobody@example.com"})
        assert resp.json() == {
            "code": "invalid_param",
            "message": "Account not found: nobody@example.com",
            "status": 400,
        }
