"""The legacy scrape-log routes (legacy §5): an account's requests, and a caller's status update of one.

``POST /scrape_request_log/flow/update/{scrape_id}`` set the legacy row's status directly. Beat's statuses move
only through events, so the two the legacy callers sent are mapped onto Beat's: PENDING asks for the request
again, which is an operator's re-drive of a FAILED or DEAD_LETTERED request (``core.redrive``), and FAILED ends
an open request FAILED. It answers null, as the legacy did; a request it cannot change is a legacy error.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from app.api_errors import LegacyRoute, legacy_error
from app.api_state import ApiState
from app.auth import ADMIN, requires
from app.legacy_posts_api import ErrorAnswer
from app.legacy_profiles import Identity, State
from core.reconciler import Unproducible, stored_request
from core.redrive import NotReopenable, UnknownRequest, reopen
from core.status_reads import STATUS_COLUMNS, status_view
from topics import names
from topics.limits import MAX_TEXT
from topics.models import ErrorInfo, RequestStatus, Status

router = APIRouter(route_class=LegacyRoute)

# The most requests one listing returns: the legacy had no bound, but a page must fit an answer.
MAX_LIST = 1000


class ScrapeEntry(BaseModel):
    scrape_id: str
    account_id: str | None
    data: str | None
    status: str
    params: dict[str, Any]
    created_at: datetime
    flow: str
    scraped_at: datetime | None
    platform: str | None


class ScrapeList(BaseModel):
    """No envelope, as the legacy answered."""

    account_id: str
    scrape_list: list[ScrapeEntry]


def scrape_entry(view: dict[str, Any]) -> ScrapeEntry:
    """A status row as the legacy listed it: ``data`` is the result as JSON text, or the error's message."""
    data = view["error"]["message"] if view["error"] else (json.dumps(view["result"]) if view["result"] else None)
    return ScrapeEntry(
        scrape_id=view["id"],
        account_id=view["account_id"],
        data=data,
        status=view["status"],
        params=view["params"],
        created_at=view["created_at"],
        flow=view["flow"],
        scraped_at=view["scraped_at"],
        platform=view["platform"].lower() if view["platform"] else None,
    )


@router.get("/list_scrape_data/{account_id}", response_model=ScrapeList | ErrorAnswer)
async def list_scrape_data(
    account_id: Identity, state: State, size: Annotated[int, Query(ge=1, le=MAX_LIST)] = 10
) -> ScrapeList:
    """The account's newest ``size`` requests (``x-bb-account-id`` when submitted), newest first."""
    rows = await state.pool.fetch(
        f"SELECT {STATUS_COLUMNS} FROM scrape_request_log WHERE account_id = $1 ORDER BY created_at DESC, id DESC "
        "LIMIT $2",
        account_id,
        size,
    )
    return ScrapeList(account_id=account_id, scrape_list=[scrape_entry(status_view(row)) for row in rows])


class StatusUpdate(BaseModel):
    """The legacy body; only ``status`` decides anything (Beat counts retries itself)."""

    model_config = ConfigDict(extra="ignore")
    status: Annotated[str, Field(max_length=MAX_TEXT)]
    flow: str | None = None
    platform: str | None = None
    params: dict[str, Any] | None = None
    retry_count: int | None = None


_FAIL_COLUMNS = (
    "id, flow, platform, params, priority, attempt, account_id, idempotency_key, created_at, expires_at, "
    "retries_spent, status"
)


async def fail(state: ApiState, scrape_id: str) -> None:
    """End an open request FAILED, as its caller said; a request already FAILED stays as it is."""
    row = await state.pool.fetchrow(f"SELECT {_FAIL_COLUMNS} FROM scrape_request_log WHERE id = $1", scrape_id)
    if row is None:
        raise UnknownRequest(f"no request {scrape_id}")
    if row["status"] == Status.FAILED.value:
        return
    if Status(row["status"]).is_terminal:
        raise NotReopenable(f"request {scrape_id} is {row['status']}")
    try:
        request = stored_request(row, retry_count=row["attempt"] - 1)
    except Unproducible as exc:
        raise NotReopenable(str(exc)) from None
    status = RequestStatus.of(
        request,
        Status.FAILED,
        error=ErrorInfo(type="FailedByCaller", message="set FAILED through /scrape_request_log/flow/update"),
    )
    await state.producer.send_and_wait(state.settings.topic(names.STATUS), status.to_bytes(), key=scrape_id.encode())


@router.post(
    "/scrape_request_log/flow/update/{scrape_id}",
    response_model=ErrorAnswer | None,
    # PENDING re-drives a request, as an operator's retry does.
    dependencies=[requires(ADMIN)],
)
async def update_status(
    scrape_id: Annotated[str, Path(min_length=1, max_length=MAX_TEXT)], body: StatusUpdate, state: State
) -> JSONResponse | None:
    """PENDING re-drives a FAILED or DEAD_LETTERED request; FAILED ends an open one FAILED. Answers null."""
    try:
        if body.status == Status.PENDING.value:
            await reopen(state.pool, state.producer, state.settings, scrape_id)
        elif body.status == Status.FAILED.value:
            await fail(state, scrape_id)
        else:
            return legacy_error(f"status {body.status[:40]!r} cannot be set; send PENDING or FAILED", 422)
    except UnknownRequest as exc:
        return legacy_error(str(exc), 404)
    except NotReopenable as exc:
        return legacy_error(str(exc), 409)
    return None
