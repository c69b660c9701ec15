"""``beat worker``: two Faust agents per enabled flow, its lanes: ``beat.scrape.<flow>`` (bulk) and
``beat.scrape.<flow>.priority`` (on demand), sharing the flow's concurrency, priority first (``agents/lanes.py``).

Per record: decode and validate (else dead-letter), PROCESSING, run the flow
under its timeout, produce its events, then COMPLETE or FAILED; an attempt that
ended transient (a retriable provider error, the flow's timeout) is RETRYING and
goes to a delay tier for its next attempt (``core/backoff.py``), which the retry
consumer (``agents/retry.py``, run by the runtime) hands back when due. The record is
acked only after everything it produced is acknowledged by the broker, so an
offset commit never runs ahead of the events (agents/offsets.py keeps commits
behind any record still in flight).

A dependency outage (Postgres, Redis, the broker) is nobody's verdict on a record:
the record waits, unacked, until the dependency answers, and is then worked again
in the same attempt (``agents/outages.py``). No record can stop an agent:
whatever else escapes the steps above is logged and the record dead-lettered. One
more agent refuses the selected disabled flows: their records are dead-lettered
with the reason.
"""

from __future__ import annotations

import asyncio
import logging
import random
import signal
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
import faust
from aiokafka.client import AIOKafkaClient
from mode.utils.logging import CompositeLogger

from agents.backpressure import FlowGate
from agents.faust_app import create_app
from agents.flows.assets import AssetRuntime
from agents.flows.children import Children
from agents.flows.context import FlowContext, FlowTools
from agents.flows.registry import check_handlers, handler_of
from agents.flows.report_tools import ReportTools
from agents.flows.tools import build_tools
from agents.lanes import FlowSlots
from agents.observing import WorkerObserver
from agents.outages import Outages, dependency_down
from agents.requests import Rejected, decode_request, refuse_request
from agents.retry import RetryConsumer, due_header
from agents.sentiment_feed import FLOW as SENTIMENT_FLOW
from agents.sentiment_feed import SentimentFeed
from core.backoff import Retry, after_transient
from core.health import Health
from core.kafka_security import client_options
from core.logs import flow_logger, request_context
from core.metrics import ATTEMPTS, DEAD_LETTERS, FLOW_DURATION, IN_FLIGHT, REQUESTS, child
from core.outage import BROKER, POSTGRES, REDIS
from core.queries import StoredData
from core.settings import Settings
from core.topic_admin import request_partitions
from core.tracing import TRACER, extract_context, inject_headers
from providers.breaker import Breaker
from providers.clients import build_clients
from providers.costs import calls_for
from providers.crawler import Crawler
from providers.credential_cache import CredentialCache
from providers.credentials import CredentialPolicy
from providers.drift import ParseRate
from providers.http import ProviderHttp
from providers.ratelimit import RateLimiter, calls_at
from providers.spending import Spending
from providers.youtube import ad_vs_organic
from topics import names
from topics.dead_letter import (
    RawRecord,
    bounded_key,
    dead_letter,
    error_info,
    record_size,
)
from topics.errors import BeatError, Decision
from topics.flows import FlowSelection, FlowSpec, disabled_reason
from topics.limits import status_budget
from topics.models import (
    ErrorInfo,
    Model,
    RequestStatus,
    ScrapeRequest,
    Status,
    TraceLog,
    utcnow,
)

log = logging.getLogger(__name__)

# Records a flow may have buffered before its partitions are paused: far below
# faust's buffer (stream_buffer_maxsize) even with a whole poll on top.
GATE_HIGH = 128
# After the drain's bound: how long cancelled flows get to put their requests back on the broker.
HAND_BACK_TIMEOUT = 10.0


class BrokerLostLog(BeatError):
    """The broker's partitions end before what this worker already read: it lost its log (restarted empty)."""

    decision = Decision.OUTAGE


class RecordTooLarge(BeatError, ValueError):
    """A record the worker was about to produce exceeds the message size limit."""

    decision = Decision.POISON


# How often the worker looks for partitions whose log the broker lost (agents/offsets.py).
LOST_LOG_CHECK = 0.5

# A worker's Postgres calls fail fast when the server is away, so an outage is seen, not waited on.
PG_CONNECT_TIMEOUT = 5.0
PG_COMMAND_TIMEOUT = 30.0


def event_records(
    events: list[tuple[str, str, Model]], max_bytes: int
) -> tuple[list[tuple[str, bytes, bytes]], ErrorInfo | None]:
    """A flow's events as (topic, key, value) records, or why one of them cannot be produced (then none is)."""
    records = []
    for topic, key, event in events:
        kind = getattr(event, "kind", type(event).__name__)
        try:
            key_bytes, value = key.encode(), event.to_bytes()
        except ValueError as exc:  # text UTF-8 cannot carry (a lone surrogate) from an answer
            return [], error_info("BadResponse", f"the {kind} event {key!r} cannot be serialized: {exc}")
        size = record_size(key_bytes, value)
        if size > max_bytes:
            return [], error_info(
                "BadResponse", f"the {kind} event {key!r} is {size} bytes, over the {max_bytes}-byte message limit"
            )
        records.append((topic, key_bytes, value))
    return records, None


class WorkerRuntime:
    """What every request agent of one worker process shares."""

    def __init__(
        self, settings: Settings, app: faust.App, flows: list[FlowSpec], refused: list[FlowSpec] | None = None
    ) -> None:
        self.settings = settings
        self.app = app
        self.flows = flows
        self.max_bytes = settings.max_message_bytes
        self._refusals = {spec.name: disabled_reason(spec.name, settings.disabled_flows) for spec in refused or ()}
        self.in_flight = 0
        # The flows running now, with their records: a drain that runs out of time hands these back.
        self._running: dict[asyncio.Future[Any], RawRecord] = {}
        self._handing_back = False
        self.draining = False
        self._idle = asyncio.Event()
        self._idle.set()
        self._pool: asyncpg.Pool | None = None
        self._http: ProviderHttp | None = None
        self._limiter: RateLimiter | None = None
        self._spending: Spending | None = None
        self._breaker: Breaker | None = None
        self._credentials: CredentialCache | None = None
        self.crawler: Crawler | None = None
        self.queries: StoredData | None = None
        self.assets: AssetRuntime | None = None
        self.tools: FlowTools | None = None
        self.reports: ReportTools | None = None
        self._gates: dict[str, FlowGate] = {}
        self._slots: dict[str, FlowSlots] = {}
        self._background: list[asyncio.Future] = []
        self.retries: RetryConsumer | None = None
        self.sentiment_feed: SentimentFeed | None = None
        self.outages: Outages | None = None
        self._rng = random.Random()
        self.started = False
        self.observer: WorkerObserver | None = None

    @property
    def credentials(self) -> CredentialCache | None:
        return self._credentials

    def observe(self, health: Health) -> None:
        """Report readiness, lag and credential states on the process's metrics port (``agents/observing.py``)."""
        self.observer = WorkerObserver(self, health)

    async def start(self) -> None:
        assert self.settings.database_url
        # No connection floor: asyncpg would log a warning every second of an outage trying to restore it.
        self._pool = await asyncpg.create_pool(
            self.settings.database_url,
            min_size=0,
            max_size=10,
            timeout=PG_CONNECT_TIMEOUT,
            command_timeout=PG_COMMAND_TIMEOUT,
        )
        self._limiter = RateLimiter.from_settings(self.settings)
        self.outages = Outages(
            {POSTGRES: self._postgres_answers, REDIS: self._limiter.ping, BROKER: self._broker_answers}
        )
        base_urls = dict(self.settings.provider_base_urls)
        if self.settings.ray_url:
            # RAY is one endpoint URL (legacy RAY_URL) rather than a host with paths.
            base_urls["ray"] = self.settings.ray_url
        if self.settings.ad_vs_organic_url:
            base_urls[ad_vs_organic.SOURCE] = self.settings.ad_vs_organic_url
        self._spending = Spending.from_settings(self.settings, self._pool)
        self._spending.start()
        self._http = ProviderHttp(
            base_urls=base_urls,
            timeout=self.settings.http_timeout,
            trace_sink=self._trace,
            limiter=self._limiter,
            spending=self._spending,
        )
        clients = build_clients(self._http, self.settings)
        self._credentials = await CredentialCache.open(
            self._pool,
            self.settings.database_url,
            refresh_interval=self.settings.credential_refresh_interval,
            max_age=self.settings.credential_max_age,
        )
        policy = CredentialPolicy(
            self._credentials,
            self.settings.credential_cooldown,
            self.settings.default_credential_cooldown,
            self.settings.credential_first_rest,
        )
        self._breaker = Breaker.from_settings(self.settings, self._pool)
        self.crawler = Crawler(
            self._credentials,
            policy,
            clients,
            self.settings.source_priorities,
            breaker=self._breaker,
            parse_rate=ParseRate(self.settings.drift_failure_rate, self.settings.drift_window),
        )
        self.queries = StoredData(self._pool)
        self.assets = await AssetRuntime.open(self.settings)
        self.tools = build_tools(self._http, self.settings, self._trace)
        self.reports = ReportTools(
            self._pool,
            self.assets.store,
            Children(self._pool, self._send, self.settings),
            self.settings,
            ad_vs_organic.AdVsOrganicClient(self._http) if self.settings.ad_vs_organic_url else None,
        )
        self.retries = RetryConsumer(self.settings, self._retries_broken)
        await self.retries.start()
        if any(spec.name == SENTIMENT_FLOW for spec in self.flows):
            # The pages of comments the likes and comments flows emit become this worker's sentiment requests.
            self.sentiment_feed = SentimentFeed(self.settings, self._feed_broken)
            await self.sentiment_feed.start()
        self._background.append(asyncio.ensure_future(self._watch_for_a_lost_log()))
        if self.observer is not None:
            self._background.append(asyncio.ensure_future(self.observer.run()))
        self.started = True

    async def _watch_for_a_lost_log(self) -> None:
        """Exit when the broker lost its log, so the worker starts again from the new one.

        A worker whose partitions were recreated empty keeps fetching from its old positions and would
        never see the records produced since, and faust offers no safe way to move a running stream back.
        Started again, its group (lost with the log) has no offsets, so it reads the new log from the start;
        its records in flight are redelivered or re-driven like any killed worker's.
        """
        while True:
            await asyncio.sleep(LOST_LOG_CHECK)
            try:
                lost = self.app.consumer.lost_log()  # type: ignore[attr-defined]  # agents.offsets' consumer
            except Exception:  # noqa: BLE001, S112 - not started, or mid-rebalance: the next tick looks again
                continue
            if lost:
                tp, end, read = lost[0]
                message = (
                    f"{tp.topic}[{tp.partition}] ends at offset {end}, before offset {read} this worker "
                    f"had reached: the broker lost its log; beat worker exits to start again from it"
                )
                log.critical(message)
                await self.app.crash(BrokerLostLog(message))
                return

    async def _retries_broken(self, broken: Exception) -> None:
        log.critical("the retry consumer cannot go on; beat worker exits", exc_info=broken)
        await self.app.crash(broken)

    async def _feed_broken(self, broken: Exception) -> None:
        log.critical("the sentiment feed cannot go on; beat worker exits", exc_info=broken)
        await self.app.crash(broken)

    async def _postgres_answers(self) -> None:
        assert self._pool is not None
        await self._pool.fetchval("SELECT 1")

    async def _broker_answers(self) -> None:
        client = AIOKafkaClient(bootstrap_servers=self.settings.kafka_url, **client_options(self.settings))
        try:
            await client.bootstrap()
        finally:
            await client.close()

    async def stop(self) -> None:
        if self.outages is not None:
            self.outages.close()
        if self.retries is not None:
            await self.retries.stop()
        if self.sentiment_feed is not None:
            await self.sentiment_feed.stop()
        for task in self._background:
            task.cancel()
        if self._http is not None:
            await self._http.aclose()
        if self._limiter is not None:
            await self._limiter.aclose()
        if self._spending is not None:
            await self._spending.aclose()
        if self._breaker is not None:
            await self._breaker.aclose()
        if self.assets is not None:
            await self.assets.aclose()
        if self.tools is not None:
            await self.tools.aclose()
        if self._credentials is not None:
            await self._credentials.aclose()
        if self._pool is not None:
            await self._pool.close()

    # producing

    async def _send(
        self, topic: str, key: bytes | None, value: bytes, headers: list[tuple[str, bytes]] | None = None
    ) -> asyncio.Future[Any]:
        """Hand a record to the producer; the returned future resolves when the broker has it."""
        size = record_size(key, value)
        if size > self.max_bytes:
            # Every caller sizes its records first; this keeps an oversight from reaching the producer.
            raise RecordTooLarge(f"a {size}-byte record for {topic}, over the {self.max_bytes}-byte message limit")
        # faust annotates send() as an Awaitable; its producer returns an asyncio future.
        return await self.app.producer.send(
            self.settings.topic(topic),
            key,
            value,  # type: ignore[return-value]
            partition=None,
            timestamp=None,
            # Inside a request's span, its records carry the trace on to the sink and the mirror.
            headers=inject_headers(headers),
        )

    async def _trace(self, record: TraceLog) -> None:
        # Not awaited to delivery: a trace is not worth holding a request for.
        await self._send(names.TRACE_LOG, None, record.to_bytes())

    async def _status(self, request: ScrapeRequest, status: Status, **fields: Any) -> asyncio.Future:
        child(REQUESTS, request.flow or "unknown", status.value).inc()
        event = RequestStatus.of(request, status, **fields)
        return await self._send(names.STATUS, event.request_id.encode(), event.to_bytes())

    # processing

    async def handle(self, spec: FlowSpec, record: RawRecord) -> None:
        """Process one record of an enabled flow; whatever happens, it ends accounted for or raises."""
        await self._guarded(self._process, spec, record)

    async def refuse(self, spec: FlowSpec, record: RawRecord) -> None:
        """Dead-letter one record of a disabled flow with the reason."""
        await self._guarded(self._refuse, spec, record)

    async def _guarded(
        self, work: Callable[[FlowSpec, RawRecord], Awaitable[None]], spec: FlowSpec, record: RawRecord
    ) -> None:
        assert self.outages is not None
        self.in_flight += 1
        self._idle.clear()
        in_flight = child(IN_FLIGHT, spec.name)
        in_flight.inc()
        try:
            while True:
                await self.outages.ready()
                try:
                    await work(spec, record)
                    return
                except Exception as exc:
                    if (down := dependency_down(exc)) is None:
                        raise
                    # Not the record's fault: worked again, in the same attempt, once the dependency is back.
                    await self.outages.wait_out(down)
        except Exception as exc:
            log.exception(
                "unexpected error on %s[%d]@%d; dead-lettering the record",
                record.topic,
                record.partition,
                record.offset,
            )
            # No status: writing one may be what failed. If even this fails, the error propagates
            # and the record stays uncommitted.
            error = error_info(type(exc).__name__, f"unexpected error in the worker: {exc}")
            await (await self._send_dead_letter(spec, record, error))
        finally:
            in_flight.dec()
            self.in_flight -= 1
            if self.in_flight == 0:
                self._idle.set()

    async def _refuse(self, spec: FlowSpec, record: RawRecord) -> None:
        rejected = refuse_request(spec, record, self.max_bytes, self._refusals[spec.name])
        await self._dead_letter(spec, record, rejected.error, rejected.request)

    async def _process(self, spec: FlowSpec, record: RawRecord) -> None:
        try:
            request, params = decode_request(spec, record, self.max_bytes)
            processing = self._processing_record(request)
        except Rejected as rejected:
            await self._dead_letter(spec, record, rejected.error, rejected.request)
            return
        attributes: dict[str, str | int] = {
            "beat.flow": spec.name,
            "beat.request_id": request.id or "",
            "beat.attempt": request.attempt,
        }
        with (
            request_context(spec.name, request.id, request.attempt),
            TRACER.start_as_current_span(
                f"flow {spec.name}", context=extract_context(record.headers), attributes=attributes
            ),
        ):
            await self._attempt(spec, record, request, params, processing)

    async def _attempt(
        self, spec: FlowSpec, record: RawRecord, request: ScrapeRequest, params: Any, processing: tuple[bytes, bytes]
    ) -> None:
        """One attempt of a decoded request, from PROCESSING to the status that ends it."""
        if request.expires_at is not None and request.expires_at <= utcnow():
            message = f"expired at {request.expires_at.isoformat()} before it was processed"
            await (await self._status(request, Status.EXPIRED, error=ErrorInfo(type="Expired", message=message)))
            return
        pending = [await self._send(names.STATUS, processing[0], processing[1])]
        child(REQUESTS, spec.name, Status.PROCESSING.value).inc()
        child(ATTEMPTS, spec.name).inc()
        assert self.crawler is not None
        assert request.id is not None  # decode_request refuses a request without one
        ctx = FlowContext(
            request=request,
            crawler=self.crawler,
            queries=self.queries,
            wait_scale=self.settings.flow_wait_scale,
            assets=self.assets,
            tools=self.tools,
            reports=self.reports,
        )
        timeout = self.settings.timeout_of(spec)
        error: ErrorInfo | None = None
        # A transient end is retried; ready_in is the seconds until a known ready time, if there is one.
        transient, ready_in = False, None
        try:
            # Every provider call the flow makes waits for its rate-limit slot at the request's priority, and
            # is spent (and budgeted) under the flow.
            with calls_at(request.priority), calls_for(spec.name):
                flow = asyncio.ensure_future(handler_of(spec)(ctx, params))
            self._running[flow] = record
            try:
                with child(FLOW_DURATION, spec.name).time():
                    result = await asyncio.wait_for(flow, timeout)
            finally:
                self._running.pop(flow, None)
        except asyncio.CancelledError:
            if not (self._handing_back and flow.cancelled()):
                raise
            # The drain ran out of time: the request goes back on its topic in the same attempt, for the next
            # worker, and this record's offset is committed once the broker has the copy.
            await asyncio.gather(*pending)
            await (await self._hand_back(record))
            return
        except TimeoutError:
            error = ErrorInfo(type="Timeout", message=f"flow did not finish within {timeout:g}s")
            transient = True
        except Exception as exc:
            if dependency_down(exc) is not None:
                raise  # an outage: the record waits for the dependency (_guarded)
            if isinstance(exc, BeatError) and exc.decision in (Decision.TRANSIENT, Decision.DEFINITIVE):
                # A provider's answer, or a failure of the flow's own whose class judges it (the asset store).
                error = error_info(type(exc).__name__, str(exc))
                transient, ready_in = exc.decision is Decision.TRANSIENT, getattr(exc, "ready_in", None)
            else:  # a bug or poison, not an answer: keep the record
                flow_logger(spec.name).exception("flow %s crashed on request %s", spec.name, request.id)
                await asyncio.gather(*pending)
                crash = error_info(type(exc).__name__, str(exc) or repr(exc))
                await self._dead_letter(spec, record, crash, request, source=",".join(ctx.sources) or None)
                return
        source = ",".join(ctx.sources) or None
        records: list[tuple[str, bytes, bytes]] = []
        if error is None:
            records, error = event_records(ctx.events, self.max_bytes)
        if error is None:
            result = {**(result or {}), "announced": sum(1 for topic, _, _ in records if topic in names.STORED_TOPICS)}
            complete, error = self._complete(request, source, result)
        if error is None:
            for topic, key, value in records:
                pending.append(await self._send(topic, key, value))
            pending.append(await self._send(names.STATUS, request.id.encode(), complete))
            child(REQUESTS, spec.name, Status.COMPLETE.value).inc()
        elif transient:
            pending.extend(await self._after_transient(record, request, source, error, ready_in))
        else:
            pending.append(await self._status(request, Status.FAILED, source=source, error=error))
        await asyncio.gather(*pending)

    async def _hand_back(self, record: RawRecord) -> asyncio.Future:
        assert record.value is not None  # decoded as a request above
        headers = [(name, value.encode()) for name, value in record.headers.items()]
        topic = record.topic.removeprefix(self.settings.topic_prefix)
        return await self._send(topic, record.key, record.value, headers)

    async def _after_transient(
        self, record: RawRecord, request: ScrapeRequest, source: str | None, error: ErrorInfo, ready_in: float | None
    ) -> list[asyncio.Future]:
        """RETRYING and the next attempt on its delay tier, or the status that ends the request instead."""
        outcome = after_transient(request, error, ready_in, self.settings, utcnow(), self._rng)
        if not isinstance(outcome, Retry):
            ended = error_info(outcome.error.type, outcome.error.message)
            spent = request.model_copy(update={"retries_spent": outcome.retries_spent})
            return [await self._status(spent, outcome.status, source=source, error=ended)]
        flow_logger(request.flow or "unknown").info(
            "request %s (%s) attempt %d failed transiently (%s); retrying at %s",
            request.id,
            request.flow,
            request.attempt,
            error.type,
            outcome.due_at.isoformat(),
        )
        retrying = await self._status(request, Status.RETRYING, source=source, error=error, due_at=outcome.due_at)
        following = await self._send(
            names.retry_topic(outcome.tier),
            record.key,
            outcome.request.to_bytes(),
            headers=[due_header(outcome.due_at.timestamp())],
        )
        return [retrying, following]

    def _processing_record(self, request: ScrapeRequest) -> tuple[bytes, bytes]:
        """The PROCESSING status as a (key, value) record; Rejected when the request's statuses, which repeat
        its params, could outgrow the message limit."""
        status = RequestStatus.of(request, Status.PROCESSING)
        key, value = status.request_id.encode(), status.to_bytes()
        size = record_size(key, value)
        if size > status_budget(self.max_bytes):
            raise Rejected(
                "MessageTooLarge",
                f"its status records would be {size} bytes before any error or "
                f"result, too close to the {self.max_bytes}-byte message limit",
                request,
            )
        return key, value

    def _complete(
        self, request: ScrapeRequest, source: str | None, result: dict[str, Any]
    ) -> tuple[bytes, ErrorInfo | None]:
        """The COMPLETE status record, or why the flow's result cannot be carried in one."""
        try:
            value = RequestStatus.of(request, Status.COMPLETE, source=source, result=result).to_bytes()
        except ValueError as exc:
            return b"", error_info("BadResponse", f"the result cannot be serialized: {exc}")
        assert request.id is not None
        size = record_size(request.id.encode(), value)
        if size > self.max_bytes:
            return b"", error_info(
                "BadResponse",
                f"the COMPLETE status with its result is {size} bytes, over the {self.max_bytes}-byte message limit",
            )
        return value, None

    async def _dead_letter(
        self,
        spec: FlowSpec,
        record: RawRecord,
        error: ErrorInfo,
        request: ScrapeRequest | None,
        source: str | None = None,
    ) -> None:
        log.warning(
            "dead-lettering %s[%d]@%d: %s: %s", record.topic, record.partition, record.offset, error.type, error.message
        )
        pending = [await self._send_dead_letter(spec, record, error, request, source)]
        if request is not None and request.id is not None:
            status = RequestStatus.of(request, Status.DEAD_LETTERED, error=error_info(error.type, error.message))
            key, value = status.request_id.encode(), status.to_bytes()
            if record_size(key, value) > self.max_bytes:
                # A request refused for its size: its params stay in the dead letter (cut to fit).
                value = status.model_copy(update={"params": {}}).to_bytes()
            pending.append(await self._send(names.STATUS, key, value))
            child(REQUESTS, spec.name, Status.DEAD_LETTERED.value).inc()
        await asyncio.gather(*pending)

    async def _send_dead_letter(
        self,
        spec: FlowSpec,
        record: RawRecord,
        error: ErrorInfo,
        request: ScrapeRequest | None = None,
        source: str | None = None,
    ) -> asyncio.Future:
        letter = dead_letter(record, error, max_bytes=self.max_bytes, flow=spec.name, request=request, source=source)
        child(DEAD_LETTERS, error.type).inc()
        return await self._send(names.DEAD_LETTER, bounded_key(record.key), letter.to_bytes())

    def watch(self, spec: FlowSpec, channel) -> None:
        """Start the lane's backpressure gate (once, although every actor of the agent calls this)."""
        topic = channel.get_topic_name()
        if topic in self._gates:
            return
        concurrency = self.settings.concurrency_of(spec)
        gate = FlowGate(
            self.app,
            topic,
            channel.queue,
            high=max(GATE_HIGH, 2 * concurrency),
            low=max(GATE_HIGH // 4, concurrency),
        )
        self._gates[topic] = gate
        self._background.append(asyncio.ensure_future(gate.run()))

    def slots_of(self, spec: FlowSpec) -> FlowSlots:
        """The flow's concurrency slots, shared by its two lanes."""
        if spec.name not in self._slots:
            self._slots[spec.name] = FlowSlots(self.settings.concurrency_of(spec))
        return self._slots[spec.name]

    # draining

    async def drain(self) -> None:
        """Stop taking records, let in-flight ones finish (each is bounded by its timeout), commit."""
        self.draining = True
        if self.retries is not None:
            await self.retries.stop()
        if self.sentiment_feed is not None:
            await self.sentiment_feed.stop()
        for gate in self._gates.values():
            gate.enabled = False
        consumer = self.app.consumer
        consumer.pause_partitions(consumer.assignment())
        bound = self.settings.drain_bound(self.flows)
        try:
            await asyncio.wait_for(self._idle.wait(), bound)
        except TimeoutError:
            running = len(self._running)
            log.warning("drain: %d flows still running after %.0fs; handing their requests back", running, bound)
            self._handing_back = True
            for flow in list(self._running):
                flow.cancel()
            try:
                await asyncio.wait_for(self._idle.wait(), HAND_BACK_TIMEOUT)
            except TimeoutError:
                log.warning("drain: %d records still in flight; they will be redelivered", self.in_flight)
            else:
                log.info("drain: %d requests handed back to their topics in the same attempt", running)
        await consumer.commit()
        log.info("drained: in-flight work finished and offsets committed")


def build_worker_app(settings: Settings, selection: FlowSelection) -> tuple[faust.App, WorkerRuntime]:
    check_handlers()
    app = create_app(settings, "worker")
    runtime = WorkerRuntime(settings, app, selection.enabled, selection.disabled)

    for spec in selection.enabled:
        for urgent, lane, partitions in (
            (False, names.scrape_topic(spec.name), request_partitions(settings, spec.name)),
            (True, names.priority_topic(spec.name), settings.priority_partitions),
        ):
            agent = app.agent(
                _request_topic(app, [settings.topic(lane)], partitions),
                name=f"flow.{lane.removeprefix(names.SCRAPE_PREFIX)}",
                concurrency=settings.concurrency_of(spec),
            )(_agent_for(runtime, spec, urgent=urgent))
            # faust logs every agent under one module logger; each flow's lines go under its own name.
            agent.log = CompositeLogger(flow_logger(spec.name), formatter=agent._format_log)  # type: ignore[attr-defined]
    log.info("running %s", ", ".join(spec.name for spec in selection.enabled) or "no flow")
    if selection.disabled:
        log.info("refusing the disabled %s", ", ".join(spec.name for spec in selection.disabled))
        # One agent for them all: refusing costs one produce per record, and these topics are quiet.
        by_topic = {
            settings.topic(topic(spec.name)): spec
            for spec in selection.disabled
            for topic in (names.scrape_topic, names.priority_topic)
        }
        app.agent(
            _request_topic(app, list(by_topic), settings.request_partitions), name="flows.disabled", concurrency=4
        )(_refusing_agent(runtime, by_topic))

    return app, runtime


def _request_topic(app: faust.App, topics: list[str], partitions: int) -> faust.TopicT:
    """Request topics (prefixed names) read as raw bytes."""
    return app.topic(
        *topics,
        key_type=bytes,
        value_type=bytes,
        key_serializer="raw",
        value_serializer="raw",
        partitions=partitions,
    )


async def _undrained(runtime: WorkerRuntime, stream: faust.StreamT):
    """The stream's events, with manual acks, until the worker drains.

    A record is acked only once its outcome is on the broker; a record cancelled mid-flight
    (shutdown, rebalance) stays unacked and is redelivered.
    """
    async for event in stream.noack().events():  # type: ignore[attr-defined]  # faust's StreamT omits noack
        if runtime.draining:
            await _leave_for_next_owner(event)
        yield event


async def _leave_for_next_owner(event: Any) -> None:
    """Leave the record uncommitted for the next owner: flagged so faust's shutdown stops waiting for it, but
    never recorded as processed."""
    event.message.acked = True
    await asyncio.Event().wait()


def _agent_for(runtime: WorkerRuntime, spec: FlowSpec, *, urgent: bool):
    slots = runtime.slots_of(spec)

    async def process(stream: faust.StreamT) -> None:
        runtime.watch(spec, stream.channel)
        async for event in _undrained(runtime, stream):
            async with slots.slot(urgent):
                if runtime.draining:  # it waited for its slot while the worker began to drain
                    await _leave_for_next_owner(event)
                await runtime.handle(spec, RawRecord.from_kafka(event.message))
            event.ack()

    process.__name__ = f"flow_{spec.name}{'_priority' if urgent else ''}"
    return process


def _refusing_agent(runtime: WorkerRuntime, by_topic: dict[str, FlowSpec]):
    async def refuse(stream: faust.StreamT) -> None:
        async for event in _undrained(runtime, stream):
            await runtime.refuse(by_topic[event.message.topic], RawRecord.from_kafka(event.message))
            event.ack()

    return refuse


class DrainingWorker(faust.Worker):
    """A faust Worker whose SIGTERM first drains in-flight requests, then stops."""

    def __init__(self, app: faust.App, runtime: WorkerRuntime, **kwargs: Any) -> None:
        super().__init__(app, **kwargs)
        self._runtime = runtime
        # Its terminal spinner writes control codes to standard output, between Beat's log lines.
        self.spinner = None

    def _setup_logging(self) -> None:
        # mode would swap Beat's one handler (core/logs.py) for its own coloured one on standard output.
        return

    async def on_first_start(self) -> None:
        await self._runtime.start()
        await super().on_first_start()

    async def on_shutdown(self) -> None:
        await super().on_shutdown()
        await self._runtime.stop()

    async def _stop_on_signal(self, signum: signal.Signals) -> None:
        if signum == signal.SIGTERM:
            await self._runtime.drain()
        await super()._stop_on_signal(signum)
