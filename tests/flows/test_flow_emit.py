"""``FlowContext.emit``: one payload in, one stamped event out, on the registry's topic and key, with the
event ids Beat has always given (a replay after an upgrade must produce the same ids)."""

from __future__ import annotations

import json

import pytest

from agents.flows.context import FlowContext
from topics import names
from topics.models import (
    Activity,
    Asset,
    Order,
    Platform,
    Post,
    PostLog,
    Profile,
    ProfileLog,
    Relationship,
    ScrapeRequest,
    YtActivity,
    YtRelationship,
)

IG, YT = Platform.INSTAGRAM, Platform.YOUTUBE


def _context(request_id: str = "pinned-request", retry_count: int = 1) -> FlowContext:
    request = ScrapeRequest(
        id=request_id, flow="refresh_profile_basic", params={"handle": "nasa"}, retry_count=retry_count
    )
    return FlowContext(request=request, crawler=None)  # type: ignore[arg-type]  # emitting calls no provider


def _emit_one_of_each(ctx: FlowContext) -> None:
    ctx.emit(Profile(platform=IG, source="lama", profile_id="528817151", handle="nasa"))
    ctx.emit(Post(platform=IG, source="lama", shortcode="C1", profile_id="528817151", handle="nasa"), keywords=["moon"])
    ctx.emit(
        Activity(
            platform=YT,
            source="ytapitoken",
            activity_type="COMMENT",
            shortcode="vid1",
            actor_profile_id=None,
            dimensions={"comment_id": "c9"},
        )
    )
    ctx.emit(Relationship(platform=IG, source="rocketapi", source_profile_id="2", target_profile_id="528817151"))
    ctx.emit(
        YtActivity(platform=YT, source="ytapitoken", activity_id="act1", activity_type="upload", actor_channel_id="UC1")
    )
    ctx.emit(
        YtRelationship(
            platform=YT, source="ytapitoken", relationship_id="sub1", source_channel_id="UC2", target_channel_id="UC1"
        )
    )
    ctx.emit(
        Order(
            platform=Platform.SHOPIFY,
            source="shopify",
            platform_order_id="5312345678011",
            store="kalakari.myshopify.com",
        )
    )
    ctx.emit(
        Asset(
            platform=IG,
            entity_type="profile",
            entity_id="528817151",
            asset_type="profile_pic",
            asset_url="assets/profiles/INSTAGRAM/528817151.jpg",
            original_url="https://cdn.example/p.jpg",
            content_type="image/jpeg",
            size=10,
        )
    )


def test_event_ids_topics_and_keys_are_the_ones_beat_always_gave():
    # Produced by the emit_* methods this replaced, for the same request, attempt and payloads.
    ctx = _context()
    _emit_one_of_each(ctx)
    assert [(topic, key, event.event_id) for topic, key, event in ctx.events] == [
        (names.PROFILE_LOG, "INSTAGRAM:528817151", "f7755c37-9b45-54c8-955e-aadd3f01fa88"),
        (names.POST_LOG, "INSTAGRAM:C1", "76843d99-c519-5796-8a15-180f5456db20"),
        # The key names the comment when the author has no channel; the id still derives from "None".
        (names.POST_ACTIVITY_LOG, "YOUTUBE:vid1:COMMENT:c9", "35b0b1a0-e64e-5f99-9410-7a38ba8c2469"),
        (names.PROFILE_RELATIONSHIP_LOG, "INSTAGRAM:2:528817151", "9f215d44-7aeb-5eed-9052-08a1d41cd2cf"),
        (names.YT_ACTIVITY_LOG, "YOUTUBE:act1", "9aed5604-ad59-5a77-9dae-16bab774fc18"),
        (names.YT_PROFILE_RELATIONSHIP_LOG, "YOUTUBE:sub1", "1e43e086-d855-5263-b51f-6f086185bb12"),
        (names.ORDER_LOG, "SHOPIFY:5312345678011", "17789f95-2c26-5147-bcc6-b4ced61f3d12"),
        (names.ASSET_LOG, "INSTAGRAM:528817151", "3c239b15-9ba0-5fa1-b1bd-d740c03a27c3"),
    ]


def test_a_replay_gives_the_same_ids_and_another_attempt_new_ones():
    first, replay, retry = _context(), _context(), _context(retry_count=2)
    for ctx in (first, replay, retry):
        _emit_one_of_each(ctx)
    ids = [[event.event_id for _, _, event in ctx.events] for ctx in (first, replay, retry)]
    assert ids[0] == ids[1]
    assert not set(ids[0]) & set(ids[2])
    assert {event.attempt for _, _, event in retry.events} == {3}


def test_emit_stamps_the_payload_and_adds_the_flows_dimensions():
    ctx = _context(retry_count=0)
    post = Post(platform=IG, source="lama", shortcode="C1", dimensions={"caption": "moon", "keywords": ["old"]})
    event = ctx.emit(post, keywords=["moon"], collab_profile_id="7")
    assert isinstance(event, PostLog)
    assert (event.request_id, event.attempt, event.kind, event.source) == ("pinned-request", 1, "post", "lama")
    assert event.dimensions == {"caption": "moon", "keywords": ["moon"], "collab_profile_id": "7"}
    assert event.observed_at.tzinfo is not None
    # The payload itself is left as the parser made it.
    assert post.dimensions == {"caption": "moon", "keywords": ["old"]}


def test_posts_embedded_in_a_profile_stay_out_of_its_event():
    ctx = _context()
    embedded = Post(platform=IG, source="lama", shortcode="C1")
    event = ctx.emit(Profile(platform=IG, source="lama", profile_id="1", embedded_posts=[embedded]))
    assert isinstance(event, ProfileLog)
    assert "embedded_posts" not in json.loads(event.to_bytes())


def test_a_kind_the_registry_does_not_list_is_refused():
    ctx = _context()
    with pytest.raises(ValueError, match=r"profile_log carries no kind 'profile_sentiment'; known: profile, "):
        ctx.emit(Profile(platform=IG, source="lama", profile_id="1", kind="profile_sentiment"))
    assert ctx.events == []


def test_extra_dimensions_on_a_payload_without_dimensions_are_refused():
    ctx = _context()
    with pytest.raises(TypeError, match="a Relationship has no dimensions to add keywords to"):
        ctx.emit(Relationship(platform=IG, source="lama", source_profile_id="1", target_profile_id="2"), keywords=["x"])
    assert ctx.events == []


def test_a_parser_cannot_build_a_payload_with_a_field_it_does_not_have():
    with pytest.raises(ValueError, match=r"extra_forbidden|Extra inputs"):
        Post(platform=IG, source="lama", shortcode="C1", shortcod="typo")
