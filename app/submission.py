"""Submitting a request from the facade, and waiting for a refresh to be stored.

``submit_or_refuse`` turns every refusal into a 4xx before anything is written; an outage escapes as
DependencyDown, which the facade answers with 503. ``refresh_and_wait`` is how a legacy route that refreshes
works: it never runs the flow itself, it submits on the flow's priority lane and answers from Postgres once the
sink has *stored* the request (contract §2: COMPLETE and every announced event written).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any, Literal

from fastapi import HTTPException
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError

from app.api_state import ApiState
from core.requests import InvalidParams, Refused, TooLarge, prepare, submit
from core.status_reads import read_status
from topics.flows import FlowRefused

# A refresh is polled from Postgres: often at first, since most finish within a second, then less often.
_FIRST_POLL = 0.02
_LAST_POLL = 0.25
_TERMINAL_BAD = ("FAILED", "EXPIRED", "DEAD_LETTERED")


async def submit_or_refuse(state: ApiState, flow: str, params: dict[str, Any], **fields: Any) -> str:
    """Validate, record and produce a request; its id. Every refusal is a 4xx, before anything is written."""
    try:
        request = prepare(flow, params, disabled=state.settings.disabled_flows, **fields)
        return await submit(state.pool, state.producer, state.settings, request)
    except FlowRefused as exc:
        raise HTTPException(422, {"message": str(exc), "enabled_flows": exc.enabled}) from None
    except ValidationError as exc:
        raise RequestValidationError(exc.errors(include_url=False)) from None
    except InvalidParams as exc:
        raise RequestValidationError(exc.errors) from None
    except TooLarge as exc:
        raise HTTPException(413, str(exc)) from None
    except Refused as exc:
        raise HTTPException(422, str(exc)) from None


@dataclass(frozen=True)
class RefreshOutcome:
    """How a refresh ended for the caller: ``stored`` (read Postgres now), ``failed`` (the request ended badly;
    ``error`` says why) or ``timeout`` (still running: the caller can poll ``request_id``)."""

    request_id: str
    outcome: Literal["stored", "failed", "timeout"]
    status: str | None = None
    error: dict[str, Any] | None = None


async def refresh_and_wait(
    state: ApiState, flow: str, params: dict[str, Any], *, timeout: float | None = None, **fields: Any
) -> RefreshOutcome:
    """Submit ``flow`` on its priority lane and wait, at most ``timeout`` seconds (``BEAT_API_REFRESH_TIMEOUT``
    by default), until the request is stored or has ended badly."""
    fields.setdefault("priority", state.settings.on_demand_priority)
    request_id = await submit_or_refuse(state, flow, params, **fields)
    return await wait_stored(state, request_id, timeout=timeout)


async def wait_stored(state: ApiState, request_id: str, *, timeout: float | None = None) -> RefreshOutcome:
    """Poll the request's status row until it is stored, ends badly, or ``timeout`` passes."""
    deadline = time.monotonic() + (state.settings.api_refresh_timeout if timeout is None else timeout)
    pause = _FIRST_POLL
    view: dict[str, Any] | None = None
    while True:
        view = await read_status(state.pool, request_id)
        if view is not None:
            if view["status"] == "COMPLETE" and view["stored"]:
                return RefreshOutcome(request_id, "stored", view["status"])
            if view["status"] in _TERMINAL_BAD:
                return RefreshOutcome(request_id, "failed", view["status"], view["error"])
        if time.monotonic() + pause > deadline:
            return RefreshOutcome(request_id, "timeout", view["status"] if view else None)
        await asyncio.sleep(pause)
        pause = min(pause * 2, _LAST_POLL)
