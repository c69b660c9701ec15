"""``beat api``: the HTTP facade (contract §6). Submits requests and answers status lookups."""

from __future__ import annotations

import json
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
from fastapi import FastAPI, Header, HTTPException, Query, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, ValidationError

from agents.flows.registry import UnknownFlow, get_flow
from app.kafka import start_producer
from app.settings import Settings
from sinks.requests import prepare, submit
from topics.models import Platform

STATUS_COLUMNS = (
    "id, flow, platform, params, status, attempt, source, error_type, error_message, result, priority, "
    "retry_count, account_id, created_at, expires_at, picked_at, scraped_at, updated_at, redrives"
)


class SubmitRequest(BaseModel):
    """``POST /requests``: a ScrapeRequest without an id (or with the caller's own)."""

    model_config = ConfigDict(extra="forbid")
    flow: str
    params: dict[str, Any]
    id: str | None = None
    platform: Platform | None = None
    priority: int = 1
    account_id: str | None = None
    idempotency_key: str | None = None
    expires_at: Any = None


class LegacySubmitRequest(BaseModel):
    """The legacy body of ``POST /scrape_request_log/flow/{flow}``; the body's flow wins, as it did."""

    model_config = ConfigDict(extra="ignore")
    flow: str | None = None
    platform: str | None = None
    params: dict[str, Any]
    priority: int | None = 1
    expires_at: Any = None


def _loads(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


def _status_view(row: asyncpg.Record) -> dict[str, Any]:
    view = dict(row)
    view["params"] = _loads(view["params"])
    view["result"] = _loads(view["result"])
    error_type, error_message = view.pop("error_type"), view.pop("error_message")
    view["error"] = {"type": error_type, "message": error_message} if error_type else None
    return view


def create_api(settings: Settings) -> FastAPI:
    state: dict[str, Any] = {"heartbeat": True}

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        assert settings.database_url
        state["pool"] = await asyncpg.create_pool(settings.database_url, min_size=1, max_size=10)
        state["producer"] = await start_producer(settings)
        try:
            yield
        finally:
            await state["producer"].stop()
            await state["pool"].close()

    api = FastAPI(title="Beat", version="0.1.0", lifespan=lifespan)

    async def _submit(flow: str, params: dict[str, Any], **fields: Any) -> str:
        try:
            request = prepare(flow, params, **fields)
        except UnknownFlow as exc:
            raise HTTPException(404, str(exc)) from None
        except ValidationError as exc:
            raise HTTPException(422, json.loads(exc.json(include_url=False))) from None
        return await submit(state["pool"], state["producer"], settings, request)

    @api.post("/requests", status_code=202)
    async def post_request(body: SubmitRequest) -> dict[str, Any]:
        fields = body.model_dump(exclude={"flow", "params"}, exclude_none=True)
        request_id = await _submit(body.flow, body.params, **fields)
        return {"id": request_id, "status": "PENDING"}

    @api.post("/scrape_request_log/flow/{flow}")
    async def post_legacy(flow: str, body: LegacySubmitRequest,
                          x_bb_account_id: str | None = Header(default=None)) -> dict[str, Any]:
        try:
            request_id = await _submit(body.flow or flow, body.params, priority=body.priority or 1,
                                       account_id=x_bb_account_id, expires_at=body.expires_at)
        except HTTPException as exc:
            return {"status": {"type": "ERROR", "message": str(exc.detail), "code": 400}}
        return {"status": {"type": "SUCCESS", "message": "Scrape request log added"}, "code": 200,
                "scrape_id": request_id}

    @api.get("/requests/{request_id}")
    async def get_request(request_id: str) -> dict[str, Any]:
        row = await state["pool"].fetchrow(f"SELECT {STATUS_COLUMNS} FROM scrape_request_log WHERE id = $1",
                                           request_id)
        if row is None:
            raise HTTPException(404, f"no request {request_id}")
        return _status_view(row)

    @api.get("/requests/{request_id}/timeline")
    async def get_timeline(request_id: str) -> dict[str, Any]:
        rows = await state["pool"].fetch(
            "SELECT status, attempt, at, source, error, result FROM scrape_request_event "
            "WHERE request_id = $1 ORDER BY at, attempt, id",
            request_id,
        )
        if not rows:
            raise HTTPException(404, f"no request {request_id}")
        events = [{**dict(r), "error": _loads(r["error"]), "result": _loads(r["result"])} for r in rows]
        return {"id": request_id, "events": events}

    @api.get("/scrape_request_log/flow/{request_id}")
    async def get_legacy(request_id: str) -> dict[str, Any]:
        row = await state["pool"].fetchrow(f"SELECT {STATUS_COLUMNS} FROM scrape_request_log WHERE id = $1",
                                           request_id)
        if row is None:
            return {"status": {"type": "ERROR", "message": f"Scrape request {request_id} not found", "code": 404}}
        view = _status_view(row)
        data = view["error"]["message"] if view["error"] else (json.dumps(view["result"]) if view["result"] else None)
        platform = view["platform"].lower() if view["platform"] else None
        return {
            "status": {"type": "SUCCESS", "message": "Scrape request found"},
            "post": {"scrape_id": view["id"], "data": data, "status": view["status"], "params": view["params"],
                     "created_at": view["created_at"], "flow": view["flow"], "scraped_at": view["scraped_at"],
                     "platform": platform},
        }

    @api.get("/healthz")
    async def healthz() -> dict[str, Any]:
        await state["pool"].fetchval("SELECT 1")
        return {"status": "ok"}

    @api.get("/heartbeat")
    async def get_heartbeat() -> Response:
        # 410 tells a load balancer to drain this instance (legacy behaviour).
        if state["heartbeat"]:
            return JSONResponse({"beat": True})
        return JSONResponse({"beat": False}, status_code=410)

    @api.put("/heartbeat")
    async def put_heartbeat(beat: bool = Query(...)) -> dict[str, Any]:
        state["heartbeat"] = beat
        return {"beat": beat}

    @api.get("/flows/{flow}")
    async def flow_info(flow: str) -> dict[str, Any]:
        try:
            spec = get_flow(flow)
        except UnknownFlow as exc:
            raise HTTPException(404, str(exc)) from None
        return {"name": spec.name, "platform": spec.platform.value, "enabled": spec.enabled,
                "concurrency": settings.flow_concurrency.get(spec.name, spec.concurrency),
                "params": spec.params.model_json_schema()}

    return api

