"""The Instagram Graph API (graph.facebook.com): pure parsers of its answers, its refusals, and the client.

A credential belongs to one Instagram business account: ``{"token", "user_id"}``, user_id being that
account's Graph id. Other accounts are read through ``business_discovery`` on that node, which serves only
their public fields; stories and insights exist only for the account's own node, media and audience. The
token travels as the ``access_token`` query parameter, so every message built from an answer is scrubbed of it.

Graph refuses with a 4xx and ``{"error": {"message", "type", "code", "error_subcode", "fbtrace_id"}}``;
the code, not the HTTP status, says what went wrong (``error_for``). Every call names the configured
Graph API version (``BEAT_GRAPH_API_VERSION``). Insights ask each media product type for the metrics
Meta serves it today (``MEDIA_INSIGHT_METRICS``); a #100 refusal naming metrics Graph no longer serves
is answered by asking once more without them, and the answer says which were dropped.

Field paths follow legacy-beat.md §3.2 and key names §4.2, with one legacy bug left behind (§11.9):
reached-audience demographics fill the ``reached_audience_*`` dimensions and engaged-audience ones
the ``engaged_audience_*``, where the legacy code swapped them.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import math
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Generic, TypeVar
from urllib.parse import urlsplit

import httpx

from providers.errors import (
    AuthExpired,
    BadResponse,
    Forbidden,
    InputRejected,
    NotSupported,
    PostMissing,
    ProfileMissing,
    ProviderError,
    ProviderUnavailable,
    QuotaExceeded,
)
from providers.http import Credential, ProviderHttp
from providers.paging import Page
from providers.parsing import Values, at, json_object, wait_seconds
from topics.models import Platform, Post, Profile, utcnow

log = logging.getLogger(__name__)

SOURCE = "graphapi"
_v = Values(SOURCE)

# A version Meta serves (v25.0: released 2026-02-18, available until 2028-07-29, per the Graph API changelog
# checked 2026-12-03); core/settings.py has the same default, and BEAT_GRAPH_API_VERSION overrides both.
DEFAULT_VERSION = "v25.0"
VERSION_PATTERN = r"v[0-9]{1,3}\.[0-9]{1,2}"

# A discovered account's media are ShadowIGMedia, which answer IG Media's public fields only (IG Media and
# IG User Business Discovery references, checked 2026-12-03). user_id is no IG Media field at all: asking it
# failed the whole call with #100 "Tried accessing nonexisting field (user_id) on node type (ShadowIGMedia)".
# A media's owner is the account asked about, whose ig_id the same answer carries.
MEDIA_FIELDS = "id,username,comments_count,like_count,media_type,media_url,caption,timestamp,permalink"
PROFILE_FIELDS = (
    "id,ig_id,name,website,followers_count,follows_count,profile_picture_url,username,biography,media_count"
)
# Stories are read on the account's own node (GET /<ig-user-id>?fields=stories{…}, IG User Stories reference):
# business discovery has no stories edge, so they need the account's own token.
STORY_FIELDS = "id,media_type,media_product_type,media_url,owner,permalink,timestamp,username,caption"
OWN_ACCOUNT_FIELDS = "id,ig_id,username"
GRAPH_TIME = "%Y-%m-%dT%H:%M:%S%z"

MEDIA_TYPES = {"VIDEO": "reels", "IMAGE": "image", "CAROUSEL_ALBUM": "carousel"}
# Media insights by media product type: the metrics Meta's Instagram Media Insights reference lists for each
# (checked 2026-12-03). Asking one a type does not serve, or one Meta retired, fails the whole call with #100:
# views replaced impressions (FEED, STORY) and plays (REELS) for every version on 2025-04-21,
# total_interactions replaced engagement on 2023-12-11, and video_views (and saved on stories) have no successor.
MEDIA_INSIGHT_METRICS: dict[str, tuple[str, ...]] = {
    "FEED": ("views", "reach", "likes", "comments", "saved", "shares", "total_interactions"),
    "REELS": ("views", "reach", "likes", "comments", "saved", "shares", "total_interactions"),
    "STORY": (
        "views",
        "reach",
        "replies",
        "shares",
        "total_interactions",
        "follows",
        "profile_visits",
        "profile_activity",
    ),
}
# A post's type (legacy §3.2) -> its media product type; stories go through story_insights, with navigation.
POST_PRODUCT_TYPES = {"image": "FEED", "carousel": "FEED", "reels": "REELS"}
STORY = "STORY"
METRIC_KEYS = {
    "views": "views",
    "reach": "reach",
    "saved": "saved",
    "likes": "likes",
    "comments": "comments",
    "shares": "shares",
    "total_interactions": "interactions",
    "follows": "follows",
    "profile_visits": "profile_visits",
    "profile_activity": "profile_activity",
    "replies": "replies",
    "navigation": "navigation",
}
# The legacy keys views succeeds, by media product type; legacy consumers read them, so they keep being filled.
# Reels' play_count is not: scrapers fill it with Instagram's public play count, which views would contradict.
LEGACY_KEYS_FROM_VIEWS: dict[str, tuple[str, ...]] = {"FEED": ("impressions",), "STORY": ("impressions",)}
NAVIGATION_ACTIONS = (
    "automatic_forward",
    "tap_back",
    "tap_exit",
    "tap_forward",
    "swipe_back",
    "swipe_down",
    "swipe_forward",
    "swipe_up",
)

# Audience metric → the prefix of its dimensions; breakdown → their suffix.
AUDIENCE_METRICS = {
    "follower_demographics": "audience",
    "reached_audience_demographics": "reached_audience",
    "engaged_audience_demographics": "engaged_audience",
}
AUDIENCE_BREAKDOWNS = {"country": "country", "city": "city", "gender,age": "gender_age"}
GENDERS = {"M": "male", "F": "female", "U": "uncategorized"}
# Demographics are lifetime totals; the reference lists the timeframes this_week and this_month only
# (Beat asked last_90_days, which Graph no longer takes).
AUDIENCE_PARAMS = {"period": "lifetime", "metric_type": "total_value", "timeframe": "this_month"}

REQUIRED_SCOPES = ("instagram_basic", "instagram_manage_insights", "pages_read_engagement", "pages_show_list")
# The legacy validator called data access expired only a week after its expiry date.
DATA_ACCESS_GRACE = timedelta(days=7)

_AUTH_CODES = frozenset({102, 104, 190})
# 4 app, 17 user, 32 page, 613 custom, 80001-80014 business-use-case (80002: Instagram) rate limits.
_THROTTLE_CODES = frozenset({4, 17, 32, 613, *range(80001, 80015)})
_UNAVAILABLE_CODES = frozenset({1, 2})
_MISSING_OBJECT = 33
_PRE_CONVERSION_MEDIA = 2108006
_PERMISSION_WORDS = ("permission", "scope", "authoriz")
_USAGE_HEADERS = ("x-business-use-case-usage", "x-app-usage", "x-ad-account-usage")
# Checked before they go into a field expression or a path, where other characters would change the request.
_HANDLE = re.compile(r"[A-Za-z0-9._]{1,30}")
_GRAPH_ID = re.compile(r"[0-9]{1,25}")
_STORY_MISSING = "Story ID doesn't exist"
# How a #100 names metrics Graph does not serve: for the media's product type, no longer at all, or by
# listing the ones it does serve.
_NAMED_UNSUPPORTED = (
    re.compile(r"does not support the ([a-z_, ]+?) metrics? for this media"),
    re.compile(r"the ([a-z_]+) metric is no longer supported"),
    re.compile(r"metric ([a-z_]+) is not supported"),
)
_SERVED_LIST = re.compile(r"metric\[[0-9]+\] must be one of the following values: ([a-z_, ]+)")


# Refusals


@dataclass(frozen=True, slots=True)
class GraphError:
    code: int | None
    subcode: int | None
    message: str
    is_transient: bool
    fbtrace_id: str | None

    @property
    def is_missing_object(self) -> bool:
        return self.code == 100 and (self.subcode == _MISSING_OBJECT or "does not exist" in self.message.lower())

    def describe(self) -> str:
        code = f"{self.code}/{self.subcode}" if self.subcode is not None else f"{self.code}"
        trace = f", fbtrace_id {self.fbtrace_id}" if self.fbtrace_id else ""
        return f"{self.message} (code {code}{trace})"


def parse_error(payload: Any, *, redact: tuple[str, ...] = ()) -> GraphError | None:
    """Graph's ``error`` object, its message scrubbed of ``redact`` (the tokens sent); None if there is none."""
    error = payload.get("error") if isinstance(payload, dict) else None
    if not isinstance(error, dict):
        return None
    given = error.get("message")
    message = given if isinstance(given, str) else "no message"
    return GraphError(
        code=_v.count(error.get("code"), "error.code"),
        subcode=_v.count(error.get("error_subcode"), "error.error_subcode"),
        message=_redacted(message, redact),
        is_transient=error.get("is_transient") is True,
        fbtrace_id=_v.text(error.get("fbtrace_id"), "error.fbtrace_id"),
    )


def _redacted(text: str, secrets: tuple[str, ...]) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text


def retry_after_from_usage(headers: Mapping[str, str]) -> float | None:
    """Seconds until Graph lets the caller back in, from the usage headers' ``estimated_time_to_regain_access``."""
    minutes: list[float] = []
    for name in _USAGE_HEADERS:
        try:
            minutes.extend(_regain_minutes(json.loads(headers.get(name) or "null")))
        except ValueError:
            continue
    longest = max(minutes, default=0.0)
    return wait_seconds(longest * 60) if longest > 0 else None


def _regain_minutes(value: Any) -> Iterator[float]:
    # x-business-use-case-usage nests the field under a business id, then a list of usage types.
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "estimated_time_to_regain_access" and isinstance(item, (int, float)):
                # json.loads reads NaN, Infinity and integers no float holds: none of them is a wait.
                try:
                    minutes = float(item)
                except OverflowError:
                    continue
                if math.isfinite(minutes):
                    yield minutes
            else:
                yield from _regain_minutes(item)
    elif isinstance(value, list):
        for item in value:
            yield from _regain_minutes(item)


def error_for(
    error: GraphError,
    *,
    what: str,
    missing: type[ProviderError] = ProfileMissing,
    missing_text: str = "Object does not exist",
    retry_after: float | None = None,
) -> ProviderError:
    """The typed error of a Graph refusal to ``what``; ``missing``/``missing_text`` name an absent object."""
    detail = f"{what}: {error.describe()}"
    code = error.code
    if code in _AUTH_CODES:
        return AuthExpired(f"token invalid or expired ({detail})", source=SOURCE)
    if code in _THROTTLE_CODES:
        return QuotaExceeded(f"rate limited ({detail})", source=SOURCE, retry_after=retry_after)
    if code == 110:
        return ProfileMissing(f"Invalid username ({detail})", source=SOURCE)
    if code == 100 and error.subcode == _PRE_CONVERSION_MEDIA:
        return NotSupported(
            f"Media was posted before account was converted to business account ({detail})", source=SOURCE
        )
    if error.is_missing_object:
        return missing(f"{missing_text} ({detail})", source=SOURCE)
    if code == 10 or (code is not None and 200 <= code <= 299):
        if any(word in error.message.lower() for word in _PERMISSION_WORDS):
            return AuthExpired(f"token lacks a permission ({detail})", source=SOURCE)
        return Forbidden(detail, source=SOURCE)
    if error.is_transient or code in _UNAVAILABLE_CODES:
        return ProviderUnavailable(detail, source=SOURCE)
    return InputRejected(detail, source=SOURCE)


def unsupported_metrics(error: GraphError | None, asked: Sequence[str]) -> tuple[str, ...]:
    """The metrics of ``asked`` (in that order) a #100 refusal says Graph does not serve; () if it names none."""
    if error is None or error.code != 100:
        return ()
    named: set[str] = set()
    for pattern in _NAMED_UNSUPPORTED:
        for match in pattern.finditer(error.message):
            named.update(name.strip() for name in match.group(1).split(","))
    if served := _SERVED_LIST.search(error.message):
        listed = {name.strip() for name in served.group(1).split(",")}
        named.update(metric for metric in asked if metric not in listed)
    return tuple(metric for metric in asked if metric in named)


_reported_drops: set[str] = set()


def _report_drop(metric: str, product_type: str, error: GraphError) -> None:
    # Once per metric and process: a retired metric would otherwise log on every request.
    if metric not in _reported_drops:
        _reported_drops.add(metric)
        log.warning(
            "graphapi: Graph does not serve the %s metric (%s insights); asking without it: %s",
            metric,
            product_type,
            error.describe(),
        )


# Profiles and media: business discovery, and the account's own node for its stories


def _graph_time(value: Any, field: str) -> tuple[int | None, datetime | None]:
    text = _v.text(value, field)
    if not text:
        return None, None
    try:
        moment = datetime.strptime(text, GRAPH_TIME)
    except ValueError as exc:
        raise BadResponse(f"{field} is not a Graph time: {text!r}", source=SOURCE) from exc
    return _v.utc(moment, field)


def _shortcode(permalink: str | None) -> str | None:
    # /p/<code>/ and /reel/<code>/ for posts, /stories/<handle>/<pk> for stories: the last segment either way.
    segments = [segment for segment in urlsplit(permalink or "").path.split("/") if segment]
    return segments[-1] if segments else None


def _bare(handle: str) -> str:
    return handle.strip().lstrip("@").lower()


def _discovered(payload: dict[str, Any], handle: str | None) -> dict[str, Any]:
    """The ``business_discovery`` node of an answer, checked to be the account asked for."""
    node = _v.require_object(payload).get("business_discovery")
    if not isinstance(node, dict):
        raise BadResponse("answer has no business_discovery", source=SOURCE)
    username = _v.text(node.get("username"), "business_discovery.username")
    if handle is not None and username is not None and username.lower() != _bare(handle):
        raise ProfileMissing(f"asked for {handle!r}, answered for {username!r}", source=SOURCE)
    return node


def _own_account(payload: dict[str, Any], handle: str) -> dict[str, Any]:
    """An answer of the credential's own IG User node, checked to be ``handle``'s: a credential of another
    account reads that other account, whose stories must not be filed under ``handle``."""
    node = _v.require_object(payload)
    username = _v.text(node.get("username"), "account.username")
    if not username:
        raise BadResponse("the account's own node answered without its username", source=SOURCE)
    if username.lower() != _bare(handle):
        raise Forbidden(
            f"the credential belongs to {username!r}, not to {handle!r}: Graph serves an account's "
            "stories only to its own token",
            source=SOURCE,
        )
    return node


def _media_post(item: Any, *, profile_id: str | None, handle: str | None, story: bool = False) -> Post:
    if not isinstance(item, dict):
        raise BadResponse("media item is not an object", source=SOURCE)
    shortcode = _shortcode(_v.text(item.get("permalink"), "media.permalink"))
    if not shortcode:
        raise BadResponse("media has no permalink", source=SOURCE)
    media_type = _v.text(item.get("media_type"), "media.media_type")
    story = story or item.get("media_product_type") == "STORY"
    epoch, published = _graph_time(item.get("timestamp"), "media.timestamp")
    media_url = _v.text(item.get("media_url"), "media.media_url")
    handle = _v.text(item.get("username"), "media.username") or handle
    dimensions: dict[str, Any] = {
        "profile_id": profile_id,
        "handle": handle,
        "post_id": _v.id(item.get("id"), "media.id"),
        "post_type": "story" if story else MEDIA_TYPES.get(media_type or ""),
        "display_url": media_url,
        # A video's media_url is the video itself, no picture.
        "thumbnail_src": media_url if media_type != "VIDEO" else None,
        "taken_at_timestamp": epoch,
        "caption": _v.text(item.get("caption"), "media.caption"),
    }
    metrics: dict[str, float | int | None] = {}
    if story:
        dimensions["content_type"] = media_type.lower() if media_type else None
    else:
        metrics = {
            "comments": _v.count(item.get("comments_count"), "media.comments_count"),
            "likes": _v.count(item.get("like_count"), "media.like_count"),
        }
    return Post(
        platform=Platform.INSTAGRAM,
        source=SOURCE,
        shortcode=shortcode,
        profile_id=profile_id,
        handle=handle,
        publish_time=published,
        metrics=metrics,
        dimensions=dimensions,
        kind="story" if story else "post",
    )


def _media_cursor(node: dict[str, Any]) -> str | None:
    return _v.text(at(node, "media.paging.cursors.after"), "media.paging.cursors.after")


def parse_profile(payload: dict[str, Any], *, handle: str | None = None) -> Profile:
    """A business-discovery answer: the profile, its first page of media as ``embedded_posts``."""
    node = _discovered(payload, handle)
    profile_id = _v.id(node.get("ig_id"), "business_discovery.ig_id")
    username = _v.text(node.get("username"), "business_discovery.username")
    if profile_id is None or not username:
        raise BadResponse("business_discovery has no ig_id or username", source=SOURCE)
    return Profile(
        platform=Platform.INSTAGRAM,
        source=SOURCE,
        profile_id=profile_id,
        handle=username,
        metrics={
            "media_count": _v.count(node.get("media_count"), "business_discovery.media_count"),
            "followers": _v.count(node.get("followers_count"), "business_discovery.followers_count"),
            "following": _v.count(node.get("follows_count"), "business_discovery.follows_count"),
        },
        dimensions={
            "profile_id": profile_id,
            "handle": username,
            "profile_pic_url": _v.text(node.get("profile_picture_url"), "business_discovery.profile_picture_url"),
            "bio": _v.text(node.get("biography"), "business_discovery.biography"),
            "full_name": _v.text(node.get("name"), "business_discovery.name"),
            "external_url": _v.text(node.get("website"), "business_discovery.website"),
            "fbid": _v.id(node.get("id"), "business_discovery.id"),
            "recent_posts_cursor": _media_cursor(node),
            "is_business_or_creator": True,
        },
        embedded_posts=parse_media_page(payload, handle=handle).items,
    )


def _edge_posts(node: dict[str, Any], edge: str, label: str, *, story: bool = False) -> list[Post]:
    """The media of an account node's ``edge``, each owned by that account: the answer names the owner once,
    by the account's ig_id, since discovered media do not serve an owner of their own."""
    items = _v.list(at(node, f"{edge}.data"), f"{edge}.data") or []
    profile_id = _v.id(node.get("ig_id"), f"{label}.ig_id")
    if items and profile_id is None:
        raise BadResponse(f"{label} has no ig_id, so its {edge} would have no owner", source=SOURCE)
    username = _v.text(node.get("username"), f"{label}.username")
    return [_media_post(item, profile_id=profile_id, handle=username, story=story) for item in items]


def _media_page(node: dict[str, Any], label: str) -> Page:
    posts = _edge_posts(node, "media", label)
    # Graph gives no "next" link here; an edge without an "after" cursor (or empty) is the last page.
    cursor = _media_cursor(node)
    return Page(items=posts, next_cursor=cursor if posts and cursor else None)


def parse_media_page(payload: dict[str, Any], *, handle: str | None = None) -> Page:
    """One page of a business-discovery ``media`` edge, newest first."""
    return _media_page(_discovered(payload, handle), "business_discovery")


def parse_stories_and_media(payload: dict[str, Any], *, handle: str) -> tuple[list[Post], Page]:
    """An answer of ``handle``'s own IG User node: its live ``stories`` (none when that edge was not asked)
    and one page of its ``media``, newest first."""
    node = _own_account(payload, handle)
    return _edge_posts(node, "stories", "account", story=True), _media_page(node, "account")


# Insights


def _insight_entries(payload: dict[str, Any], object_id: str) -> dict[str, dict[str, Any]]:
    """Insight entries by metric name, each checked to be about ``object_id``."""
    entries: dict[str, dict[str, Any]] = {}
    for entry in _v.list(_v.require_object(payload).get("data"), "data") or []:
        name = _v.text(at(entry, "name"), "data.name")
        if not name:
            raise BadResponse("insight entry has no name", source=SOURCE)
        entry_id = _v.text(entry.get("id"), "data.id")
        if entry_id is not None and not entry_id.startswith(f"{object_id}/"):
            raise BadResponse(f"asked for insights of {object_id}, answered for {entry_id}", source=SOURCE)
        entries[name] = entry
    return entries


def _metric_value(entry: dict[str, Any], name: str) -> int | None:
    # Lifetime metrics answer in values[0], a broken-down one (navigation) in total_value.
    value = at(entry, "values.0.value")
    if value is None:
        value = at(entry, "total_value.value")
    return _v.count(value, name)


def _insight_metrics(
    entries: dict[str, dict[str, Any]], asked: Sequence[str], product_type: str
) -> dict[str, float | int | None]:
    """Our keys for the metrics ``asked`` (None where Graph left one out), and the legacy keys views fills."""
    metrics: dict[str, float | int | None] = {METRIC_KEYS[name]: None for name in asked}
    for name, entry in entries.items():
        if name in METRIC_KEYS:
            metrics[METRIC_KEYS[name]] = _metric_value(entry, name)
    if "views" in metrics:
        for key in LEGACY_KEYS_FROM_VIEWS.get(product_type, ()):
            metrics[key] = metrics["views"]
    return metrics


def _insights_post(shortcode: str, post_id: str, metrics: dict[str, float | int | None]) -> Post:
    return Post(
        platform=Platform.INSTAGRAM,
        source=SOURCE,
        shortcode=shortcode,
        profile_id=None,
        handle=None,
        publish_time=None,
        metrics=metrics,
        dimensions={"post_id": post_id},
        kind="post_insights",
    )


def parse_post_insights(
    payload: dict[str, Any], *, media_id: str, shortcode: str, metrics: Sequence[str], product_type: str
) -> Post:
    """A ``/<media id>/insights`` answer for the ``metrics`` asked of a ``product_type`` medium (FEED, REELS);
    ``shortcode`` is the post's (Graph omits it)."""
    entries = _insight_entries(payload, media_id)
    if not entries:
        raise PostMissing(f"Graph has no insights for media {media_id}", source=SOURCE)
    return _insights_post(shortcode, media_id, _insight_metrics(entries, metrics, product_type))


def parse_story_insights(
    payload: dict[str, Any],
    navigation: dict[str, Any],
    *,
    story_id: str,
    shortcode: str,
    metrics: Sequence[str] = MEDIA_INSIGHT_METRICS[STORY],
) -> Post:
    """The two ``/<story id>/insights`` answers: the plain ``metrics`` asked, and navigation broken down by
    action."""
    entries = _insight_entries(payload, story_id)
    if not entries:
        raise PostMissing(f"Graph has no insights for story {story_id}", source=SOURCE)
    navigation_entry = _insight_entries(navigation, story_id).get("navigation")
    if navigation_entry is not None:
        entries["navigation"] = navigation_entry
    values = _insight_metrics(entries, (*metrics, "navigation"), STORY)
    values.update(dict.fromkeys(NAVIGATION_ACTIONS))
    results = at(navigation_entry, "total_value.breakdowns.0.results") if navigation_entry else None
    for result in _v.list(results, "navigation.results") or []:
        action = _v.text(at(result, "dimension_values.0"), "navigation.dimension_values")
        if action and action.lower() in NAVIGATION_ACTIONS:
            values[action.lower()] = _v.count(at(result, "value"), f"navigation.{action}")
    return _insights_post(shortcode, story_id, values)


def parse_audience(payload: dict[str, Any], *, metric: str, breakdown: str) -> dict[str, Any] | None:
    """One demographics answer: {CC: n}, {city: n} or {male|female|uncategorized: {age: n}}; None if empty."""
    entries = _v.list(_v.require_object(payload).get("data"), "data") or []
    if not entries:
        return None
    if at(entries, "0.name") != metric:
        raise BadResponse(f"asked for {metric}, answered for {at(entries, '0.name')!r}", source=SOURCE)
    breakdowns = _v.list(at(entries, "0.total_value.breakdowns"), f"{metric}.breakdowns")
    if breakdowns is None:
        return None
    keys = _v.list(at(breakdowns, "0.dimension_keys"), f"{metric}.dimension_keys") or breakdown.split(",")
    if keys != breakdown.split(","):
        raise BadResponse(f"asked for {metric} by {breakdown}, answered by {','.join(map(str, keys))}", source=SOURCE)
    audience: dict[str, Any] = {}
    for result in _v.list(at(breakdowns, "0.results"), f"{metric}.results") or []:
        values = _v.list(at(result, "dimension_values"), f"{metric}.dimension_values") or []
        count = _v.count(at(result, "value"), f"{metric}.value")
        if len(values) != len(keys):
            raise BadResponse(f"{metric} result {values!r} does not match {keys!r}", source=SOURCE)
        named = dict(zip(keys, map(str, values), strict=True))
        if breakdown == "gender,age":
            gender = GENDERS.get(named["gender"].upper(), named["gender"].lower())
            audience.setdefault(gender, {})[named["age"]] = count
        else:
            audience[named[breakdown]] = count
    return audience


def parse_profile_insights(
    identity: dict[str, Any], answers: Mapping[tuple[str, str], dict[str, Any]], *, handle: str
) -> Profile:
    """Audience demographics of ``handle``; ``answers`` maps (metric, breakdown) to each answer that came back."""
    node = _discovered(identity, handle)
    profile_id = _v.id(node.get("ig_id"), "business_discovery.ig_id")
    if profile_id is None:
        raise BadResponse("business_discovery has no ig_id", source=SOURCE)
    dimensions: dict[str, Any] = {}
    for metric, breakdown in itertools.product(AUDIENCE_METRICS, AUDIENCE_BREAKDOWNS):
        answer = answers.get((metric, breakdown))
        key = f"{AUDIENCE_METRICS[metric]}_{AUDIENCE_BREAKDOWNS[breakdown]}"
        dimensions[key] = parse_audience(answer, metric=metric, breakdown=breakdown) if answer is not None else None
    return Profile(
        platform=Platform.INSTAGRAM,
        source=SOURCE,
        profile_id=profile_id,
        handle=_v.text(node.get("username"), "business_discovery.username") or handle,
        dimensions=dimensions,
        kind="profile_insights",
    )


# Tokens


@dataclass(frozen=True, slots=True)
class TokenInfo:
    """What ``debug_token`` says about a user token; None where it did not say."""

    is_valid: bool | None
    scopes: frozenset[str] | None
    data_access_expires_at: datetime | None
    expires_at: datetime | None
    user_id: str | None

    @property
    def missing_scopes(self) -> tuple[str, ...]:
        return tuple(scope for scope in REQUIRED_SCOPES if self.scopes is not None and scope not in self.scopes)

    def is_data_access_expired(self, now: datetime) -> bool:
        return self.data_access_expires_at is not None and self.data_access_expires_at <= now - DATA_ACCESS_GRACE

    def problem(self, now: datetime) -> str | None:
        """Why the token cannot read insights, or None."""
        if self.is_valid is False:
            return "token is not valid"
        if self.missing_scopes:
            return f"token lacks scopes {', '.join(self.missing_scopes)}"
        if self.is_data_access_expired(now):
            return f"data access expired at {self.data_access_expires_at:%Y-%m-%d %H:%M} UTC"
        return None


def _moment(value: Any, field: str) -> datetime | None:
    epoch, moment = _v.timestamp(value, field)
    # Graph writes 0 for "never".
    return moment if epoch else None


def parse_token_info(payload: dict[str, Any]) -> TokenInfo:
    data = _v.require_object(payload).get("data")
    if not isinstance(data, dict):
        raise BadResponse("debug_token answer has no data", source=SOURCE)
    scopes = _v.list(data.get("scopes"), "data.scopes")
    return TokenInfo(
        is_valid=_v.flag(data.get("is_valid"), "data.is_valid"),
        scopes=frozenset(str(scope) for scope in scopes) if scopes is not None else None,
        data_access_expires_at=_moment(data.get("data_access_expires_at"), "data.data_access_expires_at"),
        expires_at=_moment(data.get("expires_at"), "data.expires_at"),
        user_id=_v.id(data.get("user_id"), "data.user_id"),
    )


# Client


def _secrets(credential: Credential) -> tuple[str, str]:
    token, user_id = credential.secrets.get("token"), credential.secrets.get("user_id")
    if not token or not user_id:
        raise AuthExpired(f"credential {credential.id} lacks a token or user_id", source=SOURCE)
    return str(token), str(user_id)


def _username(handle: str) -> str:
    username = handle.strip().lstrip("@")
    if not _HANDLE.fullmatch(username):
        raise ProfileMissing(f"Invalid username {handle!r}", source=SOURCE)
    return username


def _graph_id(object_id: str, missing_text: str) -> str:
    if not _GRAPH_ID.fullmatch(object_id):
        raise PostMissing(f"{missing_text}: {object_id!r} is not a Graph id", source=SOURCE)
    return object_id


def _media_edge(cursor: str | None) -> str:
    return f"media.after({cursor})" if cursor else "media"


T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Insights(Generic[T]):
    """An insights answer, and the metrics Graph refused as not served (the call was made again without them)."""

    data: T
    dropped_metrics: tuple[str, ...] = ()


class GraphApiClient:
    """``app_token`` (configuration) lets a "does not exist" on media insights be told apart from a token
    that lost its scopes or data access; without it that refusal reads as a missing post. ``version`` is the
    Graph API version every call names."""

    def __init__(self, http: ProviderHttp, *, app_token: str | None = None, version: str = DEFAULT_VERSION) -> None:
        if not re.fullmatch(VERSION_PATTERN, version):
            raise ValueError(f"not a Graph API version: {version!r} (expected e.g. {DEFAULT_VERSION})")
        self._http = http
        self._app_token = app_token
        self._version = version

    def _path(self, *steps: str) -> str:
        return "/" + "/".join((self._version, *steps))

    async def profile_by_handle(self, handle: str, *, credential: Credential, request_id: str | None = None) -> Profile:
        fields = f"{PROFILE_FIELDS},media{{{MEDIA_FIELDS}}}"
        return parse_profile(await self._discover(handle, fields, credential, request_id), handle=handle)

    async def check_own_account(self, handle: str, *, credential: Credential, request_id: str | None = None) -> None:
        """Refuse a credential that cannot read ``handle``'s own node: ``AuthExpired`` for a refused token,
        ``Forbidden`` for another account's, ``ProfileMissing`` for a user id that is no account."""
        _username(handle)
        _, user_id = _secrets(credential)
        payload = await self._get(
            self._path(user_id),
            {"fields": OWN_ACCOUNT_FIELDS},
            credential,
            request_id,
            ProfileMissing,
            "Account does not exist",
        )
        _own_account(payload, handle)

    async def posts_by_handle(
        self, handle: str, cursor: str | None = None, *, credential: Credential, request_id: str | None = None
    ) -> Page:
        fields = f"ig_id,username,media_count,{_media_edge(cursor)}{{{MEDIA_FIELDS}}}"
        return parse_media_page(await self._discover(handle, fields, credential, request_id), handle=handle)

    async def stories_and_media(
        self, handle: str, cursor: str | None = None, *, credential: Credential, request_id: str | None = None
    ) -> tuple[list[Post], Page]:
        """Live stories and a page of media of ``handle``, whose own credential this must be: both are read
        on the account's own node. Stories come with the first page only (later pages: [])."""
        _username(handle)  # refused unsent, like a handle business discovery could never answer for
        fields = f"{OWN_ACCOUNT_FIELDS},{_media_edge(cursor)}{{{MEDIA_FIELDS},media_product_type}}"
        if cursor is None:
            fields += f",stories{{{STORY_FIELDS}}}"
        _, user_id = _secrets(credential)
        payload = await self._get(
            self._path(user_id), {"fields": fields}, credential, request_id, ProfileMissing, "Account does not exist"
        )
        return parse_stories_and_media(payload, handle=handle)

    async def post_insights(
        self, post_id: str, post_type: str, shortcode: str, *, credential: Credential, request_id: str | None = None
    ) -> Insights[Post]:
        product_type = POST_PRODUCT_TYPES.get(post_type)
        if product_type is None:
            raise NotSupported(f"Graph has no media insights for post_type {post_type!r}", source=SOURCE)
        # Ids in the v1 API's "<media pk>_<owner pk>" form keep only the media part.
        media_id = _graph_id(post_id.split("_", 1)[0], "Post missing")
        path = self._path(media_id, "insights")
        token, _ = _secrets(credential)
        response, asked, dropped = await self._ask_metrics(
            path, product_type, {"period": "lifetime"}, credential, request_id
        )
        error = parse_error(_decoded(response), redact=(token,))
        if error is not None and error.is_missing_object:
            # Graph says "does not exist" both for a deleted post and for a token that lost its scopes.
            raise await self._missing_media(error, f"GET {path}", token, credential, request_id)
        payload = self._read(response, f"GET {path}", PostMissing, "Post missing", (token,))
        post = parse_post_insights(
            payload, media_id=media_id, shortcode=shortcode, metrics=asked, product_type=product_type
        )
        return Insights(post, dropped)

    async def story_insights(
        self, story_id: str, shortcode: str, *, credential: Credential, request_id: str | None = None
    ) -> Insights[Post]:
        path = self._path(_graph_id(story_id, _STORY_MISSING), "insights")
        navigation = {"metric": "navigation", "breakdown": "story_navigation_action_type", "period": "lifetime"}
        (payload, asked, dropped), actions = await _all_or_first_error(
            [
                self._story_metrics(path, credential, request_id),
                self._get(path, navigation, credential, request_id, PostMissing, _STORY_MISSING),
            ]
        )
        story = parse_story_insights(payload, actions, story_id=story_id, shortcode=shortcode, metrics=asked)
        return Insights(story, dropped)

    async def _story_metrics(
        self, path: str, credential: Credential, request_id: str | None
    ) -> tuple[dict[str, Any], tuple[str, ...], tuple[str, ...]]:
        token, _ = _secrets(credential)
        response, asked, dropped = await self._ask_metrics(path, STORY, {"period": "lifetime"}, credential, request_id)
        return self._read(response, f"GET {path}", PostMissing, _STORY_MISSING, (token,)), asked, dropped

    async def profile_insights(
        self, handle: str, *, credential: Credential, request_id: str | None = None
    ) -> Insights[Profile]:
        """The nine audience answers, asked at once; any of them is enough, the others stay None. A metric
        Graph refuses as not served is reported dropped."""
        _, user_id = _secrets(credential)
        asked = list(itertools.product(AUDIENCE_METRICS, AUDIENCE_BREAKDOWNS))
        # Insights name the account by its Graph id only; business discovery of itself gives its ig_id.
        identity = self._discover(handle, "id,ig_id,username", credential, request_id)
        path = self._path(user_id, "insights")
        audience = [self._audience(path, metric, breakdown, credential, request_id) for metric, breakdown in asked]
        found, *results = await asyncio.gather(identity, *audience, return_exceptions=True)
        for result in (found, *results):
            # A provider refusal of one breakdown is an answer; anything else is a bug or a cancellation.
            if isinstance(result, BaseException) and not isinstance(result, ProviderError):
                raise result
        if isinstance(found, ProviderError):
            raise found
        answers = {key: result for key, result in zip(asked, results, strict=True) if isinstance(result, dict)}
        failures = [result for result in results if isinstance(result, ProviderError)]
        dropped = tuple(
            dict.fromkeys(metric for (metric, _), result in zip(asked, results, strict=True) if result is None)
        )
        if not answers:
            raise (
                failures[0]
                if failures
                else BadResponse(
                    f"Graph serves none of the audience metrics asked ({', '.join(dropped)})", source=SOURCE
                )
            )
        if failures:
            log.info(
                "graphapi: %d of %d audience answers failed for %s (%s)",
                len(failures),
                len(asked),
                handle,
                ", ".join(sorted({type(failure).__name__ for failure in failures})),
            )
        return Insights(parse_profile_insights(found, answers, handle=handle), dropped)

    async def _audience(
        self, path: str, metric: str, breakdown: str, credential: Credential, request_id: str | None
    ) -> dict[str, Any] | None:
        """One demographics answer, or None when Graph refuses ``metric`` as not served."""
        token, _ = _secrets(credential)
        response = await self._send(
            path, {"metric": metric, "breakdown": breakdown, **AUDIENCE_PARAMS}, credential, request_id
        )
        error = parse_error(_decoded(response), redact=(token,))
        if error is not None and unsupported_metrics(error, (metric,)):
            _report_drop(metric, "account", error)
            return None
        return self._read(response, f"GET {path}", ProfileMissing, "Account does not exist", (token,))

    async def debug_token(
        self, token: str, app_token: str, *, credential: Credential | None = None, request_id: str | None = None
    ) -> TokenInfo:
        """What Graph knows of ``token``, asked with the app's token; ``credential`` only names the call."""
        path = self._path("debug_token")
        response = await self._http.request(
            SOURCE,
            "GET",
            path,
            credential=credential,
            params={"input_token": token, "access_token": app_token},
            request_id=request_id,
            secrets_as_headers=False,
        )
        return parse_token_info(self._read(response, f"GET {path}", BadResponse, "Token unknown", (token, app_token)))

    async def _ask_metrics(
        self, path: str, product_type: str, params: dict[str, str], credential: Credential, request_id: str | None
    ) -> tuple[httpx.Response, tuple[str, ...], tuple[str, ...]]:
        """Ask ``path`` for the metrics ``product_type`` is served; when Graph refuses some of them as not
        served, once more without them. The answer, the metrics it answers for, and those dropped."""
        token, _ = _secrets(credential)
        metrics = MEDIA_INSIGHT_METRICS[product_type]
        response = await self._send(path, {"metric": ",".join(metrics), **params}, credential, request_id)
        error = parse_error(_decoded(response), redact=(token,))
        dropped = unsupported_metrics(error, metrics)
        if error is None or not dropped or len(dropped) == len(metrics):
            return response, metrics, ()
        for metric in dropped:
            _report_drop(metric, product_type, error)
        kept = tuple(metric for metric in metrics if metric not in dropped)
        response = await self._send(path, {"metric": ",".join(kept), **params}, credential, request_id)
        return response, kept, dropped

    async def _missing_media(
        self, error: GraphError, what: str, token: str, credential: Credential, request_id: str | None
    ) -> ProviderError:
        detail = f"{what}: {error.describe()}"
        if self._app_token is None:
            return PostMissing(f"Post missing ({detail}; token not checked: no app token)", source=SOURCE)
        try:
            info = await self.debug_token(token, self._app_token, credential=credential, request_id=request_id)
        except AuthExpired as exc:
            # The refusal is about the app's token, not this credential's: keep the credential in rotation.
            return Forbidden(f"debug_token refused the app token ({exc.message})", source=SOURCE)
        problem = info.problem(utcnow())
        if problem is not None:
            return AuthExpired(f"{problem} ({detail})", source=SOURCE)
        return PostMissing(f"Post missing ({detail})", source=SOURCE)

    async def _discover(
        self, handle: str, fields: str, credential: Credential, request_id: str | None
    ) -> dict[str, Any]:
        _, user_id = _secrets(credential)
        expression = f"business_discovery.username({_username(handle)}){{{fields}}}"
        return await self._get(
            self._path(user_id),
            {"fields": expression},
            credential,
            request_id,
            ProfileMissing,
            "Account does not exist",
        )

    async def _get(
        self,
        path: str,
        params: dict[str, str],
        credential: Credential,
        request_id: str | None,
        missing: type[ProviderError],
        missing_text: str,
    ) -> dict[str, Any]:
        token, _ = _secrets(credential)
        response = await self._send(path, params, credential, request_id)
        return self._read(response, f"GET {path}", missing, missing_text, (token,))

    async def _send(
        self, path: str, params: dict[str, str], credential: Credential, request_id: str | None
    ) -> httpx.Response:
        token, _ = _secrets(credential)
        return await self._http.request(
            SOURCE,
            "GET",
            path,
            credential=credential,
            params={**params, "access_token": token},
            request_id=request_id,
            secrets_as_headers=False,
        )

    @staticmethod
    def _read(
        response: httpx.Response, what: str, missing: type[ProviderError], missing_text: str, redact: tuple[str, ...]
    ) -> dict[str, Any]:
        error = parse_error(_decoded(response), redact=redact)
        if error is not None:
            raise error_for(
                error,
                what=what,
                missing=missing,
                missing_text=missing_text,
                retry_after=retry_after_from_usage(response.headers),
            )
        if response.status_code != 200:
            # Not Graph's own refusal (a proxy's page, say): its body may echo the URL, token and all.
            response = httpx.Response(response.status_code, text=_redacted(response.text, redact))
        return json_object(response, SOURCE, missing, what)


def _decoded(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


async def _all_or_first_error(calls: list[Any]) -> list[Any]:
    """Run ``calls`` at once; their answers in order, or the first error in call order once all are done."""
    results = await asyncio.gather(*calls, return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException):
            raise result
    return results
