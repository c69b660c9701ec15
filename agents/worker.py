"""``beat worker``: one Faust agent per enabled flow, each on ``beat.scrape.<flow>``.

Per record: decode and validate (else dead-letter), PROCESSING, run the flow
under its timeout, produce its events, then COMPLETE or FAILED. The record is
acked only after everything it produced is acknowledged by the broker, so an
offset commit never runs ahead of the events (agents/offsets.py keeps commits
behind any record still in flight).
"""

from __future__ import annotations

import asyncio
import logging
import signal
from typing import Any

import asyncpg
import faust

from agents.backpressure import FlowGate
from agents.flows.assets import AssetRuntime
from agents.flows.context import FlowContext, FlowTools
from agents.flows.registry import FlowSpec, timeout_of
from agents.flows.tools import build_tools
from agents.requests import Rejected, decode_request
from app.faust_app import create_app
from app.settings import Settings
from providers.clients import build_clients
from providers.crawler import Crawler
from providers.credentials import CredentialPolicy, CredentialStore
from providers.errors import ProviderError
from providers.http import ProviderHttp
from providers.ratelimit import RateLimiter
from sinks.queries import StoredData
from topics import names
from topics.dead_letter import RawRecord, dead_letter
from topics.models import ErrorInfo, RequestStatus, ScrapeRequest, Status, TraceLog, utcnow

log = logging.getLogger(__name__)

# Records a flow may have buffered before its partitions are paused: far below
# faust's buffer (stream_buffer_maxsize) even with a whole poll on top.
GATE_HIGH = 128


class WorkerRuntime:
    """What every request agent of one worker process shares."""

    def __init__(self, settings: Settings, app: faust.App, flows: list[FlowSpec]) -> None:
        self.settings = settings
        self.app = app
        self.flows = flows
        self.in_flight = 0
        self.draining = False
        self._idle = asyncio.Event()
        self._idle.set()
        self._pool: asyncpg.Pool | None = None
        self._http: ProviderHttp | None = None
        self._limiter: RateLimiter | None = None
        self.crawler: Crawler | None = None
        self.queries: StoredData | None = None
        self.assets: AssetRuntime | None = None
        self.tools: FlowTools | None = None
        self._gates: dict[str, FlowGate] = {}
        self._gate_tasks: list[asyncio.Future] = []

    async def start(self) -> None:
        assert self.settings.database_url
        self._pool = await asyncpg.create_pool(self.settings.database_url, min_size=1, max_size=10)
        self._limiter = RateLimiter.from_settings(self.settings)
        base_urls = dict(self.settings.provider_base_urls)
        if self.settings.ray_url:
            # RAY is one endpoint URL (legacy RAY_URL) rather than a host with paths.
            base_urls["ray"] = self.settings.ray_url
        self._http = ProviderHttp(
            base_urls=base_urls,
            timeout=self.settings.http_timeout,
            trace_sink=self._trace,
            limiter=self._limiter,
        )
        clients = build_clients(self._http, self.settings)
        policy = CredentialPolicy(self._pool, self.settings.credential_cooldown,
                                  self.settings.default_credential_cooldown)
        self.crawler = Crawler(CredentialStore(self._pool), policy, clients, self.settings.source_priorities)
        self.queries = StoredData(self._pool)
        self.assets = await AssetRuntime.open(self.settings)
        self.tools = build_tools(self._http, self.settings, self._trace)

    async def stop(self) -> None:
        for task in self._gate_tasks:
            task.cancel()
        if self._http is not None:
            await self._http.aclose()
        if self._limiter is not None:
            await self._limiter.aclose()
        if self.assets is not None:
            await self.assets.aclose()
        if self.tools is not None:
            await self.tools.aclose()
        if self._pool is not None:
            await self._pool.close()

    def timeout_of(self, spec: FlowSpec) -> float:
        return timeout_of(spec, self.settings.flow_timeout, self.settings.default_flow_timeout)

    def concurrency_of(self, spec: FlowSpec) -> int:
        return self.settings.flow_concurrency.get(spec.name, spec.concurrency)

    # producing

    async def _send(self, topic: str, key: str | None, value: bytes) -> asyncio.Future:
        """Hand a record to the producer; the returned future resolves when the broker has it."""
        return await self.app.producer.send(
            self.settings.topic(topic), key.encode() if key is not None else None, value,
            partition=None, timestamp=None, headers=None,
        )

    async def _trace(self, record: TraceLog) -> None:
        # Not awaited to delivery: a trace is not worth holding a request for.
        await self._send(names.TRACE_LOG, None, record.to_bytes())

    async def _status(self, request: ScrapeRequest, status: Status, **fields: Any) -> asyncio.Future:
        event = RequestStatus.of(request, status, **fields)
        return await self._send(names.STATUS, event.request_id, event.to_bytes())

    # processing

    async def handle(self, spec: FlowSpec, record: RawRecord) -> None:
        self.in_flight += 1
        self._idle.clear()
        try:
            await self._process(spec, record)
        finally:
            self.in_flight -= 1
            if self.in_flight == 0:
                self._idle.set()

    async def _process(self, spec: FlowSpec, record: RawRecord) -> None:
        try:
            request, params = decode_request(spec, record)
        except Rejected as rejected:
            await self._dead_letter(spec, record, rejected.error, rejected.request)
            return
        if request.expires_at is not None and request.expires_at <= utcnow():
            message = f"expired at {request.expires_at.isoformat()} before it was processed"
            await (await self._status(request, Status.EXPIRED, error=ErrorInfo(type="Expired", message=message)))
            return
        pending = [await self._status(request, Status.PROCESSING)]
        assert self.crawler is not None
        ctx = FlowContext(request=request, crawler=self.crawler, queries=self.queries,
                          wait_scale=self.settings.flow_wait_scale, assets=self.assets, tools=self.tools)
        timeout = self.timeout_of(spec)
        error: ErrorInfo | None = None
        try:
            assert spec.handler is not None
            result = await asyncio.wait_for(spec.handler(ctx, params), timeout)
        except asyncio.TimeoutError:
            error = ErrorInfo(type="Timeout", message=f"flow did not finish within {timeout:g}s")
        except ProviderError as exc:
            error = ErrorInfo(type=type(exc).__name__, message=str(exc))
        except Exception as exc:  # a bug or broken infrastructure, not an answer: keep the record
            log.exception("flow %s crashed on request %s", spec.name, request.id)
            await asyncio.gather(*pending)
            crash = ErrorInfo(type=type(exc).__name__, message=str(exc) or repr(exc))
            await self._dead_letter(spec, record, crash, request, source=",".join(ctx.sources) or None)
            return
        source = ",".join(ctx.sources) or None
        if error is None:
            for topic, key, event in ctx.events:
                pending.append(await self._send(topic, key, event.to_bytes()))
            pending.append(await self._status(request, Status.COMPLETE, source=source, result=result))
        else:
            pending.append(await self._status(request, Status.FAILED, source=source, error=error))
        await asyncio.gather(*pending)

    async def _dead_letter(self, spec: FlowSpec, record: RawRecord, error: ErrorInfo,
                           request: ScrapeRequest | None, source: str | None = None) -> None:
        log.warning("dead-lettering %s[%d]@%d: %s: %s", record.topic, record.partition, record.offset,
                    error.type, error.message)
        letter = dead_letter(record, error, flow=spec.name, request=request, source=source)
        key = record.key.decode(errors="replace") if record.key is not None else None
        pending = [await self._send(names.DEAD_LETTER, key, letter.to_bytes())]
        if request is not None and request.id is not None:
            pending.append(await self._status(request, Status.DEAD_LETTERED, error=error))
        await asyncio.gather(*pending)

    def watch(self, spec: FlowSpec, channel) -> None:
        """Start the flow's backpressure gate (once, although every actor of the agent calls this)."""
        if spec.name in self._gates:
            return
        concurrency = self.concurrency_of(spec)
        gate = FlowGate(self.app, channel.get_topic_name(), channel.queue,
                        high=max(GATE_HIGH, 2 * concurrency), low=max(GATE_HIGH // 4, concurrency))
        self._gates[spec.name] = gate
        self._gate_tasks.append(asyncio.ensure_future(gate.run()))

    # draining

    async def drain(self) -> None:
        """Stop taking records, let in-flight ones finish (each is bounded by its timeout), commit."""
        self.draining = True
        for gate in self._gates.values():
            gate.enabled = False
        consumer = self.app.consumer
        consumer.pause_partitions(consumer.assignment())
        longest = max((self.timeout_of(spec) for spec in self.flows), default=0.0)
        try:
            await asyncio.wait_for(self._idle.wait(), longest + 5.0)
        except asyncio.TimeoutError:
            log.warning("drain: %d records still in flight after %.0fs; they will be redelivered",
                        self.in_flight, longest + 5.0)
        await consumer.commit()
        log.info("drained: in-flight work finished and offsets committed")


def build_worker_app(settings: Settings, flows: list[FlowSpec]) -> tuple[faust.App, WorkerRuntime]:
    app = create_app(settings, "worker")
    runtime = WorkerRuntime(settings, app, flows)

    for spec in flows:
        topic = app.topic(
            settings.topic(names.scrape_topic(spec.name)),
            key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw",
            partitions=settings.request_partitions,
        )
        app.agent(topic, name=f"flow.{spec.name}", concurrency=runtime.concurrency_of(spec))(_agent_for(runtime, spec))

    return app, runtime


def _agent_for(runtime: WorkerRuntime, spec: FlowSpec):
    async def process(stream: faust.StreamT) -> None:
        runtime.watch(spec, stream.channel)
        # Manual acks: a record is acked only once its outcome is on the broker; a
        # record cancelled mid-flight (shutdown, rebalance) stays unacked and is redelivered.
        async for event in stream.noack().events():
            if runtime.draining:
                # Leave it uncommitted for the next owner: flagged so faust's shutdown
                # stops waiting for it, but never recorded as processed.
                event.message.acked = True
                await asyncio.Event().wait()
            await runtime.handle(spec, RawRecord.from_kafka(event.message))
            event.ack()

    process.__name__ = f"flow_{spec.name}"
    return process


class DrainingWorker(faust.Worker):
    """A faust Worker whose SIGTERM first drains in-flight requests, then stops."""

    def __init__(self, app: faust.App, runtime: WorkerRuntime, **kwargs: Any) -> None:
        super().__init__(app, **kwargs)
        self._runtime = runtime

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
