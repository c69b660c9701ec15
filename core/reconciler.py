"""The backstop of the terminal-state guarantee (contract §2). It runs inside ``beat sink``.

* PROCESSING well past its flow's timeout plus a grace period: its worker died or
  its record was skipped. Re-drive it as the next attempt, at most
  ``reconcile_max_redrives`` times, then mark it FAILED saying so.
* RETRYING well past its due time plus the grace period: its retry record was lost. Re-drive it
  as the next attempt, spending one attempt of its retry budget (``BEAT_RETRY_MAX_ATTEMPTS``, shared
  with the worker's retries), or mark it FAILED when the budget is spent.
* PENDING recorded by a submitter but never handed to the broker: produce it.
* PENDING (or REDRIVEN) and handed to the broker, but the broker no longer has its record (an
  in-memory broker restarted empty): produce it again. Which one that is, is read back from the
  broker at the partition and offset recorded when it was produced (``core.presence``).

A re-drive of a PROCESSING request spends an attempt of the same budget.

A request waiting in a topic backlog is PENDING (or REDRIVEN) and enqueued, its record is where it was
produced, and it is never touched. Those checks are bounded: at most ``CHECKS_PER_PASS`` rows a pass,
taken in turn (a cursor over the rows), and a row found waiting is looked at again only after
``RECHECK_PASSES`` passes, unless the broker has lost records since: each pass reads back, per
partition, the furthest record found waiting, and when one is gone every row is looked at again.
A row produced before its offset was recorded is left as it is. Every re-drive is counted in
``scrape_request_log.redrives`` and logged.

Beside its passes the reconciler keeps Beat's topics on the broker (``core.topic_admin.TopicKeeper``), every
``KEEP_TOPICS_EVERY`` seconds and before each pass, so that what a restarted in-memory broker lost is
created again before anything is produced to it.

Each row is handled on its own, so one request cannot stop the others. A row whose request
can never be produced (a record over ``BEAT_MAX_MESSAGE_BYTES``, a stored row that no longer
reads as a request, a flow Beat does not have) ends DEAD_LETTERED: a dead letter, then a
status event without the params. The status goes through the broker like every other one, so
the status table, the timeline, the legacy mirror and status consumers all see the request end;
it leaves the params out because they are what does not fit (the status table keeps the
stored ones). Any other failure of one row is logged once and the row is tried next pass.
A pass that fails as a whole is retried with backoff: for as long as an outage lasts, and a
few times for anything else, after which the reconciler stops and takes ``beat sink`` down.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import datetime

import asyncpg
from aiokafka import AIOKafkaProducer
from aiokafka.errors import MessageSizeTooLargeError
from pydantic import ValidationError

from core import pruning
from core.backoff import exhausted, spend
from core.failures import LoopFailures
from core.metrics import RECONCILER_ACTIONS, REDRIVES, child
from core.outage import is_outage
from core.presence import Probe, Produced
from core.requests import TooLarge, check_fits, enqueue, entity_key, record_enqueued
from core.settings import Settings
from core.topic_admin import TopicKeeper, all_topics
from topics import names
from topics.dead_letter import RawRecord, bounded_key, dead_letter, error_info, record_size
from topics.errors import BeatError, Decision
from topics.flows import FLOWS
from topics.models import ErrorInfo, Platform, RequestStatus, ScrapeRequest, Status

log = logging.getLogger(__name__)

_REQUEST_COLUMNS = (
    "id, flow, platform, params, priority, retry_count, attempt, account_id, idempotency_key, "
    "created_at, expires_at, redrives, retries_spent, due_at, error_type, error_message"
)

# When the request's current run of transient failures began: its first RETRYING since the last operator
# re-drive (which starts a fresh budget). BEAT_RETRY_MAX_WAIT counts from it.
_FIRST_FAILED_AT = """
SELECT min(at) FROM scrape_request_event
WHERE request_id = $1 AND status = 'RETRYING' AND attempt >= COALESCE(
    (SELECT max(attempt) FROM scrape_request_event WHERE request_id = $1 AND status = 'REDRIVEN'), 0)
"""

# Failed passes in a row, on something other than an outage, before the reconciler gives up.
FATAL_AFTER = 5
MAX_BACKOFF = 60.0
# The smallest message limit Beat allows (``Settings.max_message_bytes``), which ``dead_letter`` always fits.
SMALLEST_LETTER = 4096
# Rows waiting in a backlog whose records are read back in one pass, and how many passes a row found there
# waits before it is looked at again.
CHECKS_PER_PASS = 500
RECHECK_PASSES = 10
# Seconds between two looks at the broker's topic list: a restarted in-memory broker is given its topics
# back within about this long.
KEEP_TOPICS_EVERY = 1.0
# Room for a record's batch around the record itself, when one is read back.
_BATCH_OVERHEAD = 4096


class Unproducible(BeatError):
    """The row's request can never be on the broker; it ends DEAD_LETTERED with this error."""

    decision = Decision.POISON

    def __init__(self, error_type: str, message: str, request: ScrapeRequest | None = None) -> None:
        super().__init__(message)
        self.error = error_info(error_type, message)
        self.request = request


def stored_request(row: asyncpg.Record, retry_count: int, first_failed_at: datetime | None = None) -> ScrapeRequest:
    """The request a ``scrape_request_log`` row holds, as attempt ``retry_count + 1``; Unproducible when its
    stored values no longer make a valid request."""
    try:
        return ScrapeRequest(
            id=row["id"],
            flow=row["flow"],
            platform=Platform(row["platform"]) if row["platform"] else None,
            params=row["params"] if isinstance(row["params"], dict) else json.loads(row["params"]),
            priority=row["priority"],
            retry_count=retry_count,
            account_id=row["account_id"],
            idempotency_key=row["idempotency_key"],
            created_at=row["created_at"],
            expires_at=row["expires_at"],
            retries_spent=row["retries_spent"],
            first_failed_at=first_failed_at,
        )
    except (ValidationError, ValueError, RecursionError) as exc:  # RecursionError: params nested past json's reach
        raise Unproducible("InvalidRequest", f"the stored row is not a valid request: {exc}") from None


def _stand_in(row: asyncpg.Record) -> ScrapeRequest | None:
    """The row's id and attempt as a request, for a dead letter that names them; None if even those are bad."""
    try:
        return ScrapeRequest(id=row["id"], flow=row["flow"], params={}, retry_count=row["attempt"] - 1)
    except ValidationError:
        return None


def _platform(value: str | None) -> Platform | None:
    try:
        return Platform(value) if value else None
    except ValueError:
        return None


class Reconciler:
    def __init__(self, settings: Settings, pool: asyncpg.Pool, producer: AIOKafkaProducer) -> None:
        self.settings = settings
        self.pool = pool
        self.producer = producer
        interval = settings.reconcile_interval
        self.failures = LoopFailures(
            log,
            "reconciler pass",
            [min(interval * 2**n, max(interval, MAX_BACKOFF)) for n in range(8)],
            outage=is_outage,
            fatal_after=FATAL_AFTER,
        )
        # The last failure logged for each row that failed for a reason of its own, so it is logged once.
        self._row_failures: dict[str, str] = {}
        # Rows ended DEAD_LETTERED whose status the sink may not have written yet: not ended twice.
        self._ended: set[str] = set()
        self._keeper = TopicKeeper(settings, producer.client, all_topics(settings, FLOWS))
        self._probe = Probe(producer.client, settings.max_message_bytes + _BATCH_OVERHEAD)
        self._keeping = LoopFailures(
            log,
            "keeping the topics",
            [KEEP_TOPICS_EVERY * 2**n for n in range(6)],
            outage=is_outage,
            fatal_after=FATAL_AFTER,
        )
        # Rows whose record was found in its backlog (id -> when, monotonic, and where), and the rows checked so
        # far in turn (the last one's status_at and id).
        self._waiting: dict[str, tuple[float, Produced]] = {}
        self._cursor: tuple[datetime, str] | None = None

    def _deadline(self, flow: str) -> float:
        timeout = self.settings.timeout_of(FLOWS[flow])
        return timeout + self.settings.reconcile_grace

    async def run_forever(self) -> None:
        """Passes, and the topics kept, until cancelled; ``LoopBroken`` (in an ExceptionGroup) ends it when either
        keeps failing on something not an outage."""
        async with asyncio.TaskGroup() as group:
            group.create_task(self._keep_topics())
            group.create_task(self._passes())

    async def _passes(self) -> None:
        while True:
            try:
                await self.run_once()
            except Exception as exc:  # noqa: BLE001 - any failure is logged, waited out and retried
                await asyncio.sleep(self.failures.failed(exc))
                continue
            self.failures.succeeded()
            await asyncio.sleep(self.settings.reconcile_interval)

    async def _keep_topics(self) -> None:
        while True:
            try:
                await self._keeper.check()
            except Exception as exc:  # noqa: BLE001 - any failure is logged, waited out and retried
                await asyncio.sleep(self._keeping.failed(exc))
                continue
            self._keeping.succeeded()
            await asyncio.sleep(KEEP_TOPICS_EVERY)

    async def run_once(self) -> dict[str, int]:
        # The topics first: a record produced to a topic the broker lost would be kept by nobody.
        await self._keeper.check()
        counts = {"redriven": 0, "abandoned": 0, "enqueued": 0, "reproduced": 0, "dead_lettered": 0, "pruned": 0}
        seen: set[str] = set()
        for rows, handle in (
            (await self._stuck(), self._settle_stuck),
            (await self._overdue(), self._settle_overdue),
            (await self._unsent(), self._produce_unsent),
            (await self._lost(), self._produce_lost),
        ):
            for row in rows:
                seen.add(row["id"])
                outcome = await self._each(row, handle)
                if outcome:
                    counts[outcome] += 1
                    child(RECONCILER_ACTIONS, outcome).inc()
                    if outcome == "redriven":
                        REDRIVES.inc()
        self._ended &= seen
        self._row_failures = {rid: failure for rid, failure in self._row_failures.items() if rid in seen}
        # Each pass keeps the stored-count ledger down to the requests still being counted.
        counts["pruned"] = await pruning.prune(self.pool)
        counts["pruned"] += await pruning.prune_history(self.pool, self.settings.history_retention_days)
        child(RECONCILER_ACTIONS, "pruned").inc(counts["pruned"])
        return counts

    # Finding the rows: scalars only, so that no single row's stored values can break the query.

    async def _stuck(self) -> list[asyncpg.Record]:
        deadlines = {name: self._deadline(name) for name in FLOWS}
        return await self.pool.fetch(
            "SELECT l.id, l.flow, l.attempt, l.redrives FROM scrape_request_log l "
            "LEFT JOIN unnest($1::text[], $2::float8[]) AS d(flow, deadline) ON d.flow = l.flow "
            "WHERE l.status = 'PROCESSING' AND l.status_at < now() - make_interval(secs => COALESCE(d.deadline, $3))",
            list(deadlines),
            list(deadlines.values()),
            min(deadlines.values(), default=0.0),
        )

    async def _overdue(self) -> list[asyncpg.Record]:
        return await self.pool.fetch(
            "SELECT id, flow, attempt FROM scrape_request_log "
            "WHERE status = 'RETRYING' AND due_at < now() - make_interval(secs => $1)",
            self.settings.reconcile_grace,
        )

    async def _unsent(self) -> list[asyncpg.Record]:
        return await self.pool.fetch(
            "SELECT id, flow, attempt FROM scrape_request_log "
            "WHERE NOT enqueued AND ((status = 'PENDING' AND created_at < now() - make_interval(secs => $1)) "
            # A re-drive whose record never reached the broker (core/redrive.py claims it not enqueued).
            "OR (status = 'REDRIVEN' AND status_at < now() - make_interval(secs => $1)))",
            self.settings.reconcile_pending_after,
        )

    async def _lost(self) -> list[asyncpg.Record]:
        """The rows waiting in a backlog, up to ``CHECKS_PER_PASS`` of them in turn, whose record the broker no
        longer has."""
        now = time.monotonic()
        recheck_after = RECHECK_PASSES * self.settings.reconcile_interval
        self._waiting = {rid: seen for rid, seen in self._waiting.items() if now - seen[0] < recheck_after}
        if await self._probe.lost(self._furthest_waiting()):
            self._waiting.clear()  # the broker lost records it had: none found earlier can be counted on
        rows = await self.pool.fetch(
            "SELECT id, flow, attempt, enqueued_topic, enqueued_partition, enqueued_offset, status_at "
            "FROM scrape_request_log "
            "WHERE status IN ('PENDING', 'REDRIVEN') AND enqueued AND enqueued_offset IS NOT NULL "
            "AND status_at < now() - make_interval(secs => $1) "
            "AND ($2::timestamptz IS NULL OR (status_at, id) > ($2::timestamptz, $3::text)) "
            # Only this deployment's topics: another topic prefix on the same database is another reconciler's.
            "AND left(enqueued_topic, length($5)) = $5 "
            "ORDER BY status_at, id LIMIT $4",
            self.settings.reconcile_pending_after,
            *(self._cursor or (None, "")),
            CHECKS_PER_PASS,
            self.settings.topic(names.scrape_topic("")),
        )
        self._cursor = (rows[-1]["status_at"], rows[-1]["id"]) if len(rows) == CHECKS_PER_PASS else None
        due = {row["id"]: row for row in rows if row["id"] not in self._waiting and row["flow"] in FLOWS}
        produced = [
            Produced(
                row["id"],
                # Where it was produced: its flow's bulk topic or priority lane.
                row["enqueued_topic"],
                row["enqueued_partition"],
                row["enqueued_offset"],
            )
            for row in due.values()
        ]
        gone = {item.request_id for item in await self._probe.lost(produced)}
        self._waiting.update((item.request_id, (now, item)) for item in produced if item.request_id not in gone)
        return [due[rid] for rid in gone]

    def _furthest_waiting(self) -> list[Produced]:
        """Per partition, the row found waiting whose record is furthest along: after a restart the broker has
        at best other records there."""
        furthest: dict[tuple[str, int], Produced] = {}
        for _, item in self._waiting.values():
            current = furthest.get((item.topic, item.partition))
            if current is None or item.offset > current.offset:
                furthest[(item.topic, item.partition)] = item
        return list(furthest.values())

    async def _each(self, row: asyncpg.Record, handle: Callable[[asyncpg.Record], Awaitable[str]]) -> str:
        """What became of one row ("" when nothing did); only an outage escapes, failing the pass."""
        if row["id"] in self._ended:
            return ""
        try:
            return await self._settle(row, handle)
        except Exception as exc:
            if is_outage(exc):
                raise  # the rows after this one would meet it too
            failure = f"{type(exc).__name__}: {exc}"
            if self._row_failures.get(row["id"]) != failure:
                log.error(
                    "reconciler: request %s (%s) failed; it is tried again next pass",
                    row["id"],
                    row["flow"],
                    exc_info=exc,
                )
            self._row_failures[row["id"]] = failure
            return ""

    async def _settle(self, row: asyncpg.Record, handle: Callable[[asyncpg.Record], Awaitable[str]]) -> str:
        try:
            if row["flow"] not in FLOWS:
                raise Unproducible("UnknownFlow", f"flow {row['flow']!r}: unknown flow")
            return await handle(row)
        except Unproducible as exc:
            unproducible = exc
        except MessageSizeTooLargeError as exc:
            unproducible = Unproducible("MessageTooLarge", f"the producer refused it: {exc}")
        await self._dead_letter(row, unproducible)
        return "dead_lettered"

    async def _load(self, request_id: str) -> asyncpg.Record | None:
        try:
            return await self.pool.fetchrow(
                f"SELECT {_REQUEST_COLUMNS} FROM scrape_request_log WHERE id = $1", request_id
            )
        except (OverflowError, ValueError) as exc:
            # A value Postgres holds and Python cannot, such as a time after the year 9999.
            raise Unproducible("InvalidRequest", f"the stored row cannot be read: {exc}") from None

    def _check_size(self, request: ScrapeRequest) -> None:
        try:
            check_fits(request, self.settings.max_message_bytes)
        except TooLarge as exc:
            raise Unproducible("MessageTooLarge", f"{exc} (BEAT_MAX_MESSAGE_BYTES)", request) from None

    # PROCESSING for too long, or RETRYING long past its due time

    async def _settle_stuck(self, row: asyncpg.Record) -> str:
        stored = await self._load(row["id"])
        if stored is None:
            return ""
        if row["redrives"] >= self.settings.reconcile_max_redrives:
            await self._give_up(
                stored,
                ErrorInfo(
                    type="Abandoned",
                    message=f"no terminal status after {stored['redrives']} re-drives: the worker "
                    f"died or the record was lost",
                ),
            )
            return "abandoned"
        lost = ErrorInfo(type="Abandoned", message="no terminal status: the worker died or the record was lost")
        return await self._redrive(stored, Status.PROCESSING, lost, "it was PROCESSING for too long")

    async def _settle_overdue(self, row: asyncpg.Record) -> str:
        stored = await self._load(row["id"])
        if stored is None:
            return ""
        due = stored["due_at"].isoformat() if stored["due_at"] else "?"
        lost = ErrorInfo(
            type=stored["error_type"] or "Lost",
            message=f"{stored['error_message'] or 'a transient failure'} (its retry, due at {due}, never came back)",
        )
        return await self._redrive(stored, Status.RETRYING, lost, f"its retry due at {due} never came back")

    async def _redrive(self, stored: asyncpg.Record, status: Status, lost: ErrorInfo, why: str) -> str:
        """Produce the next attempt of a request left ``status``, spending an attempt of its retry budget, or
        end it FAILED when the budget is spent."""
        first_failed_at = await self.pool.fetchval(_FIRST_FAILED_AT, stored["id"])
        current = stored_request(stored, retry_count=stored["attempt"] - 1, first_failed_at=first_failed_at)
        spent = spend(current, self.settings)
        if spent is None:
            await self._give_up(stored, exhausted(current.retries_spent + 1, lost).error)
            return "abandoned"
        request = current.model_copy(update={"retry_count": stored["attempt"], "retries_spent": spent})
        # Claim it first: if another sink process got here, the UPDATE matches nothing. Until the record is on
        # the broker the row is not enqueued, so a failure to produce it leaves it to the unsent pass.
        claimed = await self.pool.execute(
            "UPDATE scrape_request_log SET status = 'PENDING', attempt = $2, retry_count = $3, retries_spent = $5, "
            "due_at = NULL, status_at = now(), redrives = redrives + 1, redriven_at = now(), updated_at = now(), "
            "enqueued = false WHERE id = $1 AND status = $6 AND attempt = $4",
            request.id,
            request.attempt,
            request.retry_count,
            stored["attempt"],
            spent,
            status.value,
        )
        if claimed != "UPDATE 1":
            return ""
        log.warning(
            "reconciler: re-driving %s (%s) as attempt %d (%d of %d attempts spent); %s",
            request.id,
            request.flow,
            request.attempt,
            spent,
            self.settings.retry_max_attempts,
            why,
        )
        self._check_size(request)
        await self._enqueue(request)
        return "redriven"

    async def _give_up(self, stored: asyncpg.Record, error: ErrorInfo) -> None:
        try:
            request: ScrapeRequest | None = stored_request(stored, retry_count=stored["attempt"] - 1)
        except Unproducible:
            request = None
        error = error_info(error.type, error.message)
        await self._send_status(self._status(stored, stored["attempt"], request, Status.FAILED, error))
        log.error("reconciler: %s (%s) FAILED: %s", stored["id"], stored["flow"], error.message)

    async def _produce_stored(self, request_id: str) -> ScrapeRequest | None:
        """Produce a PENDING (or REDRIVEN) request as recorded, its attempt and retry budget unchanged; None when
        the row is gone."""
        stored = await self._load(request_id)
        if stored is None:
            return None
        request = stored_request(
            stored,
            retry_count=stored["retry_count"],
            first_failed_at=await self.pool.fetchval(_FIRST_FAILED_AT, stored["id"]),
        )
        self._check_size(request)
        await self._enqueue(request)
        return request

    # PENDING and never handed to the broker

    async def _produce_unsent(self, row: asyncpg.Record) -> str:
        request = await self._produce_stored(row["id"])
        if request is None:
            return ""
        log.warning("reconciler: produced %s (%s), recorded but never handed to the broker", request.id, request.flow)
        return "enqueued"

    # PENDING and handed to the broker, which lost its record

    async def _produce_lost(self, row: asyncpg.Record) -> str:
        # Claim it: not enqueued until produced again (a failure leaves it to the unsent pass), and nothing if the
        # row moved on meanwhile or another sink's reconciler claimed it first.
        claimed = await self.pool.execute(
            "UPDATE scrape_request_log SET enqueued = false WHERE id = $1 AND status IN ('PENDING', 'REDRIVEN') "
            "AND enqueued AND enqueued_partition = $2 AND enqueued_offset = $3",
            row["id"],
            row["enqueued_partition"],
            row["enqueued_offset"],
        )
        if claimed != "UPDATE 1":
            return ""
        request = await self._produce_stored(row["id"])
        if request is None:
            return ""
        log.warning(
            "reconciler: produced %s (%s) again: the broker no longer has its record (partition %d, offset %d)",
            request.id,
            request.flow,
            row["enqueued_partition"],
            row["enqueued_offset"],
        )
        return "reproduced"

    async def _enqueue(self, request: ScrapeRequest) -> None:
        try:
            placed = await enqueue(self.producer, self.settings, request)
        except MessageSizeTooLargeError as exc:
            raise Unproducible("MessageTooLarge", f"the producer refused it: {exc}", request) from None
        await record_enqueued(self.pool, [placed])

    # Ending a request that can never be produced

    @staticmethod
    def _status(
        row: asyncpg.Record, attempt: int, request: ScrapeRequest | None, status: Status, error: ErrorInfo
    ) -> RequestStatus:
        if request is not None:
            return RequestStatus.of(request, status, error=error)
        return RequestStatus(
            request_id=row["id"],
            status=status,
            attempt=attempt,
            flow=row["flow"],
            platform=_platform(row.get("platform")),
            error=error,
        )

    async def _send_status(self, event: RequestStatus) -> None:
        """Produce ``event``, without its params when they are what does not fit a record."""
        topic, key = self.settings.topic(names.STATUS), event.request_id.encode()
        bare = event.model_copy(update={"params": {}})
        value = event.to_bytes()
        if record_size(key, value) > self.settings.max_message_bytes:
            value = bare.to_bytes()
        try:
            await self.producer.send_and_wait(topic, value, key=key)
        except MessageSizeTooLargeError:
            if not event.params:
                raise
            # A producer stricter than BEAT_MAX_MESSAGE_BYTES: the status still goes, without what is large.
            await self.producer.send_and_wait(topic, bare.to_bytes(), key=key)

    async def _dead_letter(self, row: asyncpg.Record, unproducible: Unproducible) -> None:
        request, error = unproducible.request, unproducible.error
        attempt = request.attempt if request is not None else row["attempt"]
        flow = row["flow"]
        if request is not None:
            entity = entity_key(request.params)
            original = RawRecord(
                self.settings.request_topic(flow, request.priority),
                -1,
                -1,
                None,
                entity.encode() if entity else None,
                request.to_bytes(),
                {},
            )
        else:
            # Never produced and not a request: the letter names the row (offset -1: no record ever existed).
            original = RawRecord(
                self.settings.topic(names.scrape_topic(flow)),
                -1,
                -1,
                None,
                None,
                json.dumps({"id": row["id"], "flow": flow}).encode(),
                {},
            )
        named = request or _stand_in(row)
        topic, key = self.settings.topic(names.DEAD_LETTER), bounded_key(original.key)
        letter = dead_letter(original, error, max_bytes=self.settings.max_message_bytes, flow=flow, request=named)
        try:
            await self.producer.send_and_wait(topic, letter.to_bytes(), key=key)
        except MessageSizeTooLargeError:
            # A producer stricter than BEAT_MAX_MESSAGE_BYTES: the smallest letter still says what happened.
            letter = dead_letter(original, error, max_bytes=SMALLEST_LETTER, flow=flow, request=named)
            await self.producer.send_and_wait(topic, letter.to_bytes(), key=key)
        await self._send_status(self._status(row, attempt, request, Status.DEAD_LETTERED, error))
        # Not produced by the unsent pass again; the sink's DEAD_LETTERED makes this final.
        await self.pool.execute("UPDATE scrape_request_log SET enqueued = true WHERE id = $1", row["id"])
        self._ended.add(row["id"])
        log.error("reconciler: %s (%s) DEAD_LETTERED: %s: %s", row["id"], flow, error.type, error.message)
