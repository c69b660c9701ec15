"""The live status page: ``GET /`` (open HTML, no data), its assets under ``/ui/`` (open), and ``GET /status``
(the JSON it polls, which needs a ``read`` key like every other read).

The page is rendered here with nothing but the window's length; ``/ui/status.js`` asks for a key only when
``/status`` refuses it (a keyless loopback facade needs none), keeps it in sessionStorage for the tab's life,
and polls. There is no front-end build: the assets are the files in ``app/static``.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, FastAPI, Query
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

from app.api_errors import BoundedRoute
from app.api_models import BEAT_ERRORS
from app.api_state import ApiState, api_state
from app.status_data import BudgetRow, StatusSnapshot, snapshot
from providers.budgets import budget_remaining

STATIC = Path(__file__).parent / "static"
DEFAULT_MINUTES = 5
POLL_SECONDS = 5

# BoundedRoute: with Postgres down, /status answers 503 with Retry-After, as every other read does.
router = APIRouter(route_class=BoundedRoute)

_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Beat status</title>
<link rel="stylesheet" href="/ui/status.css">
</head>
<body data-minutes="{minutes}" data-poll="{poll}">
<header>
  <h1>Beat</h1>
  <span id="updated">waiting for the first answer</span>
  <form id="search" autocomplete="off">
    <input id="search-id" name="id" placeholder="request id" aria-label="request id">
    <button type="submit">Find</button>
  </form>
</header>
<form id="key-form" hidden>
  <label>A <code>read</code> API key: <input id="key" type="password" autocomplete="off"></label>
  <button type="submit">Use it</button>
  <span id="key-problem"></span>
</form>
<section id="found" hidden></section>
<main>
  <section>
    <h2>Flows <small>over the last {minutes} minutes</small></h2>
    <table id="flows">
      <thead><tr><th>flow</th><th>rate /min</th><th>backlog</th><th>in flight</th><th>completed</th>
      <th>failed</th><th>retried</th><th>expired</th></tr></thead>
      <tbody></tbody>
    </table>
  </section>
  <section>
    <h2>Sources <small>attempts over the last {minutes} minutes</small></h2>
    <table id="sources">
      <thead><tr><th>source</th><th>attempts</th><th>errors</th><th>calls today</th><th>cost today</th>
      <th>breaker</th><th>open key circuits</th>
      <th>drift</th><th>usable keys</th><th>resting</th><th>expired</th><th>disabled</th></tr></thead>
      <tbody></tbody>
    </table>
  </section>
  <section>
    <h2>Budgets <small>today, per source or flow (BEAT_BUDGETS)</small></h2>
    <table id="budgets">
      <thead><tr><th>budget</th><th>limit</th><th>spent</th><th>left</th><th>resets</th></tr></thead>
      <tbody></tbody>
    </table>
  </section>
  <section>
    <h2>Latest failures <small>by error class, over the last {minutes} minutes</small></h2>
    <div id="failures"></div>
  </section>
  <section id="timeline" hidden></section>
</main>
<script src="/ui/status.js"></script>
</body>
</html>
"""


@router.get("/", response_class=HTMLResponse, include_in_schema=False)
async def status_page() -> HTMLResponse:
    return HTMLResponse(_PAGE.format(minutes=DEFAULT_MINUTES, poll=POLL_SECONDS))


@router.get("/status", responses=BEAT_ERRORS)
async def status(
    state: Annotated[ApiState, Depends(api_state)],
    minutes: Annotated[int, Query(ge=1, le=60, description="the window, in minutes")] = DEFAULT_MINUTES,
) -> StatusSnapshot:
    """Flows, sources and the latest failures, from Postgres, and what is left of each budget (from the budget
    store the workers reserve in): what the status page at ``/`` shows."""
    left: list[BudgetRow] = []
    # Without Redis each worker keeps its own reservations, which the facade cannot see (`beat costs` can).
    if state.settings.budgets and state.settings.redis_url:
        left = [BudgetRow(**asdict(row)) for row in await budget_remaining(state.settings, state.budget_store())]
    return await snapshot(state.pool, minutes, left)


def add_status_page(api: FastAPI) -> None:
    api.include_router(router)
    api.mount("/ui", StaticFiles(directory=STATIC), name="ui")
