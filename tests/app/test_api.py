"""The HTTP facade against the running stack."""

from __future__ import annotations

import httpx

from tests.support import unique, wait_terminal


async def test_submit_status_and_timeline(stack, pool):
    async with httpx.AsyncClient(base_url=stack.api_url) as client:
        handle = unique("api")
        created = await client.post(
            "/requests",
            json={"flow": "refresh_profile_basic", "params": {"handle": handle}, "idempotency_key": f"key-{handle}"},
        )
        assert created.status_code == 202
        request_id = created.json()["id"]
        again = await client.post(
            "/requests",
            json={"flow": "refresh_profile_basic", "params": {"handle": handle}, "idempotency_key": f"key-{handle}"},
        )
        assert again.json()["id"] == request_id  # the same idempotency key is one request

        assert (await wait_terminal(pool, [request_id], timeout=60)) == {request_id: "COMPLETE"}
        status = (await client.get(f"/requests/{request_id}")).json()
        assert status["status"] == "COMPLETE" and status["params"] == {"handle": handle}
        assert status["source"] in {"graphapi", "rapidapi-arraybobo"} and status["result"]["events"]["profile_log"] == 1
        assert status["picked_at"] and status["scraped_at"]
        timeline = (await client.get(f"/requests/{request_id}/timeline")).json()["events"]
        assert [e["status"] for e in timeline] == ["PENDING", "PROCESSING", "COMPLETE"]

        legacy = (await client.get(f"/scrape_request_log/flow/{request_id}")).json()
        assert legacy["status"]["type"] == "SUCCESS"
        assert legacy["post"]["status"] == "COMPLETE" and legacy["post"]["platform"] == "instagram"

        assert (await client.get("/requests/nope")).status_code == 404


async def test_legacy_submit_uses_the_body_flow(stack, pool):
    async with httpx.AsyncClient(base_url=stack.api_url) as client:
        body = {"flow": "refresh_post_by_shortcode", "platform": "INSTAGRAM", "params": {"shortcode": unique("Lg")}}
        answer = (
            await client.post("/scrape_request_log/flow/ignored", json=body, headers={"x-bb-account-id": "acct-7"})
        ).json()
        assert answer["status"]["type"] == "SUCCESS" and answer["code"] == 200
        scrape_id = answer["scrape_id"]
        assert (await wait_terminal(pool, [scrape_id], timeout=60)) == {scrape_id: "COMPLETE"}
        row = await pool.fetchrow("SELECT flow, account_id FROM scrape_request_log WHERE id = $1", scrape_id)
        assert tuple(row) == ("refresh_post_by_shortcode", "acct-7")


async def test_bad_submissions_are_refused_at_the_door(stack):
    async with httpx.AsyncClient(base_url=stack.api_url) as client:
        unknown = await client.post("/requests", json={"flow": "no_such_flow", "params": {}})
        assert unknown.status_code == 422 and "no_such_flow" in unknown.json()["detail"]["message"]
        assert "refresh_profile_basic" in unknown.json()["detail"]["enabled_flows"]
        invalid = await client.post("/requests", json={"flow": "refresh_profile_basic", "params": {"nope": 1}})
        assert invalid.status_code == 422
        assert [error["loc"] for error in invalid.json()["detail"]] == [["params", "nope"]]
        legacy = (await client.post("/scrape_request_log/flow/x", json={"flow": "bogus", "params": {}})).json()
        assert legacy["status"]["type"] == "ERROR" and legacy["status"]["code"] == 422
        assert "bogus" in legacy["status"]["message"]
        # A body the legacy model refuses gets the legacy envelope too, not FastAPI's plain 422.
        legacy = await client.post("/scrape_request_log/flow/refresh_profile_basic", json={"params": []})
        assert legacy.status_code == 200 and legacy.json()["status"]["code"] == 422
        assert "params" in legacy.json()["status"]["message"]


async def test_heartbeat_drains_for_load_balancers(stack):
    async with httpx.AsyncClient(base_url=stack.api_url) as client:
        assert (await client.get("/heartbeat")).status_code == 200
        assert (await client.put("/heartbeat", params={"beat": "false"})).status_code == 200
        assert (await client.get("/heartbeat")).status_code == 410
        await client.put("/heartbeat", params={"beat": "true"})
        assert (await client.get("/heartbeat")).status_code == 200
        assert (await client.get("/healthz")).json() == {"status": "ok"}
        ready = await client.get("/readyz")
        assert ready.status_code == 200 and ready.json()["down"] == []
