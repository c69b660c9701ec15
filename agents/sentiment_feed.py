"""The sentiment feed: every page of comments on ``post_activity_log`` becomes a ``sentiment_extraction``
request (legacy §11.4, where the ``post_activity_log_bulk`` listener did this over RabbitMQ).

It runs inside ``beat worker`` when the worker runs ``sentiment_extraction``, in a consumer group of its
own. A page's request id is derived from the page event's id, so a page read twice (a replay, a rebalance
before the commit) names the same request, whose events have the same ids: the sink stores them once.
Offsets are committed only after the requests and their PENDING statuses are on the broker. Pages of
likes, and comments without text or id, give no request.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from aiokafka import AIOKafkaProducer
from pydantic import ValidationError

from core.failures import LoopBroken, LoopFailures
from core.kafka import GroupConsumer, start_group_consumer, start_producer
from core.outage import is_outage
from core.requests import produce_requests
from core.settings import Settings
from topics import names
from topics.models import ScrapeRequest, deterministic_id, utcnow
from topics.sentiment import ActivityPageLog

log = logging.getLogger(__name__)

FLOW = "sentiment_extraction"
ROLE = "sentiment-feed"
PAGE_KIND = b'"activity_page"'
POLL_MS = 1000
FAILURE_DELAYS = (1.0, 2.0, 5.0, 10.0, 30.0)
FATAL_AFTER = 5


def sentiment_request(value: bytes | None) -> ScrapeRequest | None:
    """The request for a page event of comments; None for any other record of the topic."""
    # Single activities far outnumber pages: most records are passed over without decoding them.
    if not value or PAGE_KIND not in value:
        return None
    try:
        page = ActivityPageLog.model_validate_json(value)
    except (ValidationError, ValueError):
        return None  # the sink dead-letters what the topic's readers cannot decode
    comments = page.comments() if page.kind == "activity_page" else []
    if not comments:
        return None
    return ScrapeRequest(
        id=deterministic_id(FLOW, page.event_id),
        flow=FLOW,
        platform=page.platform,
        params={
            "platform": page.platform.value,
            "shortcode": page.shortcode,
            "comments": comments,
            "page_event_id": page.event_id,
        },
        created_at=utcnow(),
    )


class SentimentFeed:
    """Started and stopped with a worker's runtime; ``run`` is its task."""

    def __init__(self, settings: Settings, on_broken: Callable[[LoopBroken], Awaitable[None]]) -> None:
        self.settings = settings
        self._on_broken = on_broken
        self._failures = LoopFailures(
            log, "sentiment feed round", FAILURE_DELAYS, outage=is_outage, fatal_after=FATAL_AFTER
        )
        self._consumer: GroupConsumer | None = None
        self._producer: AIOKafkaProducer | None = None
        self._task: asyncio.Task | None = None
        self._rewind = False

    async def start(self) -> None:
        self._producer = await start_producer(self.settings)
        self._consumer = await start_group_consumer(self.settings, [self.settings.topic(names.POST_ACTIVITY_LOG)], ROLE)
        self._task = asyncio.ensure_future(self.run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        if self._consumer is not None:
            await self._consumer.stop()
            self._consumer = None
        if self._producer is not None:
            await self._producer.stop()
            self._producer = None

    async def run(self) -> None:
        """Until cancelled; a failed round is waited out and read again from the last commit."""
        while True:
            try:
                await self.round()
            except Exception as exc:  # noqa: BLE001 - nothing one round meets may end the feed silently
                self._rewind = True
                try:
                    wait = self._failures.failed(exc)
                except LoopBroken as broken:
                    await self._on_broken(broken)
                    return
                await asyncio.sleep(wait)
                continue
            self._failures.succeeded()

    async def round(self) -> None:
        consumer, producer = self._consumer, self._producer
        assert consumer is not None and producer is not None
        if self._rewind:
            assigned = consumer.assignment()
            if assigned:
                committed = await consumer.seek_to_committed(*assigned)
                never = [tp for tp, offset in committed.items() if not offset]
                if never:
                    await consumer.seek_to_beginning(*never)
            self._rewind = False
        batches = await consumer.getmany(timeout_ms=POLL_MS)
        if not batches:
            return
        requests = [
            request
            for records in batches.values()
            for record in records
            if (request := sentiment_request(record.value)) is not None
        ]
        if requests:
            await produce_requests(producer, self.settings, requests)
            log.info("sentiment feed: %d page(s) of comments handed to %s", len(requests), FLOW)
        await consumer.commit({tp: records[-1].offset + 1 for tp, records in batches.items()})
