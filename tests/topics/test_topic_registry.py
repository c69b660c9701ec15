"""The topic registry is the one description of Beat's topics: every topic is in it, and the sink's routes,
the mirror and the payload-to-topic map all come from it. Consumers built for an older version of an event
read a newer one that gained a field."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from sinks.dead_letters import decode_letter
from sinks.legacy_events import EXCHANGES, MIRRORED, legacy_event
from sinks.routing import ROUTES, TOPICS, WRITERS, decode
from topics import names, registry
from topics.models import (
    DeadLetter,
    ErrorInfo,
    Model,
    Platform,
    ProfileLog,
    RequestStatus,
    ScrapeRequest,
    Stamps,
    Status,
    TraceLog,
)

AT = datetime(2024, 5, 1, 10, 0, tzinfo=UTC)
STAMPS = {"event_id": "e-1", "request_id": "r-1", "observed_at": AT}


def test_every_topic_in_names_is_in_the_registry():
    listed = {spec.name for spec in registry.TOPICS}
    assert set(names.LOG_TOPICS) <= listed
    assert {names.STATUS, names.DEAD_LETTER, names.TRACE_LOG, names.scrape_topic("<flow>")} <= listed
    assert len(listed) == len(registry.TOPICS)


def test_each_payload_has_one_topic_and_its_event_is_the_payload_stamped():
    payloads = [spec.payload for spec in registry.TOPICS if spec.payload is not None]
    assert len(payloads) == len(set(payloads))
    for spec in registry.TOPICS:
        if spec.payload is not None:
            assert issubclass(spec.event, spec.payload) and issubclass(spec.event, Stamps), spec.name
            assert spec.kinds and spec.payload.model_fields["kind"].default in spec.kinds, spec.name
        for _, kind in spec.tables:
            assert kind in spec.kinds, (spec.name, kind)


def test_an_unknown_topic_or_payload_is_a_loud_miss():
    with pytest.raises(registry.UnknownTopic, match=r"no topic 'profile_logs'; known: beat\.scrape\.<flow>, "):
        registry.topic("profile_logs")
    with pytest.raises(registry.UnknownTopic, match="no topic takes a ProfileLog; payloads: Profile, Post, "):
        registry.for_payload(ProfileLog(profile_id="1", platform=Platform.INSTAGRAM, source="lama", **STAMPS))


def test_the_sink_routes_and_stores_exactly_what_the_registry_says():
    tabled = [spec for spec in registry.TOPICS if spec.tables]
    assert {spec.name for spec in tabled} == set(names.STORED_TOPICS)
    assert (names.STATUS, *names.STORED_TOPICS, names.DEAD_LETTER) == TOPICS
    assert {
        (spec.name, platform, kind): table for spec in tabled for (platform, kind), table in spec.tables.items()
    } == {key: route.table.name for key, route in ROUTES.items()}
    assert set(WRITERS) == {table for spec in tabled for table in spec.tables.values()}


def test_the_mirror_publishes_exactly_the_topics_the_registry_routes():
    routed = {spec.name: spec.legacy for spec in registry.TOPICS if spec.legacy}
    assert {topic: tuple(route for route, _, _ in mirrored.routes) for topic, mirrored in MIRRORED.items()} == routed
    exchanges = {route.exchange for routes in routed.values() for route in routes}
    assert set(EXCHANGES) == exchanges == {"beat.dx", "identity.dx", "coffee.dx"}


# Consumers one version behind: every record Beat writes, with a field a newer producer added.


def _examples() -> dict[str, Model]:
    ig = Platform.INSTAGRAM
    return {
        names.scrape_topic("<flow>"): ScrapeRequest(params={"handle": "nasa"}),
        names.STATUS: RequestStatus(request_id="r-1", status=Status.COMPLETE, flow="refresh_profile_basic", at=AT),
        names.PROFILE_LOG: ProfileLog(
            platform=ig, source="lama", profile_id="528817151", handle="nasa", metrics={"followers": 5}, **STAMPS
        ),
        names.POST_LOG: registry.topic(names.POST_LOG).event(
            platform=ig, source="lama", shortcode="C1", profile_id="528817151", **STAMPS
        ),
        names.POST_ACTIVITY_LOG: registry.topic(names.POST_ACTIVITY_LOG).event(
            platform=ig, source="jotucker", activity_type="LIKE", shortcode="C1", actor_profile_id="9", **STAMPS
        ),
        names.PROFILE_RELATIONSHIP_LOG: registry.topic(names.PROFILE_RELATIONSHIP_LOG).event(
            platform=ig, source="rocketapi", source_profile_id="9", target_profile_id="528817151", **STAMPS
        ),
        names.ORDER_LOG: registry.topic(names.ORDER_LOG).event(
            platform=Platform.SHOPIFY, source="shopify", platform_order_id="5312345678011", store="k", **STAMPS
        ),
        names.YT_ACTIVITY_LOG: registry.topic(names.YT_ACTIVITY_LOG).event(
            platform=Platform.YOUTUBE,
            source="ytapitoken",
            activity_id="a1",
            activity_type="upload",
            actor_channel_id="UC1",
            **STAMPS,
        ),
        names.YT_PROFILE_RELATIONSHIP_LOG: registry.topic(names.YT_PROFILE_RELATIONSHIP_LOG).event(
            platform=Platform.YOUTUBE,
            source="ytapitoken",
            relationship_id="s1",
            source_channel_id="UC2",
            target_channel_id="UC1",
            **STAMPS,
        ),
        names.ASSET_LOG: registry.topic(names.ASSET_LOG).event(
            platform=ig,
            entity_type="profile",
            entity_id="528817151",
            asset_type="profile_pic",
            asset_url="assets/profiles/INSTAGRAM/528817151.jpg",
            original_url="https://cdn.example/p.jpg",
            content_type="image/jpeg",
            size=10,
            **STAMPS,
        ),
        names.SENTIMENT_LOG: registry.topic(names.SENTIMENT_LOG).event(
            platform=ig, shortcode="C1", comment_id="c1", comment="love it", sentiment="POSITIVE", score=0.9, **STAMPS
        ),
        names.REPORT_LOG: registry.topic(names.REPORT_LOG).event(
            platform=ig, report="keyword_collection", job_id="j1", paths={"report": "k/j1.parquet"}, **STAMPS
        ),
        names.DEAD_LETTER: DeadLetter(
            original_topic="beat.scrape.x",
            original_partition=0,
            original_offset=1,
            original_value="e30=",
            error=ErrorInfo(type="Poison", message="no"),
        ),
        names.TRACE_LOG: TraceLog(
            id="t-1", source="lama", method="GET", host="api.example", path="/v1/user", latency_ms=12.5
        ),
    }


def _with_added_field(event: Model) -> bytes:
    record = json.loads(event.to_bytes())
    record["added_in_a_later_version"] = {"any": ["shape"]}
    if isinstance(record.get("error"), dict):
        record["error"]["hint"] = "a nested addition too"
    return json.dumps(record).encode()


def test_there_is_an_example_of_every_topic():
    assert set(_examples()) == {spec.name for spec in registry.TOPICS}


def test_every_reader_of_a_record_ignores_a_field_it_does_not_know():
    examples = _examples()
    for spec in registry.TOPICS:
        event = examples[spec.name]
        newer = _with_added_field(event)
        assert spec.event.model_validate_json(newer) == event, spec.name
        if spec.name in MIRRORED:
            assert legacy_event(spec.name, newer) == legacy_event(spec.name, event.to_bytes()), spec.name
    assert decode_letter(_with_added_field(examples[names.DEAD_LETTER]))["error_type"] == "Poison"


def test_the_sink_stores_events_with_an_added_field_rather_than_dead_lettering_them():
    examples = _examples()
    decoded = decode([(topic, _with_added_field(examples[topic])) for topic in (names.STATUS, *names.STORED_TOPICS)])
    assert decoded.poison == []
    assert len(decoded.statuses) == 1
    assert sum(len(rows) for rows in decoded.rows.values()) == len(names.STORED_TOPICS)
