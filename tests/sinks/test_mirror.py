"""``beat mirror``: legacy payloads per routing key, and at-least-once delivery through a RabbitMQ outage.

The tests run the real mirror process against the machine's RabbitMQ. Each test
reads from its own exclusive queue bound to the legacy routing keys and keeps
only the event ids it produced, since other runs may share the exchanges. The
outage goes through a TCP proxy (tests/support.py); RabbitMQ itself is never stopped.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta, timezone

import aio_pika
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from core.topic_admin import ensure_topics
from providers.sandbox.config import SandboxConfig
from sinks.legacy_events import MIRRORED, legacy_event, legacy_time, status_event_id
from tests.conftest import isolated
from tests.sinks.conftest import RABBIT_HOST, RABBIT_PORT, amqp_url
from tests.support import ROOT, BeatProcess, TcpProxy, beat_env, produce_requests, wait_terminal
from topics import names
from topics.models import (
    ActivityLog,
    OrderLog,
    Platform,
    PostLog,
    ProfileLog,
    RelationshipLog,
    RequestStatus,
    Status,
    TraceLog,
    YtActivityLog,
    YtRelationshipLog,
)
from topics.sentiment import ActivityPageLog, PageActivity, ReportLog, SentimentLog

# legacy-beat.md §8, field for field.
LEGACY_FIELDS = {
    "scrape_request_log_events": {
        "event_id",
        "scl_id",
        "flow",
        "platform",
        "params",
        "status",
        "priority",
        "reason",
        "event_timestamp",
        "picked_at",
        "expires_at",
        "retry_count",
    },
    "profile_log_events": {
        "event_id",
        "source",
        "platform",
        "profile_id",
        "handle",
        "event_timestamp",
        "metrics",
        "dimensions",
    },
    "post_log_events": {
        "event_id",
        "source",
        "platform",
        "profile_id",
        "handle",
        "shortcode",
        "publish_time",
        "event_timestamp",
        "metrics",
        "dimensions",
    },
    "post_activity_log_events": {
        "event_id",
        "source",
        "activity_type",
        "platform",
        "actor_profile_id",
        "shortcode",
        "publish_time",
        "event_timestamp",
        "metrics",
        "dimensions",
    },
    "profile_relationship_log_events": {
        "event_id",
        "source",
        "relationship_type",
        "platform",
        "source_profile_id",
        "target_profile_id",
        "event_timestamp",
        "source_metrics",
        "source_dimensions",
        "target_metrics",
        "target_dimensions",
    },
    "order_log_events": {
        "event_id",
        "source",
        "platform",
        "platform_order_id",
        "store",
        "event_timestamp",
        "metrics",
        "dimensions",
    },
    "yt_activity_log_events": {
        "event_id",
        "activity_id",
        "activity_type",
        "source",
        "platform",
        "actor_channel_id",
        "metrics",
        "dimensions",
        "event_timestamp",
    },
    "yt_profile_relationship_log_events": {
        "event_id",
        "relationship_id",
        "relationship_type",
        "source",
        "platform",
        "source_channel_id",
        "target_channel_id",
        "source_metrics",
        "source_dimensions",
        "target_metrics",
        "target_dimensions",
        "subscribed_on",
        "event_timestamp",
    },
    "post_activity_log_bulk": {"platform", "activity_type", "post_activity_logs"},
    "sentiment_log_events": {
        "event_id",
        "source",
        "platform",
        "shortcode",
        "comment_id",
        "event_timestamp",
        "comment",
        "sentiment",
        "score",
        "metrics",
        "dimensions",
    },
    "keyword_collection_report_completion": {"job_id", "report_asset", "demographic_report_asset"},
    "sentiment_collection_report_out_rk": {
        "collectionType",
        "collectionId",
        "sentimentReportPath",
        "sentimentReportBucket",
    },
    "trace_log": {
        "id",
        "hostname",
        "serviceName",
        "timestamp",
        "timeTaken",
        "method",
        "uri",
        "headers",
        "responseStatus",
        "remoteAddress",
        "onlyRequest",
        "requestBody",
        "responseBody",
    },
}
# The rows of a post_activity_log_bulk message, field for field.
BULK_ROW_FIELDS = {
    "activity_type",
    "platform",
    "platform_post_id",
    "actor_profile_id",
    "dimensions",
    "metrics",
    "source",
    "timestamp",
}
# The exchange of each routing key; every other key is on beat.dx.
EXCHANGE_OF = {
    "trace_log": "identity.dx",
    "keyword_collection_report_completion": "coffee.dx",
    "sentiment_collection_report_out_rk": "coffee.dx",
}
LEGACY_TIME = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$")
BASIC = "refresh_profile_basic"


class LegacyQueue:
    """An exclusive queue on the real RabbitMQ bound to every legacy routing key; messages by event id."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.received: dict[str, list[aio_pika.abc.AbstractIncomingMessage]] = {}
        self._connection: aio_pika.abc.AbstractConnection | None = None

    async def start(self) -> LegacyQueue:
        self._connection = await aio_pika.connect(self.url)
        channel = await self._connection.channel()
        queue = await channel.declare_queue(
            f"beat-test-mirror-{uuid.uuid4().hex[:8]}", exclusive=True, auto_delete=True
        )
        for key in LEGACY_FIELDS:
            # The session's vhost has them, as direct exchanges (tests/sinks/conftest.py).
            exchange = await channel.declare_exchange(EXCHANGE_OF.get(key, "beat.dx"), passive=True)
            await queue.bind(exchange, key)
        await queue.consume(self._on_message, no_ack=True)
        return self

    async def _on_message(self, message: aio_pika.abc.AbstractIncomingMessage) -> None:
        # Keyed by the AMQP message id, which every message has; Coffee's completions carry no id field.
        assert message.message_id is not None
        self.received.setdefault(message.message_id, []).append(message)

    def payload(self, event_id: str) -> dict:
        return json.loads(self.received[event_id][0].body)

    async def wait_for(self, ids, timeout: float) -> set[str]:
        """Wait until every id has arrived; return the ids still missing at the deadline."""
        deadline = time.monotonic() + timeout
        while True:
            missing = set(ids) - set(self.received)
            if not missing or time.monotonic() > deadline:
                return missing
            await asyncio.sleep(0.1)

    async def stop(self) -> None:
        if self._connection is not None:
            await self._connection.close()


async def _read_all(bootstrap: str, topics: list[str], idle: float = 1.0) -> tuple[list, dict[TopicPartition, int]]:
    """Every record of some topics from the beginning, until none arrives for ``idle`` seconds, and the
    offset after the last record of every partition (0 for an empty one)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, auto_offset_reset="earliest")
    await consumer.start()
    try:
        await consumer._client.force_metadata_update()
        partitions = [TopicPartition(t, p) for t in topics for p in consumer.partitions_for_topic(t) or ()]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        records, quiet_since = [], time.monotonic()
        while time.monotonic() - quiet_since < idle:
            polled = await consumer.getmany(timeout_ms=300)
            for batch in polled.values():
                records.extend(batch)
            if polled:
                quiet_since = time.monotonic()
        ends = dict.fromkeys(partitions, 0)
        for record in records:
            ends[TopicPartition(record.topic, record.partition)] = record.offset + 1
        return records, ends
    finally:
        await consumer.stop()


async def _committed(bootstrap: str, group: str, partitions) -> dict[TopicPartition, int]:
    # A consumer that never subscribes never joins the group: it only reads the group's offsets.
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
    await consumer.start()
    try:
        return {tp: await consumer.committed(tp) or 0 for tp in partitions}
    finally:
        await consumer.stop()


async def _wait_committed(bootstrap: str, group: str, wanted: dict[TopicPartition, int], timeout: float) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        committed = await _committed(bootstrap, group, wanted)
        if committed == wanted or time.monotonic() > deadline:
            return committed
        await asyncio.sleep(0.3)


async def _wait_log(proc: BeatProcess, text: str, timeout: float, times: int = 1) -> None:
    deadline = time.monotonic() + timeout
    while proc.log_path.read_text(errors="replace").count(text) < times:
        assert proc.alive(), proc.log_tail()
        assert time.monotonic() < deadline, f"{proc.role} never logged {text!r}:\n{proc.log_tail()}"
        await asyncio.sleep(0.2)


# The mappers, without services.


def _status(status: Status, **fields) -> RequestStatus:
    fields = {"at": datetime(2024, 5, 1, 10, 0, 0, tzinfo=UTC), **fields}
    return RequestStatus(
        request_id="r-1", status=status, flow=BASIC, platform=Platform.INSTAGRAM, params={"handle": "nasa"}, **fields
    )


def test_status_event_id_is_deterministic_per_request_attempt_and_status():
    first = legacy_event(names.STATUS, _status(Status.PROCESSING).to_bytes())
    replay = legacy_event(names.STATUS, _status(Status.PROCESSING, at=datetime(2024, 5, 2, tzinfo=UTC)).to_bytes())
    ids = {
        legacy_event(names.STATUS, e.to_bytes()).event_id
        for e in (_status(Status.COMPLETE), _status(Status.PROCESSING, attempt=2), _status(Status.PENDING))
    }
    assert first.event_id == replay.event_id == status_event_id("r-1", 1, Status.PROCESSING)
    assert first.event_id not in ids and len(ids) == 3


def test_pending_has_no_picked_at_and_retry_count_is_the_attempt_as_legacy_rows_counted():
    pending = legacy_event(names.STATUS, _status(Status.PENDING).to_bytes()).payload
    failed = legacy_event(names.STATUS, _status(Status.FAILED, attempt=3).to_bytes()).payload
    assert pending["picked_at"] is None and pending["retry_count"] == 1 and pending["expires_at"] is None
    assert failed["picked_at"] == "2024-05-01 10:00:00" and failed["retry_count"] == 3


def test_legacy_time_is_utc_and_naive_values_are_taken_as_utc():
    ist = timezone(timedelta(hours=5, minutes=30))
    assert legacy_time(datetime(2024, 5, 1, 15, 30, 59, 999999, tzinfo=ist)) == "2024-05-01 10:00:59"
    assert legacy_time(datetime(2024, 5, 1, 10, 0, 59)) == "2024-05-01 10:00:59"


def test_raw_nested_lists_are_not_carried():
    event = ProfileLog(
        event_id="e",
        kind="profile",
        request_id="r",
        source="lama",
        platform=Platform.INSTAGRAM,
        observed_at=datetime(2024, 5, 1, tzinfo=UTC),
        profile_id="1",
        dimensions={
            "handle": "nasa",
            "recent_posts": [{"shortcode": "x"}],
            "recent_videos": [],
            "recent_stories": [],
            "recent_posts_cursor": "c1",
        },
    )
    dimensions = legacy_event(names.PROFILE_LOG, event.to_bytes()).payload["dimensions"]
    assert dimensions == {"handle": "nasa", "recent_posts_cursor": "c1"}


def test_post_publish_time_falls_back_to_taken_at_timestamp_and_tolerates_junk():
    def post(**dimensions) -> dict:
        event = PostLog(
            event_id="e",
            kind="post",
            request_id="r",
            source="lama",
            platform=Platform.INSTAGRAM,
            observed_at=datetime(2024, 5, 1, tzinfo=UTC),
            shortcode="C1",
            dimensions=dimensions,
        )
        return legacy_event(names.POST_LOG, event.to_bytes()).payload

    assert post(taken_at_timestamp=1714557600)["publish_time"] == "2024-05-01 10:00:00"
    assert post(taken_at_timestamp="soon")["publish_time"] is None
    assert post()["publish_time"] is None


def _order(**fields) -> OrderLog:
    values = {
        "event_id": "e-order",
        "request_id": "r",
        "source": "shopify",
        "platform": Platform.SHOPIFY,
        "observed_at": datetime(2024, 5, 1, 15, 30, tzinfo=timezone(timedelta(hours=5, minutes=30))),
        "platform_order_id": "5312345678011",
        "store": "kalakari.myshopify.com",
        "dimensions": {
            "name": "#1042",
            "utm_params": '{"source": "instagram"}',
            "store": "kalakari.myshopify.com",
            "order_data": {"id": 5312345678011, "line_items": [{"vendor": "Kalakari"}]},
        },
    }
    return OrderLog(**{**values, **fields})


def test_order_event_carries_the_legacy_order_fields():
    event = legacy_event(names.ORDER_LOG, _order().to_bytes())
    assert (event.exchange, event.routing_key, event.event_id) == ("beat.dx", "order_log_events", "e-order")
    assert event.payload == {
        "event_id": "e-order",
        "source": "shopify",
        "platform": "SHOPIFY",
        "platform_order_id": "5312345678011",
        "store": "kalakari.myshopify.com",
        "event_timestamp": "2024-05-01 10:00:00",
        "metrics": {},
        "dimensions": {
            "name": "#1042",
            "utm_params": '{"source": "instagram"}',
            "store": "kalakari.myshopify.com",
            "order_data": {"id": 5312345678011, "line_items": [{"vendor": "Kalakari"}]},
        },
    }
    # An event without the store field still names it, from its dimensions.
    assert legacy_event(names.ORDER_LOG, _order(store=None).to_bytes()).payload["store"] == "kalakari.myshopify.com"


def test_yt_activity_event_carries_the_legacy_activity_fields():
    event = YtActivityLog(
        event_id="e-act",
        request_id="r",
        source="ytapi",
        platform=Platform.YOUTUBE,
        observed_at=datetime(2024, 5, 1, 10, 0, 1, tzinfo=UTC),
        activity_id="MTUxNjYy",
        activity_type="subscription",
        actor_channel_id="UC_actor",
        dimensions={"subscribed_channel_id": "UC_star", "taken_at_timestamp": 1714557600},
    )
    mapped = legacy_event(names.YT_ACTIVITY_LOG, event.to_bytes())
    assert (mapped.routing_key, mapped.event_id) == ("yt_activity_log_events", "e-act")
    assert mapped.payload == {
        "event_id": "e-act",
        "activity_id": "MTUxNjYy",
        "activity_type": "subscription",
        "source": "ytapi",
        "platform": "YOUTUBE",
        "actor_channel_id": "UC_actor",
        "metrics": {},
        "dimensions": {"subscribed_channel_id": "UC_star", "taken_at_timestamp": 1714557600},
        "event_timestamp": "2024-05-01 10:00:01",
    }


def test_yt_relationship_event_renders_subscribed_on_in_the_legacy_format():
    event = YtRelationshipLog(
        event_id="e-sub",
        request_id="r",
        source="ytapi",
        platform=Platform.YOUTUBE,
        observed_at=datetime(2024, 5, 1, 10, 0, tzinfo=UTC),
        relationship_id="sub-1",
        source_channel_id="UC_fan",
        target_channel_id="UC_star",
        subscribed_on=datetime(2021, 7, 9, 23, 45, 12, 120000, tzinfo=timezone(timedelta(hours=-4))),
        target_dimensions={"title": "Star", "recent_videos": [{"id": "v"}]},
    )
    mapped = legacy_event(names.YT_PROFILE_RELATIONSHIP_LOG, event.to_bytes())
    assert (mapped.routing_key, mapped.event_id) == ("yt_profile_relationship_log_events", "e-sub")
    assert mapped.payload == {
        "event_id": "e-sub",
        "relationship_id": "sub-1",
        "relationship_type": "subscription",
        "source": "ytapi",
        "platform": "YOUTUBE",
        "source_channel_id": "UC_fan",
        "target_channel_id": "UC_star",
        "source_metrics": {},
        "source_dimensions": {},
        "target_metrics": {},
        "target_dimensions": {"title": "Star"},
        "subscribed_on": "2021-07-10 03:45:12",
        "event_timestamp": "2024-05-01 10:00:00",
    }
    unknown = event.model_copy(update={"subscribed_on": None, "source_channel_id": None})
    payload = legacy_event(names.YT_PROFILE_RELATIONSHIP_LOG, unknown.to_bytes()).payload
    assert payload["subscribed_on"] is None and payload["source_channel_id"] is None


def test_every_mirrored_topic_maps_to_a_legacy_routing_key():
    assert set(MIRRORED) == {
        names.STATUS,
        names.PROFILE_LOG,
        names.POST_LOG,
        names.POST_ACTIVITY_LOG,
        names.PROFILE_RELATIONSHIP_LOG,
        names.ORDER_LOG,
        names.YT_ACTIVITY_LOG,
        names.YT_PROFILE_RELATIONSHIP_LOG,
        names.TRACE_LOG,
        names.SENTIMENT_LOG,
        names.REPORT_LOG,
    }
    assert names.ASSET_LOG not in MIRRORED and names.DEAD_LETTER not in MIRRORED


def test_mirror_refuses_to_start_without_an_amqp_url():
    result = subprocess.run(
        [sys.executable, "-m", "app.cli", "mirror"],
        env=beat_env(kafka_url="127.0.0.1:1"),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1 and "BEAT_AMQP_URL is not set" in result.stderr


# The real mirror.


def _kinds(tag: str) -> list[tuple[str, str | None, object, str, dict]]:
    """One event of every mirrored kind: (topic, key, event, routing key, the legacy payload expected)."""
    rid = f"req-{tag}"
    at = datetime(2024, 5, 1, 15, 31, 2, 500000, tzinfo=timezone(timedelta(hours=5, minutes=30)))
    observed = datetime(2024, 5, 1, 10, 5, 0, tzinfo=UTC)
    pending = RequestStatus(
        request_id=rid,
        status=Status.PENDING,
        flow="refresh_profile_by_handle",
        platform=Platform.INSTAGRAM,
        params={"handle": f"h_{tag}"},
        priority=3,
        at=datetime(2024, 5, 1, 10, 0, 0, tzinfo=UTC),
        expires_at=datetime(2024, 5, 1, 11, 0, 0, tzinfo=UTC),
    )
    complete = pending.model_copy(
        update={"status": Status.COMPLETE, "attempt": 2, "at": at, "source": "lama", "result": {"posts": 1}}
    )
    profile = ProfileLog(
        event_id=f"{tag}-profile",
        kind="profile",
        request_id=rid,
        source="lama",
        platform=Platform.INSTAGRAM,
        observed_at=observed,
        profile_id=f"p_{tag}",
        handle=f"h_{tag}",
        metrics={"followers": 1200, "following": 3},
        dimensions={"full_name": "N", "is_verified": True},
    )
    insights = ProfileLog(
        event_id=f"{tag}-insights",
        kind="profile_insights",
        request_id=rid,
        source="graphapi",
        platform=Platform.INSTAGRAM,
        observed_at=observed,
        profile_id=f"p_{tag}",
        dimensions={"handle": f"h_{tag}", "audience_country": {"IN": 0.7}},
    )
    post = PostLog(
        event_id=f"{tag}-post",
        kind="post",
        request_id=rid,
        source="lama",
        platform=Platform.INSTAGRAM,
        observed_at=observed,
        profile_id=f"p_{tag}",
        handle=f"h_{tag}",
        shortcode=f"S{tag}",
        publish_time=datetime(2024, 4, 30, 8, 0, 0, tzinfo=UTC),
        metrics={"likes": 10, "engagement": 1.5},
        dimensions={"caption": "hi", "user_tags": ["a", "b"]},
    )
    story = PostLog(
        event_id=f"{tag}-story",
        kind="story",
        request_id=rid,
        source="rapidapi-arraybobo",
        platform=Platform.INSTAGRAM,
        observed_at=observed,
        shortcode=f"T{tag}",
        dimensions={"handle": f"h_{tag}", "taken_at_timestamp": 1714557600},
    )
    activity = ActivityLog(
        event_id=f"{tag}-comment",
        kind="activity",
        request_id=rid,
        source="rocketapi",
        platform=Platform.INSTAGRAM,
        observed_at=observed,
        activity_type="COMMENT",
        actor_profile_id=f"a_{tag}",
        shortcode=f"S{tag}",
        publish_time=datetime(2024, 5, 1, 9, 0, 0, tzinfo=UTC),
        metrics={"likes": 2},
        dimensions={"comment_id": "c1", "text": "nice"},
    )
    follows = RelationshipLog(
        event_id=f"{tag}-follows",
        request_id=rid,
        source="rapidapi-jotucker",
        platform=Platform.INSTAGRAM,
        observed_at=observed,
        relationship_type="FOLLOWS",
        source_profile_id=f"f_{tag}",
        target_profile_id=f"p_{tag}",
        source_dimensions={"handle": "fan"},
        target_dimensions={"handle": f"h_{tag}"},
    )
    order = OrderLog(
        event_id=f"{tag}-order",
        request_id=rid,
        source="shopify",
        platform=Platform.SHOPIFY,
        observed_at=observed,
        platform_order_id=f"o_{tag}",
        store=f"s-{tag}.myshopify.com",
        dimensions={"name": "#1001", "utm_params": '{"source": "ig"}', "order_data": {"id": 1}},
    )
    yt_activity = YtActivityLog(
        event_id=f"{tag}-ytact",
        request_id=rid,
        source="ytapi",
        platform=Platform.YOUTUBE,
        observed_at=observed,
        activity_id=f"act_{tag}",
        activity_type="upload",
        actor_channel_id=f"UC_{tag}",
        dimensions={"shortcode": f"v_{tag}"},
    )
    subscription = YtRelationshipLog(
        event_id=f"{tag}-ytsub",
        request_id=rid,
        source="ytapi",
        platform=Platform.YOUTUBE,
        observed_at=observed,
        relationship_id=f"sub_{tag}",
        source_channel_id=f"UC_fan_{tag}",
        target_channel_id=f"UC_{tag}",
        subscribed_on=datetime(2023, 2, 3, 4, 5, 6, tzinfo=UTC),
        target_dimensions={"title": "T"},
    )
    trace = TraceLog(
        id=f"{tag}-trace",
        request_id=rid,
        source="graphapi",
        method="GET",
        host="graph.facebook.com",
        path="/v19.0/17841400000",
        status=200,
        latency_ms=2999.9,
        credential_id="7",
        at=observed,
    )
    channel = ProfileLog(
        event_id=f"{tag}-channel",
        kind="profile",
        request_id=rid,
        source="ytapi",
        platform=Platform.YOUTUBE,
        observed_at=observed,
        profile_id=f"UC{tag}",
        handle=f"@name{tag}",
        metrics={"subscribers": 10},
        dimensions={"custom_url": f"@name{tag}", "title": "T"},
    )
    gpt = ProfileLog(
        event_id=f"{tag}-gpt",
        kind="gpt_enrichment",
        request_id=rid,
        source="openapi_profile_info_v0.12",
        platform=Platform.INSTAGRAM,
        observed_at=observed,
        profile_id=f"p_{tag}",
        handle=f"h_{tag}",
        dimensions={"categories": ["Fitness", "Health"], "languages": ["en"]},
    )
    page = ActivityPageLog(
        event_id=f"{tag}-page",
        request_id=rid,
        source="rocketapi",
        platform=Platform.INSTAGRAM,
        observed_at=observed,
        activity_type="COMMENT",
        shortcode=f"S{tag}",
        activities=[
            PageActivity(
                source="rocketapi",
                platform=Platform.INSTAGRAM,
                activity_type="COMMENT",
                actor_profile_id=f"a_{tag}",
                shortcode=f"S{tag}",
                metrics={"likes": 2},
                dimensions={"comment_id": "c1", "text": "nice"},
            ),
            PageActivity(
                source="rocketapi",
                platform=Platform.INSTAGRAM,
                activity_type="COMMENT",
                actor_profile_id=f"b_{tag}",
                shortcode=f"S{tag}",
                dimensions={"comment_id": "c2", "text": "meh"},
            ),
        ],
    )
    sentiment = SentimentLog(
        event_id=f"{tag}-sentiment",
        request_id=rid,
        platform=Platform.INSTAGRAM,
        observed_at=observed,
        shortcode=f"S{tag}",
        comment_id="c1",
        comment="nice",
        sentiment="POSITIVE",
        score=0.93,
        dimensions={"model": "sentiment-v1"},
    )
    keyword_report = ReportLog(
        event_id=f"{tag}-kwreport",
        request_id=rid,
        platform=Platform.INSTAGRAM,
        observed_at=observed,
        report="keyword_collection",
        job_id=f"TEST_KC_{tag}",
        paths={
            "report": f"keyword_collections/2024-05-01/TEST_KC_{tag}.parquet",
            "demographic": f"keyword_collections/2024-05-01/TEST_KC_{tag}_demographic.parquet",
        },
        bucket="beat-assets",
    )
    sentiment_report = ReportLog(
        event_id=f"{tag}-sreport",
        request_id=rid,
        platform=Platform.INSTAGRAM,
        observed_at=observed,
        report="sentiment_collection",
        collection_type="CAMPAIGN",
        collection_id=f"col_{tag}",
        paths={
            "report": f"sentiment_report/test/2024-05-01/CAMPAIGN_col_{tag}.parquet",
            "summary": f"sentiment_report/test/2024-05-01/CAMPAIGN_col_{tag}_summary.parquet",
        },
        bucket="beat-assets",
    )
    retrying = pending.model_copy(update={"status": Status.RETRYING, "attempt": 2, "at": at})
    dead = pending.model_copy(update={"status": Status.DEAD_LETTERED, "attempt": 3, "at": at})
    common = {"source": "lama", "platform": "INSTAGRAM", "event_timestamp": "2024-05-01 10:05:00"}
    status = {
        "scl_id": rid,
        "flow": "refresh_profile_by_handle",
        "platform": "INSTAGRAM",
        "params": {"handle": f"h_{tag}"},
        "priority": 3,
        "reason": None,
        "expires_at": "2024-05-01 11:00:00",
    }
    return [
        (
            names.STATUS,
            rid,
            pending,
            "scrape_request_log_events",
            {
                **status,
                "event_id": status_event_id(rid, 1, Status.PENDING),
                "status": "PENDING",
                "event_timestamp": "2024-05-01 10:00:00",
                "picked_at": None,
                "retry_count": 1,
            },
        ),
        (
            names.STATUS,
            rid,
            complete,
            "scrape_request_log_events",
            {
                **status,
                "event_id": status_event_id(rid, 2, Status.COMPLETE),
                "status": "COMPLETE",
                "event_timestamp": "2024-05-01 10:01:02",
                "picked_at": "2024-05-01 10:01:02",
                "retry_count": 2,
            },
        ),
        (
            names.PROFILE_LOG,
            profile.key,
            profile,
            "profile_log_events",
            {
                **common,
                "event_id": f"{tag}-profile",
                "profile_id": f"p_{tag}",
                "handle": f"h_{tag}",
                "metrics": {"followers": 1200, "following": 3},
                "dimensions": {"full_name": "N", "is_verified": True},
            },
        ),
        (
            names.PROFILE_LOG,
            insights.key,
            insights,
            "profile_log_events",
            {
                **common,
                "source": "graphapi",
                "event_id": f"{tag}-insights",
                "profile_id": f"p_{tag}",
                "handle": f"h_{tag}",
                "metrics": {},
                "dimensions": {"handle": f"h_{tag}", "audience_country": {"IN": 0.7}},
            },
        ),
        (
            names.POST_LOG,
            post.key,
            post,
            "post_log_events",
            {
                **common,
                "event_id": f"{tag}-post",
                "profile_id": f"p_{tag}",
                "handle": f"h_{tag}",
                "shortcode": f"S{tag}",
                "publish_time": "2024-04-30 08:00:00",
                "metrics": {"likes": 10, "engagement": 1.5},
                "dimensions": {"caption": "hi", "user_tags": ["a", "b"]},
            },
        ),
        (
            names.POST_LOG,
            story.key,
            story,
            "post_log_events",
            {
                **common,
                "source": "rapidapi-arraybobo",
                "event_id": f"{tag}-story",
                "profile_id": None,
                "handle": f"h_{tag}",
                "shortcode": f"T{tag}",
                "publish_time": "2024-05-01 10:00:00",
                "metrics": {},
                "dimensions": {"handle": f"h_{tag}", "taken_at_timestamp": 1714557600},
            },
        ),
        (
            names.POST_ACTIVITY_LOG,
            activity.key,
            activity,
            "post_activity_log_events",
            {
                **common,
                "source": "rocketapi",
                "event_id": f"{tag}-comment",
                "activity_type": "COMMENT",
                "actor_profile_id": f"a_{tag}",
                "shortcode": f"S{tag}",
                "publish_time": "2024-05-01 09:00:00",
                "metrics": {"likes": 2},
                "dimensions": {"comment_id": "c1", "text": "nice"},
            },
        ),
        (
            names.PROFILE_RELATIONSHIP_LOG,
            follows.key,
            follows,
            "profile_relationship_log_events",
            {
                **common,
                "source": "rapidapi-jotucker",
                "event_id": f"{tag}-follows",
                "relationship_type": "FOLLOWS",
                "source_profile_id": f"f_{tag}",
                "target_profile_id": f"p_{tag}",
                "source_metrics": {},
                "source_dimensions": {"handle": "fan"},
                "target_metrics": {},
                "target_dimensions": {"handle": f"h_{tag}"},
            },
        ),
        (
            names.ORDER_LOG,
            order.key,
            order,
            "order_log_events",
            {
                **common,
                "source": "shopify",
                "platform": "SHOPIFY",
                "event_id": f"{tag}-order",
                "platform_order_id": f"o_{tag}",
                "store": f"s-{tag}.myshopify.com",
                "metrics": {},
                "dimensions": {"name": "#1001", "utm_params": '{"source": "ig"}', "order_data": {"id": 1}},
            },
        ),
        (
            names.YT_ACTIVITY_LOG,
            yt_activity.key,
            yt_activity,
            "yt_activity_log_events",
            {
                **common,
                "source": "ytapi",
                "platform": "YOUTUBE",
                "event_id": f"{tag}-ytact",
                "activity_id": f"act_{tag}",
                "activity_type": "upload",
                "actor_channel_id": f"UC_{tag}",
                "metrics": {},
                "dimensions": {"shortcode": f"v_{tag}"},
            },
        ),
        (
            names.YT_PROFILE_RELATIONSHIP_LOG,
            subscription.key,
            subscription,
            "yt_profile_relationship_log_events",
            {
                **common,
                "source": "ytapi",
                "platform": "YOUTUBE",
                "event_id": f"{tag}-ytsub",
                "relationship_id": f"sub_{tag}",
                "relationship_type": "subscription",
                "source_channel_id": f"UC_fan_{tag}",
                "target_channel_id": f"UC_{tag}",
                "source_metrics": {},
                "source_dimensions": {},
                "target_metrics": {},
                "target_dimensions": {"title": "T"},
                "subscribed_on": "2023-02-03 04:05:06",
            },
        ),
        (
            names.STATUS,
            rid,
            retrying,
            "scrape_request_log_events",
            {
                **status,
                # The legacy retry path: the row PENDING again, counting the attempt to come.
                "event_id": status_event_id(rid, 2, Status.RETRYING),
                "status": "PENDING",
                "event_timestamp": "2024-05-01 10:01:02",
                "picked_at": None,
                "retry_count": 3,
            },
        ),
        (
            names.STATUS,
            rid,
            dead,
            "scrape_request_log_events",
            {
                **status,
                "event_id": status_event_id(rid, 3, Status.DEAD_LETTERED),
                "status": "FAILED",
                "event_timestamp": "2024-05-01 10:01:02",
                "picked_at": "2024-05-01 10:01:02",
                "retry_count": 3,
            },
        ),
        (
            names.PROFILE_LOG,
            channel.key,
            channel,
            "profile_log_events",
            {
                **common,
                "source": "ytapi",
                "platform": "YOUTUBE",
                "event_id": f"{tag}-channel",
                "profile_id": f"UC{tag}",
                # The legacy sent the channel id as the handle; the custom URL stays a dimension.
                "handle": f"UC{tag}",
                "metrics": {"subscribers": 10},
                "dimensions": {"custom_url": f"@name{tag}", "title": "T"},
            },
        ),
        (
            names.PROFILE_LOG,
            gpt.key,
            gpt,
            "profile_log_events",
            {
                **common,
                "source": "openapi_profile_info_v0.12",
                "event_id": f"{tag}-gpt",
                "profile_id": f"p_{tag}",
                "handle": f"h_{tag}",
                "metrics": {},
                # Python's str() of the list, as the legacy GPT flow sent it.
                "dimensions": {"categories": "['Fitness', 'Health']", "languages": ["en"]},
            },
        ),
        (
            names.POST_ACTIVITY_LOG,
            page.key,
            page,
            "post_activity_log_bulk",
            {
                "platform": "INSTAGRAM",
                "activity_type": "COMMENT",
                "post_activity_logs": [
                    {
                        "activity_type": "COMMENT",
                        "platform": "INSTAGRAM",
                        "platform_post_id": f"S{tag}",
                        "actor_profile_id": actor,
                        "dimensions": [{"key": "comment_id", "value": cid}, {"key": "text", "value": text}],
                        "metrics": metrics,
                        "source": "rocketapi",
                        "timestamp": "2024-05-01 10:05:00",
                    }
                    for actor, cid, text, metrics in (
                        (f"a_{tag}", "c1", "nice", [{"key": "likes", "value": 2}]),
                        (f"b_{tag}", "c2", "meh", []),
                    )
                ],
            },
        ),
        (
            names.SENTIMENT_LOG,
            sentiment.key,
            sentiment,
            "sentiment_log_events",
            {
                "event_id": f"{tag}-sentiment",
                "source": "beat",
                "platform": "INSTAGRAM",
                "shortcode": f"S{tag}",
                "comment_id": "c1",
                "event_timestamp": "2024-05-01 10:05:00",
                "comment": "nice",
                "sentiment": "POSITIVE",
                "score": 0.93,
                "metrics": {},
                "dimensions": {"model": "sentiment-v1"},
            },
        ),
        (
            names.REPORT_LOG,
            keyword_report.key,
            keyword_report,
            "keyword_collection_report_completion",
            {
                "job_id": f"TEST_KC_{tag}",
                "report_asset": {
                    "path": f"keyword_collections/2024-05-01/TEST_KC_{tag}.parquet",
                    "bucket": "beat-assets",
                },
                "demographic_report_asset": {
                    "path": f"keyword_collections/2024-05-01/TEST_KC_{tag}_demographic.parquet",
                    "bucket": "beat-assets",
                },
            },
        ),
        (
            names.REPORT_LOG,
            sentiment_report.key,
            sentiment_report,
            "sentiment_collection_report_out_rk",
            {
                "collectionType": "CAMPAIGN",
                "collectionId": f"col_{tag}",
                "sentimentReportPath": f"sentiment_report/test/2024-05-01/CAMPAIGN_col_{tag}.parquet",
                "sentimentReportBucket": "beat-assets",
            },
        ),
        (
            names.TRACE_LOG,
            None,
            trace,
            "trace_log",
            {
                "id": f"{tag}-trace",
                "serviceName": "beat",
                "timestamp": "2024-05-01T10:05:00+00:00",
                "timeTaken": 2,
                "method": "GET",
                "uri": "https://graph.facebook.com/v19.0/17841400000",
                "headers": {},
                "responseStatus": 200,
                "remoteAddress": "https://graph.facebook.com/v19.0/17841400000",
                "onlyRequest": False,
                "requestBody": "",
                "responseBody": "",
            },
        ),
    ]


def _message_id(event, expected: dict) -> str:
    """The AMQP message id a kind's message carries: its event id, which a payload without an id field (the bulk
    page, Coffee's completions) does not repeat."""
    return expected.get("event_id") or expected.get("id") or event.event_id


async def test_every_event_kind_reaches_its_legacy_routing_key(broker, session_dir, amqp):
    prefix = f"mirror{uuid.uuid4().hex[:6]}."
    topics = [f"{prefix}{t}" for t in MIRRORED]
    await ensure_topics(broker, dict.fromkeys((*topics, f"{prefix}{names.DEAD_LETTER}"), 2))
    queue = await LegacyQueue(amqp).start()
    env = beat_env(
        kafka_url=broker,
        topic_prefix=prefix,
        amqp_url=amqp,
        broker_session_timeout="6",
        data_dir=str(session_dir / prefix),
    )
    mirror = BeatProcess("mirror", env, session_dir / "logs" / prefix / "mirror.log").start()
    try:
        kinds = _kinds(uuid.uuid4().hex[:8])
        producer = AIOKafkaProducer(bootstrap_servers=broker, acks="all")
        await producer.start()
        try:
            poison = await producer.send_and_wait(f"{prefix}{names.PROFILE_LOG}", b"{not json", key=b"poison")
            for topic, key, event, _, _ in kinds:
                await producer.send_and_wait(f"{prefix}{topic}", event.to_bytes(), key=key.encode() if key else None)
        finally:
            await producer.stop()

        ids = [_message_id(event, expected) for _, _, event, _, expected in kinds]
        missing = await queue.wait_for(ids, timeout=45)
        assert not missing, f"never arrived: {missing}\n{mirror.log_tail()}"
        for event_id, (_, _, _, routing_key, expected) in zip(ids, kinds, strict=True):
            message = queue.received[event_id][0]
            payload = json.loads(message.body)
            assert message.routing_key == routing_key
            assert message.exchange == EXCHANGE_OF.get(routing_key, "beat.dx")
            assert set(payload) == LEGACY_FIELDS[routing_key]
            for row in payload.get("post_activity_logs", []):
                assert set(row) == BULK_ROW_FIELDS
            assert {k: v for k, v in payload.items() if k != "hostname"} == expected
            for field in ("event_timestamp", "picked_at", "expires_at", "publish_time", "subscribed_on"):
                assert payload.get(field) is None or LEGACY_TIME.match(payload[field]), (field, payload[field])
            assert message.delivery_mode == aio_pika.DeliveryMode.PERSISTENT
            assert message.content_type == "application/json" and message.message_id == event_id
        trace = queue.payload(kinds[-1][-1]["id"])
        assert isinstance(trace["hostname"], str) and trace["hostname"] and isinstance(trace["timeTaken"], int)

        # The undecodable record went to the dead-letter topic, and the events after it still arrived.
        dead_records, _ = await _read_all(broker, [f"{prefix}{names.DEAD_LETTER}"], idle=0.5)
        dead = [json.loads(record.value) for record in dead_records]
        assert [(d["original_topic"], d["original_offset"], base64.b64decode(d["original_value"])) for d in dead] == [
            (f"{prefix}{names.PROFILE_LOG}", poison.offset, b"{not json")
        ]
        assert dead[0]["error"]["message"].startswith("beat mirror:")

        # SIGTERM: the mirror exits cleanly with every record it published committed.
        _, produced = await _read_all(broker, topics, idle=0.5)
        assert mirror.terminate(timeout=20) == 0, mirror.log_tail()
        assert await _committed(broker, f"{prefix}beat-mirror", produced) == produced
    finally:
        mirror.kill()
        await queue.stop()


async def test_rabbitmq_outage_and_a_killed_mirror_lose_no_event(broker, database_url, session_dir, pool, amqp_vhost):
    """RabbitMQ cut for longer than the mirror's batch while requests keep completing; the mirror is
    SIGKILLed mid-outage and restarted; after reconnect every event id on Kafka arrives on RabbitMQ."""
    batch = 50
    proxy = TcpProxy(RABBIT_HOST, RABBIT_PORT).start()
    queue = await LegacyQueue(amqp_url(amqp_vhost)).start()
    settings = {"amqp_url": amqp_url(amqp_vhost, proxy.port), "sink_batch_size": str(batch)}
    try:
        async with isolated(broker, database_url, session_dir, SandboxConfig(), "mirror", **settings) as (
            prefix,
            spawn,
            _,
        ):
            topics = [f"{prefix}{t}" for t in MIRRORED]
            group = f"{prefix}beat-mirror"
            request_topic = f"{prefix}{names.scrape_topic(BASIC)}"

            async def submit(n: int, tag: str) -> list[str]:
                bodies = [{"params": {"handle": f"{tag}_{uuid.uuid4().hex[:8]}"}} for _ in range(n)]
                return await produce_requests(broker, request_topic, bodies, key_field="handle")

            spawn("worker", "--flows", BASIC)
            first = spawn("mirror")
            before = await submit(4, "before")
            assert set((await wait_terminal(pool, before, timeout=60)).values()) == {"COMPLETE"}
            records, ends = await _read_all(broker, topics)
            assert not await queue.wait_for(
                {legacy_event(_base(r.topic, prefix), r.value).event_id for r in records}, timeout=30
            ), first.log_tail()
            # Everything published before the cut is committed: this is the offset the outage must not move.
            committed = await _wait_committed(broker, group, ends, timeout=15)
            assert committed == ends

            proxy.cut()
            cut_at = time.monotonic()
            during = await submit(24, "during")
            statuses = await wait_terminal(pool, during, timeout=60)
            assert set(statuses.values()) == {"COMPLETE"} and len(statuses) == len(during), (
                "the worker and sink must keep completing requests while RabbitMQ is down"
            )
            records, ends = await _read_all(broker, topics)
            assert sum(ends.values()) - sum(committed.values()) > 4 * batch, "the outage must outlast a batch"
            # The mirror has had every outage event within reach and retried a few times: it must
            # still hold one unconfirmed batch and have committed nothing.
            await _wait_log(first, "RabbitMQ did not confirm", timeout=20, times=3)
            assert await _committed(broker, group, ends) == committed, "committed past unconfirmed messages"
            first.kill()
            second = spawn("mirror")
            await _wait_log(second, "unreachable", timeout=20)
            await asyncio.sleep(max(0.0, 12 - (time.monotonic() - cut_at)))
            proxy.restore()

            records, ends = await _read_all(broker, topics)
            # An event id may be on Kafka more than once: the reconciler produces a PENDING again for a request
            # whose hand-over it has not seen recorded (a busy machine), at a later time. Each is mirrored.
            expected: dict[str, dict[bytes, str]] = {}
            for record in records:
                event = legacy_event(_base(record.topic, prefix), record.value)
                expected.setdefault(event.event_id, {})[event.body()] = event.routing_key
            missing = await queue.wait_for(expected, timeout=45)
            assert not missing, f"{len(missing)} of {len(expected)} never arrived:\n{second.log_tail()}"
            for event_id, mapped in expected.items():
                bodies = {message.body for message in queue.received[event_id]}
                assert bodies <= set(mapped), f"{event_id}: a message differs from every mapped record of its id"
                assert {m.routing_key for m in queue.received[event_id]} == set(mapped.values())
            assert await _wait_committed(broker, group, ends, timeout=15) == ends
    finally:
        await queue.stop()
        proxy.stop()


def _base(topic: str, prefix: str) -> str:
    return topic[len(prefix) :]


async def test_a_record_that_breaks_its_mapping_costs_a_dead_letter_not_the_mirror(broker, session_dir, amqp):
    """A valid profile event whose time has no UTC equivalent (mapping it raises OverflowError, not a
    ValueError) is dead-lettered; the event behind it on the same partition still arrives."""
    prefix = f"mirrorpoison{uuid.uuid4().hex[:6]}."
    await ensure_topics(broker, {f"{prefix}{t}": 2 for t in (*MIRRORED, names.DEAD_LETTER)})
    queue = await LegacyQueue(amqp).start()
    env = beat_env(
        kafka_url=broker,
        topic_prefix=prefix,
        amqp_url=amqp,
        broker_session_timeout="6",
        data_dir=str(session_dir / prefix),
    )
    mirror = BeatProcess("mirror", env, session_dir / "logs" / prefix / "mirror.log").start()
    try:
        tag = uuid.uuid4().hex[:8]
        poison = json.dumps(
            {
                "event_id": f"{tag}-poison",
                "kind": "profile",
                "request_id": f"req-{tag}",
                "source": "lama",
                "platform": "INSTAGRAM",
                "observed_at": "0001-01-01T00:00:00+01:00",
                "profile_id": f"p_{tag}",
            }
        ).encode()
        after = ProfileLog(
            event_id=f"{tag}-after",
            kind="profile",
            request_id=f"req-{tag}",
            source="lama",
            platform=Platform.INSTAGRAM,
            observed_at=datetime(2024, 5, 1, 10, 5, tzinfo=UTC),
            profile_id=f"p_{tag}",
        )
        producer = AIOKafkaProducer(bootstrap_servers=broker, acks="all")
        await producer.start()
        try:
            sent = await producer.send_and_wait(f"{prefix}{names.PROFILE_LOG}", poison, key=after.key.encode())
            await producer.send_and_wait(f"{prefix}{names.PROFILE_LOG}", after.to_bytes(), key=after.key.encode())
        finally:
            await producer.stop()

        assert not await queue.wait_for([after.event_id], timeout=45), mirror.log_tail()
        assert f"{tag}-poison" not in queue.received
        dead_records, _ = await _read_all(broker, [f"{prefix}{names.DEAD_LETTER}"], idle=0.5)
        dead = [json.loads(record.value) for record in dead_records]
        assert [(d["original_offset"], d["error"]["type"]) for d in dead] == [(sent.offset, "OverflowError")]
        assert dead[0]["error"]["message"].startswith("beat mirror:")
        assert mirror.alive() and mirror.terminate(timeout=20) == 0, mirror.log_tail()
    finally:
        mirror.kill()
        await queue.stop()
