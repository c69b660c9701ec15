"""``beat api``: the HTTP facade (contract §6). Submits requests and answers status lookups.

Every route needs an API key unless ``app/auth.py`` lists it as open; a route that needs more than the
default scope says so with ``dependencies=[requires(ADMIN)]``. Each route's answer is a model of
``app/api_models.py``, so the OpenAPI document describes it.

During an outage (``app.api_errors``): with Postgres down, a submission goes to a durable broker alone
(the status sink records it when Postgres is back) and is refused with 503 by a memory-only one; with
the broker down, it is refused with 503. Every other route answers 503 while what it needs is down.
"""

from __future__ import annotations

import json
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Annotated, Any

import asyncpg
from fastapi import APIRouter, Depends, FastAPI, Header, HTTPException, Path, Query, Response
from fastapi.responses import JSONResponse
from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from app.api_errors import LegacyRoute, guard_input
from app.api_models import (
    BEAT_ERRORS,
    LEGACY_ERRORS,
    Accepted,
    FlowInfo,
    Health,
    Heartbeat,
    LegacyEnvelope,
    LegacyFound,
    LegacySubmitted,
    Problem,
    Readiness,
    Redriven,
    RequestView,
    Timeline,
)
from app.api_state import ApiState, api_state
from app.auth import ADMIN, protect, requires
from app.legacy_posts_api import router as legacy_posts_router
from app.legacy_profiles import router as legacy_profiles
from app.legacy_scrape_log import router as legacy_scrape_log
from app.legacy_youtube import router as legacy_youtube
from app.readiness import readiness
from app.status_page import add_status_page
from app.submission import submit_or_refuse
from core.kafka import start_producer
from core.redrive import NotReopenable, UnknownRequest, reopen
from core.settings import Settings
from core.status_reads import read_status, read_stored, read_timeline
from topics.flows import UnknownFlow, get_flow, is_enabled
from topics.limits import INT32_MAX, INT32_MIN, MAX_TEXT, text_problem
from topics.models import Platform


def _storable(value: str) -> str:
    problem = text_problem(value)
    if problem:
        raise ValueError(problem)
    return value


State = Annotated[ApiState, Depends(api_state)]

# Text a status row can hold: bounded, no NUL, no lone surrogate (the store refuses those mid-request).
StorableText = Annotated[str, Field(max_length=MAX_TEXT), AfterValidator(_storable)]
Priority = Annotated[int, Field(ge=INT32_MIN, le=INT32_MAX, description="an int4 column")]
RequestId = Annotated[str, Path(max_length=MAX_TEXT), AfterValidator(_storable)]

# A facade answers within seconds: a dependency that has not answered by then is down for this call (503).
POSTGRES_TIMEOUT = 5.0
BROKER_TIMEOUT = 5.0


class SubmitRequest(BaseModel):
    """``POST /requests``: a ScrapeRequest without an id (or with the caller's own). Without a priority it is
    on-demand work (``BEAT_ON_DEMAND_PRIORITY``, its flow's priority lane); bulk callers give theirs."""

    model_config = ConfigDict(extra="forbid")
    flow: StorableText
    params: dict[str, Any]
    id: StorableText | None = None
    platform: Platform | None = None
    priority: Priority | None = None
    account_id: StorableText | None = None
    idempotency_key: StorableText | None = None
    expires_at: datetime | None = None


class LegacySubmitRequest(BaseModel):
    """The legacy body of ``POST /scrape_request_log/flow/{flow}``; the body's flow wins, as it did."""

    model_config = ConfigDict(extra="ignore")
    flow: StorableText | None = None
    platform: str | None = None
    params: dict[str, Any]
    priority: Priority | None = 1
    expires_at: datetime | None = None


def create_api(settings: Settings) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI):
        assert settings.database_url
        # No connection up front: the facade starts, and takes submissions for a durable broker, without Postgres.
        pool = await asyncpg.create_pool(
            settings.database_url, min_size=0, max_size=10, timeout=POSTGRES_TIMEOUT, command_timeout=POSTGRES_TIMEOUT
        )
        producer = await start_producer(settings, timeout=BROKER_TIMEOUT)
        app.state.beat = ApiState(settings=settings, pool=pool, producer=producer)
        try:
            async with keys.refreshing(pool):
                yield
        finally:
            await producer.stop()
            await pool.close()

    # ReDoc is left out: the open list names /docs only.
    api = FastAPI(title="Beat", version="0.1.0", lifespan=lifespan, redoc_url=None)
    # Bodies are bounded by the largest record Beat produces: a larger one could never be submitted.
    guard_input(api, settings.max_message_bytes, settings.outage_retry_after)
    keys = protect(api, settings)
    legacy = APIRouter(route_class=LegacyRoute, responses=LEGACY_ERRORS)

    refused: dict[int | str, dict[str, Any]] = {**BEAT_ERRORS, 413: {"model": Problem}, 422: {"model": Problem}}

    @api.post("/requests", status_code=202, responses=refused)
    async def post_request(body: SubmitRequest, state: State) -> Accepted:
        fields = body.model_dump(exclude={"flow", "params"}, exclude_none=True)
        fields.setdefault("priority", settings.on_demand_priority)
        request_id = await submit_or_refuse(state, body.flow, body.params, **fields)
        return Accepted(id=request_id, status="PENDING")

    @legacy.post("/scrape_request_log/flow/{flow}", response_model_exclude_unset=True)
    async def post_legacy(
        flow: Annotated[str, Path(max_length=MAX_TEXT)],
        body: LegacySubmitRequest,
        state: State,
        x_bb_account_id: Annotated[StorableText | None, Header()] = None,
    ) -> LegacySubmitted | LegacyEnvelope:
        request_id = await submit_or_refuse(
            state,
            body.flow or flow,
            body.params,
            priority=body.priority or 1,
            account_id=x_bb_account_id,
            expires_at=body.expires_at,
        )
        return LegacySubmitted.model_validate(
            {"status": {"type": "SUCCESS", "message": "Scrape request log added"}, "code": 200, "scrape_id": request_id}
        )

    missing: dict[int | str, dict[str, Any]] = {404: {"model": Problem}}
    reads: dict[int | str, dict[str, Any]] = {**BEAT_ERRORS, **missing}

    @api.get("/requests/{request_id}", response_model=RequestView, responses=reads)
    async def get_request(request_id: RequestId, state: State) -> dict[str, Any]:
        view = await read_status(state.pool, request_id)
        if view is None:
            raise HTTPException(404, f"no request {request_id}")
        return view

    @api.post(
        "/requests/{request_id}/retry",
        status_code=202,
        dependencies=[requires(ADMIN)],
        responses={**reads, 409: {"model": Problem}},
    )
    async def retry_request(request_id: RequestId, state: State) -> Redriven:
        """An operator's re-drive of one FAILED or DEAD_LETTERED request (``beat retry --id``)."""
        try:
            reopened = await reopen(state.pool, state.producer, settings, request_id)
        except UnknownRequest as exc:
            raise HTTPException(404, str(exc)) from None
        except NotReopenable as exc:
            raise HTTPException(409, str(exc)) from None
        return Redriven(
            id=reopened.request_id,
            status="REDRIVEN",
            attempt=reopened.attempt,
            redriven_from=reopened.reopened_from.value,
        )

    @api.get("/requests/{request_id}/timeline", response_model=Timeline, responses=reads)
    async def get_timeline(request_id: RequestId, state: State) -> dict[str, Any]:
        events = await read_timeline(state.pool, request_id)
        if not events:
            raise HTTPException(404, f"no request {request_id}")
        return {"id": request_id, "events": events, **await read_stored(state.pool, request_id)}

    # Unset keys stay out: the legacy answers carry no null ``code`` or ``scrape_id`` they never had.
    @legacy.get(
        "/scrape_request_log/flow/{request_id}",
        response_model=LegacyFound | LegacyEnvelope,
        response_model_exclude_unset=True,
    )
    async def get_legacy(request_id: RequestId, state: State) -> dict[str, Any]:
        view = await read_status(state.pool, request_id)
        if view is None:
            return {"status": {"type": "ERROR", "message": f"Scrape request {request_id} not found", "code": 404}}
        data = view["error"]["message"] if view["error"] else (json.dumps(view["result"]) if view["result"] else None)
        platform = view["platform"].lower() if view["platform"] else None
        return {
            "status": {"type": "SUCCESS", "message": "Scrape request found"},
            "post": {
                "scrape_id": view["id"],
                "data": data,
                "status": view["status"],
                "params": view["params"],
                "created_at": view["created_at"],
                "flow": view["flow"],
                "scraped_at": view["scraped_at"],
                "platform": platform,
            },
        }

    @api.get("/healthz")
    async def healthz() -> Health:
        # Liveness only: an outage of a dependency must not get a working facade restarted.
        return Health(status="ok")

    @api.get("/readyz", response_model=Readiness, responses={503: {"model": Readiness}})
    async def readyz(state: State) -> JSONResponse:
        checks = await readiness(state.pool, state.producer)
        down = [name for name, outcome in checks.items() if outcome != "ok"]
        return JSONResponse(
            {"status": "unavailable" if down else "ready", "down": down, "checks": checks},
            status_code=503 if down else 200,
        )

    @api.get("/heartbeat", response_model=Heartbeat, responses={410: {"model": Heartbeat}})
    async def get_heartbeat(state: State) -> Response:
        # 410 tells a load balancer to drain this instance (legacy behaviour).
        if state.heartbeat:
            return JSONResponse({"beat": True})
        return JSONResponse({"beat": False}, status_code=410)

    @api.put("/heartbeat", dependencies=[requires(ADMIN)])
    async def put_heartbeat(state: State, beat: bool = Query(...)) -> Heartbeat:
        state.heartbeat = beat
        return Heartbeat(beat=beat)

    @api.get("/flows/{flow}", responses=missing)
    async def flow_info(flow: str) -> FlowInfo:
        try:
            spec = get_flow(flow)
        except UnknownFlow as exc:
            raise HTTPException(404, str(exc)) from None
        return FlowInfo(
            name=spec.name,
            platform=spec.platform.value,
            enabled=is_enabled(spec, settings.disabled_flows),
            concurrency=settings.concurrency_of(spec),
            params=spec.params.model_json_schema(),
        )

    api.include_router(legacy)
    api.include_router(legacy_posts_router)
    api.include_router(legacy_profiles)
    api.include_router(legacy_scrape_log)
    api.include_router(legacy_youtube)
    add_status_page(api)
    return api
