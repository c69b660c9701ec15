"""How a CSV export runs: its scrape step as child requests, its input ids, and its files streamed from
Postgres into the asset store (legacy §11.2).

Files are ``CSVWithNames`` as the legacy wrote them: a header of the legacy column names, NULL as an empty
field. Postgres writes them itself (``COPY (query) TO STDOUT``), and the bytes go chunk by chunk into the
store's upload (an S3 multipart upload, or a file renamed into place when whole), so no report is ever
held in memory whatever its size. Keys are ``Data_request/<folder>/{y}/{m}/{d}/…`` with today's UTC date
unpadded, and the job is ``beat_scrape_<request id>``.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import date
from typing import Any

from agents.flows.children import Child, ChildFailure
from agents.flows.context import FlowContext
from agents.flows.report_tools import ReportTools
from providers.csv_lists import first_column
from topics.errors import BeatError, Decision
from topics.flows import get_flow
from topics.models import utcnow

CSV = "text/csv"
JSON_LINES = "application/x-ndjson"
# The share of the report's timeout its children may take; the rest is for reading and writing.
WAIT_SHARE = 0.9
# Ids per child request: a record well under the message limit, and a child well within its timeout.
CHILD_IDS = 500
# A CSV id list is read within this many seconds.
ID_LIST_TIMEOUT = 300.0
# JSON lines through COPY's CSV writer: a delimiter and quote no JSON text holds raw (JSON escapes control
# characters), so each value is written as it is, one per line. The text format would double backslashes.
_JSON_LINES_OPTIONS = {"format": "csv", "delimiter": "\x02", "quote": "\x01"}


class ReportNotConfigured(BeatError):
    """A report needs a setting this worker lacks; the message names it."""

    decision = Decision.DEFINITIVE


def job_id(request_id: str) -> str:
    return f"beat_scrape_{request_id}"


def day_path(today: date) -> str:
    return f"{today.year}/{today.month}/{today.day}"


def chunks(values: Sequence[str], size: int = CHILD_IDS) -> list[list[str]]:
    return [list(values[start : start + size]) for start in range(0, len(values), size)]


async def id_list(inline: Sequence[str] | None, path: str | None) -> list[str]:
    """The ids given inline or in the CSV at ``path``, trimmed, without blanks and repeats, in order."""
    ids: dict[str, None] = {}
    if path:
        async for value in first_column(path, timeout=ID_LIST_TIMEOUT):
            ids[value] = None
    for value in inline or ():
        if value.strip():
            ids[value.strip()] = None
    return list(ids)


class ReportRun:
    """One export's work: its children, its files, and its result."""

    def __init__(self, ctx: FlowContext) -> None:
        if ctx.reports is None:
            raise RuntimeError("the worker runtime opens the report tools")
        self.ctx = ctx
        self.tools: ReportTools = ctx.reports
        timeout = self.tools.settings.timeout_of(get_flow(ctx.request.flow or ""))
        self._started = time.monotonic()
        self._timeout = timeout
        self.job = job_id(ctx.request_id)
        self.day = day_path(utcnow().date())
        self.children: list[Child] = []
        self.failures: list[ChildFailure] = []
        self.rows: dict[str, int] = {}

    def left(self) -> float:
        return max(1.0, self._timeout - (time.monotonic() - self._started))

    async def scrape(self, flow: str, params: Sequence[dict[str, Any]]) -> list[Child]:
        """Submit one wave of children and wait until each is stored or has failed; the stored ones."""
        if not params:
            return []
        wave = await self.tools.children.submit(self.ctx.request, [(flow, p) for p in params], first=len(self.children))
        self.children += wave
        deadline = self._started + self._timeout * WAIT_SHARE
        failed = await self.tools.children.wait_stored(wave, deadline)
        self.failures += failed
        failed_ids = {f.id for f in failed}
        return [child for child in wave if child.id not in failed_ids]

    def key(self, folder: str, name: str) -> str:
        return f"Data_request/{folder}/{self.day}/{name}"

    async def copy(self, key: str, query: str, *args: Any, json_lines: bool = False) -> str:
        """``query``'s rows into the store at ``key``, streamed; where the file landed."""
        upload = await self.tools.store.open_upload(key, JSON_LINES if json_lines else CSV)
        options: dict[str, Any] = _JSON_LINES_OPTIONS if json_lines else {"format": "csv", "header": True}
        try:
            async with self.tools.pool.acquire() as conn:
                status = await conn.copy_from_query(query, *args, output=upload.write, timeout=self.left(), **options)
        except BaseException:
            await upload.abort()
            raise
        location = await upload.complete()
        self.rows[key.rsplit("/", 1)[-1]] = int(status.split()[-1])
        return location

    def result(self, **paths: str) -> dict[str, Any]:
        """The paths under their legacy names, as the legacy returned them, and how the scrape step went."""
        return {
            **paths,
            "rows": self.rows,
            "children": len(self.children),
            "failed_children": [failure.as_result() for failure in self.failures],
        }
