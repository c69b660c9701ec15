"""``beat listen``: the five legacy inbound RabbitMQ queues (legacy-beat.md §8), acked only once done.

One robust aio-pika connection; per queue a channel whose prefetch is the legacy's workers × prefetch, so
that many messages of it are worked on at once. Each queue is declared durable and bound to its exchange
(checked or created as ``sinks/amqp_exchanges.py`` says).

A message is acked only once its effect is durable (the handler returned: a row committed, a request
recorded and on the broker). While Postgres or the Kafka broker is away a message waits, unacked, for as
long as the outage lasts. A failing one is tried again with backoff up to ``BEAT_LISTEN_MAX_ATTEMPTS``
times, then published to its queue's dead-letter queue (``<queue>_dlq``) with the error in its headers,
and acked only once RabbitMQ confirmed that copy. A message that cannot be decoded, or whose shape can
never succeed, goes there at once. The legacy acked every message, failed or not.

When RabbitMQ goes away, the unacked messages stay RabbitMQ's: it delivers them again once the robust
connection is back (the handlers are idempotent: a token stored again, a request with the same id), so
nothing is lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import signal
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aio_pika
import asyncpg
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage, AbstractRobustConnection
from aio_pika.exceptions import CONNECTION_EXCEPTIONS

from core.kafka import start_producer
from core.metrics import LISTENER_MESSAGES, LISTENER_RETRIES, child
from core.outage import is_outage
from core.settings import Settings, mask_url
from providers.clients import build_clients
from providers.http import ProviderHttp
from sinks import listen_handlers as handlers
from sinks.amqp_exchanges import ExchangeUnusable, open_exchanges
from sinks.legacy_events import MIRROR_APP_ID
from topics.errors import BeatError, Decision
from topics.registry import IDENTITY_EXCHANGE, LEGACY_EXCHANGE

log = logging.getLogger(__name__)

CONNECT_TIMEOUT = 10.0
RECONNECT_INTERVAL = 1.0
CONNECT_DELAYS = (0.5, 1, 2, 3, 5)
# Between attempts at one message: doubling from the first, at most the last.
FIRST_RETRY_DELAY = 0.5
MAX_RETRY_DELAY = 30.0
ERROR_HEADER_CHARS = 2000

Handler = Callable[[handlers.ListenContext, handlers.Delivery], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Binding:
    """One legacy ``AmqpListener``: where its messages come from, how many at once, what handles them."""

    exchange: str  # the legacy name; the deployment's is configured
    routing_key: str
    queue: str
    workers: int
    prefetch: int
    handler: Handler
    # Also a key ``beat mirror`` publishes: its own messages (app id MIRROR_APP_ID) are acked and skipped, since
    # Beat's pages already reach sentiment over Kafka and a second pass would score each comment twice.
    skips_mirror: bool = False

    @property
    def dead_letter_queue(self) -> str:
        return f"{self.queue}_dlq"


BINDINGS = (
    Binding(LEGACY_EXCHANGE, "credentials_validate", "credentials_validate_q", 5, 10, handlers.validate_credential),
    Binding(IDENTITY_EXCHANGE, "new_access_token_rk", "identity_token_q", 5, 10, handlers.new_access_token),
    Binding(LEGACY_EXCHANGE, "keyword_collection_rk", "keyword_collection_q", 5, 1, handlers.keyword_collection),
    Binding(
        LEGACY_EXCHANGE,
        "post_activity_log_bulk",
        "sentiment_analysis_q",
        5,
        1,
        handlers.activity_page,
        skips_mirror=True,
    ),
    Binding(
        LEGACY_EXCHANGE,
        "sentiment_collection_report_in_rk",
        "sentiment_collection_report_in_q",
        5,
        1,
        handlers.sentiment_collection,
    ),
)


class LeftUnacked(BeatError):
    """The message is left to RabbitMQ, unacked: it is delivered again once the listener is back."""

    decision = Decision.TRANSIENT


def is_refused(exc: BaseException) -> bool:
    """A failure no retry can change: an undecodable or ill-shaped body, an unknown flow, invalid params."""
    return isinstance(exc, ValueError | LookupError)


def retry_delay(failures: int) -> float:
    return float(min(FIRST_RETRY_DELAY * 2 ** (failures - 1), MAX_RETRY_DELAY))


class Listener:
    def __init__(self, settings: Settings) -> None:
        assert settings.amqp_url and settings.kafka_url and settings.database_url
        self.settings = settings
        self._url = settings.amqp_url.get_secret_value()
        self._stopping = asyncio.Event()
        self._ready = asyncio.Event()

    def stop(self) -> None:
        self._stopping.set()

    async def ready(self) -> None:
        """Wait until every queue is consumed."""
        await self._ready.wait()

    async def run(self) -> int:
        """Listen until stopped; the exit status (1: an exchange is missing or unusable)."""
        connection = await self._connect()
        if connection is None:
            return 0
        settings = self.settings
        # No connection at start: Postgres may be away, which a message waits out rather than the listener.
        pool = await asyncpg.create_pool(settings.database_url, min_size=0, max_size=10)
        producer = await start_producer(settings)
        http = ProviderHttp(base_urls=settings.provider_base_urls, timeout=settings.http_timeout)
        ctx = handlers.ListenContext(settings, pool, producer, build_clients(http, settings))
        try:
            await self._bind(connection, ctx)
            self._ready.set()
            log.info("listening on %s at %s", ", ".join(b.queue for b in BINDINGS), mask_url(self._url))
            await self._stopping.wait()
        except ExchangeUnusable as exc:
            log.critical("beat listen cannot start: %s", exc)
            return 1
        finally:
            # Messages in hand are not acked: RabbitMQ delivers them again to the next listener.
            await connection.close()
            await producer.stop()
            await http.aclose()
            await pool.close()
            log.info("listener stopped")
        return 0

    async def _connect(self) -> AbstractRobustConnection | None:
        """The first connection, retried with backoff; later drops are the robust connection's job."""
        failures = 0
        while not self._stopping.is_set():
            try:
                return await aio_pika.connect_robust(
                    self._url, timeout=CONNECT_TIMEOUT, reconnect_interval=RECONNECT_INTERVAL
                )
            except (*CONNECTION_EXCEPTIONS, TimeoutError) as exc:
                wait = CONNECT_DELAYS[min(failures, len(CONNECT_DELAYS) - 1)]
                failures += 1
                log.warning(
                    "RabbitMQ at %s unreachable (%s); retrying in %ss", mask_url(self._url), type(exc).__name__, wait
                )
                await self._sleep(wait)
        return None

    async def _bind(self, connection: AbstractRobustConnection, ctx: handlers.ListenContext) -> None:
        # A channel of its own: a refused declaration closes the channel it was made on.
        checking = await connection.channel()
        exchanges = await open_exchanges(checking, self.settings, (binding.exchange for binding in BINDINGS))
        await checking.close()
        for binding in BINDINGS:
            channel = await connection.channel(publisher_confirms=True)
            await channel.set_qos(prefetch_count=binding.workers * binding.prefetch)
            queue = await channel.declare_queue(binding.queue, durable=True)
            await queue.bind(exchanges[binding.exchange].name, binding.routing_key)
            await channel.declare_queue(binding.dead_letter_queue, durable=True)
            await queue.consume(self._consumer(binding, channel, ctx))

    def _consumer(
        self, binding: Binding, channel: AbstractChannel, ctx: handlers.ListenContext
    ) -> Callable[[AbstractIncomingMessage], Awaitable[None]]:
        async def consume(message: AbstractIncomingMessage) -> None:
            if binding.skips_mirror and message.app_id == MIRROR_APP_ID:
                await message.ack()
                child(LISTENER_MESSAGES, binding.queue, "skipped_own").inc()
                return
            try:
                error, attempts = await self._handle(binding, ctx, message)
                if error is not None:
                    await self._dead_letter(binding, channel, message, error, attempts)
                await message.ack()
                child(LISTENER_MESSAGES, binding.queue, "done" if error is None else "dead_lettered").inc()
            except Exception as exc:  # noqa: BLE001 - whatever stopped the ack, RabbitMQ keeps the message
                # Unacked, the message goes back to the queue with its channel: it is delivered again.
                log.warning("%s: message left to RabbitMQ to deliver again (%r)", binding.queue, exc)
                child(LISTENER_MESSAGES, binding.queue, "unacked").inc()

        return consume

    async def _handle(
        self, binding: Binding, ctx: handlers.ListenContext, message: AbstractIncomingMessage
    ) -> tuple[BaseException | None, int]:
        """Run the handler until it succeeds; the error that sends the message to its DLQ, and the attempts made."""
        attempts = failures = outage_waits = 0
        while True:
            attempts += 1
            try:
                body = json.loads(message.body)
                if not isinstance(body, dict):
                    raise handlers.Refused(f"expected a JSON object, got {type(body).__name__}")
                await binding.handler(ctx, handlers.Delivery(body, message.message_id))
                return None, attempts
            except Exception as exc:  # every failure is waited out, retried or dead-lettered with its error
                if is_outage(exc):
                    # Postgres or the broker away: the message is fine, so it waits (in hand, unacked) for as
                    # long as the outage lasts, and holding it keeps the queue's others back too.
                    if self._stopping.is_set():
                        raise LeftUnacked(f"stopping during an outage ({exc!r})") from exc
                    outage_waits += 1
                    wait = retry_delay(outage_waits)
                    log.warning("%s: waiting out an outage (%r); again in %ss", binding.queue, exc, wait)
                    await self._sleep(wait)
                    continue
                failures += 1
                if is_refused(exc) or failures >= self.settings.listen_max_attempts:
                    log.warning(
                        "%s: message to %s after %d attempt(s): %s: %s",
                        binding.queue,
                        binding.dead_letter_queue,
                        attempts,
                        type(exc).__name__,
                        exc,
                    )
                    return exc, attempts
                wait = retry_delay(failures)
                LISTENER_RETRIES.inc()
                log.warning("%s: attempt %d failed (%r); again in %ss", binding.queue, attempts, exc, wait)
                await asyncio.sleep(wait)

    @staticmethod
    async def _dead_letter(
        binding: Binding,
        channel: AbstractChannel,
        message: AbstractIncomingMessage,
        error: BaseException,
        attempts: int,
    ) -> None:
        """Publish the message to its DLQ as it came, with why; returns once RabbitMQ confirmed it."""
        headers: dict[str, Any] = {
            **(message.headers or {}),
            "x-beat-error-type": type(error).__name__,
            "x-beat-error": str(error)[:ERROR_HEADER_CHARS],
            "x-beat-attempts": attempts,
            "x-beat-exchange": message.exchange or "",
            "x-beat-routing-key": message.routing_key or "",
        }
        copy = aio_pika.Message(
            message.body,
            headers=headers,
            content_type=message.content_type,
            message_id=message.message_id,
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        )
        await channel.default_exchange.publish(copy, routing_key=binding.dead_letter_queue)

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)


def run_listener(settings: Settings) -> int:
    """Run the listener until SIGTERM/SIGINT; the process's exit status."""

    async def main() -> int:
        listener = Listener(settings)
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, listener.stop)
        return await listener.run()

    return asyncio.run(main())
