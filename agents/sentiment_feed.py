"""The sentiment feed: every page of comments on ``post_activity_log`` becomes a ``sentiment_extraction``
request (legacy §11.4, where the ``post_activity_log_bulk`` listener did this over RabbitMQ).

It runs inside ``beat worker`` when the worker runs ``sentiment_extraction``, in a consumer group of its
own. A page's request id is derived from the page event's id, so a page read twice (a replay, a rebalance
before the commit) names the same request, whose events have the same ids: the sink stores them once.
Offsets are committed only after the requests and their PENDING statuses are on the broker. Pages of
likes, and comments without text or id, give no request.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from pydantic import ValidationError

from agents.committed_loop import CommittedLoop
from core.failures import LoopBroken
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


class SentimentFeed(CommittedLoop):
    role = ROLE
    name = "sentiment feed"

    def __init__(self, settings: Settings, on_broken: Callable[[LoopBroken], Awaitable[None]]) -> None:
        super().__init__(settings, on_broken, log)

    async def topics(self) -> list[str]:
        return [self.settings.topic(names.POST_ACTIVITY_LOG)]

    async def poll(self, consumer: AIOKafkaConsumer, producer: AIOKafkaProducer) -> None:
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
