"""YouTube Data API v3: pure parsers of its answers, the classification of its refusals, and the client.

A ``ytapitoken`` (or ``ytapi``) credential is ``{"key": ...}``; the key travels as the ``key`` query
parameter, so nothing built from a call may carry the URL: messages name the method and path only,
and any text taken from an answer is scrubbed of the key.

Answers are ``{"kind", "etag", "pageInfo", "items": [...], "nextPageToken"?}``; counts in
``statistics`` are numeric strings, an absent count (hidden subscribers, likes or comments
turned off) stays None. A list by ids leaves unknown ids out of ``items`` (channels may omit
``items`` altogether). Refusals are ``{"error": {"code", "message", "errors": [{"message",
"domain", "reason"}]}}``; the first reason decides the error class (``error_for``).

Events are labelled ``ytapi`` whichever label the call went out under (legacy §4.3); youtube-v31
(``providers.youtube.ytv31``) and youtube-v311 (``providers.youtube.youtube_v311``) answer in the same shapes and
reuse these parsers with their own labels. Field paths follow legacy-beat.md §3.3, keys §4.2.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Any

import httpx

from providers.budgets import QUOTA_RESET_ZONE
from providers.drift import observe
from providers.errors import (
    AuthExpired,
    BadResponse,
    DefinitiveProviderError,
    Forbidden,
    InputRejected,
    PostMissing,
    ProfileMissing,
    ProviderError,
    QuotaExceeded,
)
from providers.http import Credential, ProviderHttp
from providers.paging import Page
from providers.parsing import Values, at
from providers.youtube.youtube_web import post_type_by_length
from topics.limits import INT64_MAX
from topics.models import Activity, Platform, Post, Profile, YtActivity, YtRelationship, utcnow

EVENT_SOURCE = "ytapi"
API = "/youtube/v3"
MAX_IDS = 50
PAGE_SIZE = 50
REGION = "IN"

# The project's daily units are spent until Google resets them at midnight Pacific Time; the rate
# reasons pass within seconds, so those credentials rest for the configured cooldown only.
DAILY_QUOTA_REASONS = frozenset({"quotaExceeded", "dailyLimitExceeded"})
QUOTA_REASONS = DAILY_QUOTA_REASONS | {"rateLimitExceeded", "userRateLimitExceeded"}
AUTH_REASONS = frozenset(
    {
        "forbidden",
        "insufficientPermissions",
        "keyInvalid",
        "keyExpired",
        "accessNotConfigured",
        "authError",
        "ipRefererBlocked",
    }
)
# A closed or suspended account is as gone as a missing one.
GONE_REASONS = frozenset({"accountClosed", "accountSuspended", "channelClosed", "channelSuspended"})
# Google's newer error details name an invalid key here, while errors[0].reason says only "badRequest".
INVALID_KEY_DETAIL = "API_KEY_INVALID"


class SubscriptionForbidden(DefinitiveProviderError):
    """The channel keeps its subscriptions private (403 subscriptionForbidden)."""


class CommentsDisabled(DefinitiveProviderError):
    """The video's owner turned comments off (403 commentsDisabled)."""


# Refusals


@dataclass(frozen=True, slots=True)
class ApiError:
    status: int
    reason: str | None
    message: str
    details: tuple[str, ...] = ()


_TAGS = re.compile(r"<[^>]+>")


def parse_error(status: int, body: str, *, redact: Sequence[str] = ()) -> ApiError:
    """The refusal in a non-200 answer: Google's ``error`` object, or the body's own ``message`` (RapidAPI)."""
    try:
        payload = json.loads(body)
    except ValueError:
        payload = None
    error = payload.get("error") if isinstance(payload, dict) else None
    reason = None
    details: tuple[str, ...] = ()
    if isinstance(error, dict):
        message = error.get("message")
        reason = at(error, "errors.0.reason")
        details = tuple(
            item["reason"]
            for item in error.get("details") or ()
            if isinstance(item, dict) and isinstance(item.get("reason"), str)
        )
    else:
        message = payload.get("message") if isinstance(payload, dict) else None
    if not isinstance(message, str):
        message = body[:200] if payload is None else "no message"
    # Google writes links into messages ("exceeded your <a href=...>quota</a>").
    text = _TAGS.sub("", message).strip()
    for secret in redact:
        if secret:
            text = text.replace(secret, "***")
    return ApiError(status, reason if isinstance(reason, str) else None, text, details)


def seconds_to_quota_reset(now: datetime) -> float:
    """Seconds from ``now`` (aware) to the next midnight Pacific Time, when the Data API's daily quota resets."""
    local = now.astimezone(QUOTA_RESET_ZONE)
    midnight = datetime.combine(local.date() + timedelta(days=1), time.min, tzinfo=QUOTA_RESET_ZONE)
    return (midnight - local).total_seconds()


def error_for(
    error: ApiError, *, source: str, what: str, missing: type[ProviderError], now: datetime | None = None
) -> ProviderError:
    """The typed error of a refusal to ``what`` ("GET /path", never a URL); ``missing`` names an absent entity."""
    reason = error.reason
    detail = f"{what} answered {error.status}" + (f" {reason}" if reason else "") + f": {error.message}"
    if reason in QUOTA_REASONS:
        # The answer carries no reset time: a spent daily quota rests the key until Google's reset,
        # a rate reason for the configured cooldown.
        retry_after = seconds_to_quota_reset(now or utcnow()) if reason in DAILY_QUOTA_REASONS else None
        return QuotaExceeded(detail, source=source, retry_after=retry_after)
    if reason == "subscriptionForbidden":
        return SubscriptionForbidden(detail, source=source)
    if reason == "commentsDisabled":
        return CommentsDisabled(detail, source=source)
    # A 403 without Google's error object is a gateway (RapidAPI) refusing the key itself.
    if (
        reason in AUTH_REASONS
        or INVALID_KEY_DETAIL in error.details
        or error.status == 401
        or (error.status == 403 and reason is None)
    ):
        return AuthExpired(detail, source=source)
    if error.status == 404 or reason in GONE_REASONS:
        return missing(detail, source=source)
    if error.status == 403:
        return Forbidden(detail, source=source)
    return InputRejected(detail, source=source)


def answer_object(
    response: httpx.Response, *, source: str, what: str, missing: type[ProviderError], redact: Sequence[str] = ()
) -> dict[str, Any]:
    """The JSON object of a 200 answer; the typed error of any other (``ProviderHttp`` raised for 429 and 5xx)."""
    if response.status_code != 200:
        raise error_for(
            parse_error(response.status_code, response.text, redact=redact), source=source, what=what, missing=missing
        )
    try:
        payload = Values(source).require_object(response.json())
    except ValueError as exc:
        raise BadResponse(f"{what} answered with a body that is not JSON", source=source) from exc
    observe(source, payload)
    return payload


# Shared readers

_DURATION = re.compile(r"P(?:(\d+)W)?(?:(\d+)D)?(?:T(?=\d)(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?)?")


def iso8601_seconds(duration: str | None) -> int | None:
    """Seconds of an ISO-8601 duration as the Data API writes it (PT1H2M3S, PT45S, P1DT2H, P0D);
    None when it is not one, or is too long for any clock to count."""
    if not duration or duration in ("P", "PT"):
        return None
    match = _DURATION.fullmatch(duration.strip())
    if match is None:
        return None
    weeks, days, hours, minutes, seconds = (float(part) if part else 0.0 for part in match.groups())
    total = ((weeks * 7 + days) * 24 + hours) * 3600 + minutes * 60 + seconds
    # A few hundred digits make the float infinite, and int() of that raises instead of answering.
    if not math.isfinite(total) or total > INT64_MAX:
        return None
    return int(total)


def published(values: Values, value: Any, field: str) -> tuple[int | None, datetime | None]:
    """An RFC 3339 instant (``2024-05-01T10:15:00Z``, fractions allowed) as an epoch and an aware UTC datetime."""
    text = values.text(value, field)
    if not text:
        return None, None
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError as exc:
        raise BadResponse(f"{field} is not a timestamp: {text!r}", source=values.source) from exc
    return values.utc(moment, field)


def _json(value: Any) -> str | None:
    return json.dumps(value) if value is not None else None


def _object(values: Values, value: Any, field: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise BadResponse(f"{field} is not an object: {value!r}", source=values.source)
    return value


def _pictures(values: Values, snippet: dict[str, Any], field: str) -> dict[str, Any]:
    """``thumbnails`` (the whole object, as JSON text) and ``thumbnail`` (its default size)."""
    thumbnails = _object(values, snippet.get("thumbnails"), f"{field}.thumbnails") or None
    return {
        "thumbnails": _json(thumbnails),
        "thumbnail": values.text(at(thumbnails, "default.url"), f"{field}.thumbnails.default.url"),
    }


def _video_snippet(values: Values, snippet: dict[str, Any], epoch: int | None) -> dict[str, Any]:
    """The dimensions a video's ``snippet`` gives alike in ``videos.list`` and ``search.list`` answers."""
    return {
        "title": values.text(snippet.get("title"), "snippet.title"),
        "channel_title": values.text(snippet.get("channelTitle"), "snippet.channelTitle"),
        "description": values.text(snippet.get("description"), "snippet.description"),
        "taken_at_timestamp": epoch,
        **_pictures(values, snippet, "snippet"),
    }


def _items(values: Values, payload: Any) -> list[dict[str, Any]]:
    payload = values.require_object(payload)
    items = values.list(payload.get("items"), "items") or []
    for item in items:
        if not isinstance(item, dict):
            raise BadResponse(f"an item is not an object: {item!r}", source=values.source)
    return items


def _next_page(values: Values, payload: dict[str, Any]) -> str | None:
    return values.text(payload.get("nextPageToken"), "nextPageToken") or None


def _required_id(values: Values, value: Any, field: str) -> str:
    found = values.id(value, field)
    if found is None:
        raise BadResponse(f"an item has no {field}", source=values.source)
    return found


# Parsers


def parse_channel(item: dict[str, Any], *, source: str = EVENT_SOURCE) -> Profile:
    """One ``youtube#channel`` (parts snippet, statistics, contentDetails)."""
    v = Values(source)
    channel_id = _required_id(v, item.get("id"), "id")
    snippet = _object(v, item.get("snippet"), "snippet")
    statistics = _object(v, item.get("statistics"), "statistics")
    hidden = v.flag(statistics.get("hiddenSubscriberCount"), "statistics.hiddenSubscriberCount")
    custom_url = v.text(snippet.get("customUrl"), "snippet.customUrl") or None
    epoch, _ = published(v, snippet.get("publishedAt"), "snippet.publishedAt")
    return Profile(
        platform=Platform.YOUTUBE,
        source=source,
        profile_id=channel_id,
        handle=custom_url,
        metrics={
            "video_count": v.count(statistics.get("videoCount"), "statistics.videoCount"),
            # A channel that hides its subscriber count has no subscriberCount at all.
            "subscriber_count": v.count(statistics.get("subscriberCount"), "statistics.subscriberCount"),
            "hidden_subscriber_count": None if hidden is None else int(hidden),
            "view_count": v.count(statistics.get("viewCount"), "statistics.viewCount"),
        },
        dimensions={
            "title": v.text(snippet.get("title"), "snippet.title"),
            "description": v.text(snippet.get("description"), "snippet.description"),
            "custom_url": custom_url,
            "taken_at_timestamp": epoch,
            **_pictures(v, snippet, "snippet"),
            "country": v.text(snippet.get("country"), "snippet.country"),
            "uploads_playlist_id": v.text(
                at(item, "contentDetails.relatedPlaylists.uploads"), "contentDetails.relatedPlaylists.uploads"
            ),
        },
    )


def parse_channels(payload: dict[str, Any], *, source: str = EVENT_SOURCE) -> list[Profile]:
    """A ``channels.list`` answer: the channels found (unknown ids are simply absent)."""
    return [parse_channel(item, source=source) for item in _items(Values(source), payload)]


def parse_handle_channel(payload: dict[str, Any], *, source: str = EVENT_SOURCE) -> str | None:
    """The channel id a ``channels?forHandle=`` answer names; None when it has no items (no such handle)."""
    values = Values(source)
    items = _items(values, payload)
    return _required_id(values, items[0].get("id"), "id") if items else None


def parse_video(item: dict[str, Any], *, source: str = EVENT_SOURCE) -> Post:
    """One ``youtube#video`` (parts snippet, statistics, contentDetails)."""
    v = Values(source)
    video_id = _required_id(v, item.get("id"), "id")
    snippet = _object(v, item.get("snippet"), "snippet")
    statistics = _object(v, item.get("statistics"), "statistics")
    details = _object(v, item.get("contentDetails"), "contentDetails")
    duration = v.text(details.get("duration"), "contentDetails.duration")
    seconds = iso8601_seconds(duration)
    if duration and seconds is None:
        raise BadResponse(f"contentDetails.duration is not an ISO-8601 duration: {duration!r}", source=source)
    tags = v.list(snippet.get("tags"), "snippet.tags")
    epoch, moment = published(v, snippet.get("publishedAt"), "snippet.publishedAt")
    dimensions: dict[str, Any] = {
        **_video_snippet(v, snippet, epoch),
        "duration": duration,
        "tags": _json(tags),
        "category_id": v.id(snippet.get("categoryId"), "snippet.categoryId"),
        "audio_language": v.text(snippet.get("defaultAudioLanguage"), "snippet.defaultAudioLanguage"),
        "is_licensed": v.flag(details.get("licensedContent"), "contentDetails.licensedContent"),
        "content_rating": _json(
            _object(v, details.get("contentRating"), "contentDetails.contentRating")
            if "contentRating" in details
            else None
        ),
        "definition": v.text(details.get("definition"), "contentDetails.definition"),
    }
    # Only a video too long to be a Short is typed here; the shorts probe types the rest.
    if (post_type := post_type_by_length(seconds)) is not None:
        dimensions["post_type"] = post_type
    return Post(
        platform=Platform.YOUTUBE,
        source=source,
        shortcode=video_id,
        profile_id=v.id(snippet.get("channelId"), "snippet.channelId"),
        handle=None,
        publish_time=moment,
        metrics={
            "comments": v.count(statistics.get("commentCount"), "statistics.commentCount"),
            "favourite_count": v.count(statistics.get("favoriteCount"), "statistics.favoriteCount"),
            # A video whose owner hides likes has no likeCount.
            "likes": v.count(statistics.get("likeCount"), "statistics.likeCount"),
            "view_count": v.count(statistics.get("viewCount"), "statistics.viewCount"),
        },
        dimensions=dimensions,
    )


def parse_videos(payload: dict[str, Any], *, source: str = EVENT_SOURCE) -> list[Post]:
    """A ``videos.list`` answer: the videos found (unknown ids are simply absent)."""
    return [parse_video(item, source=source) for item in _items(Values(source), payload)]


def parse_playlist_items_page(payload: dict[str, Any], *, source: str = EVENT_SOURCE) -> Page:
    """A ``playlistItems.list`` answer: the video ids, in playlist order."""
    v = Values(source)
    items = _items(v, payload)
    ids = [
        _required_id(
            v, at(item, "contentDetails.videoId") or at(item, "snippet.resourceId.videoId"), "contentDetails.videoId"
        )
        for item in items
    ]
    return Page(items=ids, next_cursor=_next_page(v, payload))


def _search_videos(v: Values, items: list[dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    # A search that is not limited to videos also finds channels and playlists: those have no videoId.
    found = []
    for item in items:
        video_id = v.id(at(item, "id.videoId"), "id.videoId")
        if video_id is not None:
            found.append((video_id, item))
    return found


def parse_search_ids_page(payload: dict[str, Any], *, source: str = EVENT_SOURCE) -> Page:
    """A ``search.list`` answer (part id or snippet): the ids of the videos found."""
    v = Values(source)
    return Page(
        items=[video_id for video_id, _ in _search_videos(v, _items(v, payload))], next_cursor=_next_page(v, payload)
    )


def parse_search_snippet(video_id: str, item: dict[str, Any], *, source: str = EVENT_SOURCE) -> Post:
    """One search result with its snippet: what a search knows about a video, without metrics."""
    v = Values(source)
    snippet = _object(v, item.get("snippet"), "snippet")
    epoch, moment = published(v, snippet.get("publishedAt"), "snippet.publishedAt")
    return Post(
        platform=Platform.YOUTUBE,
        source=source,
        shortcode=video_id,
        profile_id=v.id(snippet.get("channelId"), "snippet.channelId"),
        handle=None,
        publish_time=moment,
        dimensions=_video_snippet(v, snippet, epoch),
    )


def parse_search_snippet_page(payload: dict[str, Any], *, source: str = EVENT_SOURCE) -> Page:
    """A ``search.list`` answer with part snippet: one Post per video found."""
    v = Values(source)
    return Page(
        items=[
            parse_search_snippet(video_id, item, source=source)
            for video_id, item in _search_videos(v, _items(v, payload))
        ],
        next_cursor=_next_page(v, payload),
    )


def parse_comment_threads_page(payload: dict[str, Any], *, source: str = EVENT_SOURCE) -> Page:
    """A ``commentThreads.list`` answer: each thread's top-level comment as a COMMENT by its author's channel.

    The API gives ``authorChannelId`` only "if any": a comment whose author has no channel (a deleted or
    channel-less account) is kept with no actor, so its text still reaches the store and sentiment.
    """
    v = Values(source)
    comments = []
    for item in _items(v, payload):
        snippet = _object(v, item.get("snippet"), "snippet")
        top = _object(v, at(snippet, "topLevelComment"), "snippet.topLevelComment")
        said = _object(v, top.get("snippet"), "topLevelComment.snippet")
        actor = v.id(at(said, "authorChannelId.value"), "topLevelComment.snippet.authorChannelId.value")
        video_id = v.id(snippet.get("videoId") or said.get("videoId"), "snippet.videoId")
        if video_id is None:
            raise BadResponse("a comment thread has no videoId", source=source)
        epoch, moment = published(v, said.get("publishedAt"), "topLevelComment.snippet.publishedAt")
        comments.append(
            Activity(
                platform=Platform.YOUTUBE,
                source=source,
                activity_type="COMMENT",
                shortcode=video_id,
                actor_profile_id=actor,
                publish_time=moment,
                metrics={"likes": v.count(said.get("likeCount"), "topLevelComment.snippet.likeCount")},
                dimensions={
                    "comment_id": _required_id(v, top.get("id") or item.get("id"), "topLevelComment.id"),
                    "text": v.text(said.get("textDisplay"), "topLevelComment.snippet.textDisplay"),
                    "channel_title": v.text(said.get("authorDisplayName"), "topLevelComment.snippet.authorDisplayName"),
                    "thumbnail": v.text(
                        said.get("authorProfileImageUrl"), "topLevelComment.snippet.authorProfileImageUrl"
                    ),
                    "taken_at_timestamp": epoch,
                },
            )
        )
    return Page(items=comments, next_cursor=_next_page(v, payload))


def parse_activity(item: dict[str, Any], *, source: str = EVENT_SOURCE) -> YtActivity:
    """One ``youtube#activity``: the content details of its type fill the legacy activity keys."""
    v = Values(source)
    snippet = _object(v, item.get("snippet"), "snippet")
    details = _object(v, item.get("contentDetails"), "contentDetails")
    kind = v.text(snippet.get("type"), "snippet.type")
    actor = v.id(snippet.get("channelId"), "snippet.channelId")
    if not kind or actor is None:
        raise BadResponse("an activity has no snippet.type or snippet.channelId", source=source)
    # publishedAt stays the API's ISO text, as the legacy events carried it.
    dimensions: dict[str, Any] = {"published_at": v.text(snippet.get("publishedAt"), "snippet.publishedAt")}
    if kind == "subscription":
        pictures = _pictures(v, snippet, "snippet")
        dimensions |= {
            "subscribed_channel_id": v.id(
                at(details, "subscription.resourceId.channelId"), "contentDetails.subscription.resourceId.channelId"
            ),
            "subscribed_channel_title": v.text(snippet.get("title"), "snippet.title"),
            "subscribed_description": v.text(snippet.get("description"), "snippet.description"),
            "subscribed_thumbnails": pictures["thumbnails"],
            "subscribed_thumbnail": pictures["thumbnail"],
        }
    elif kind == "playlistItem":
        dimensions |= {
            "shortcode": v.id(
                at(details, "playlistItem.resourceId.videoId"), "contentDetails.playlistItem.resourceId.videoId"
            ),
            "playlist_id": v.text(at(details, "playlistItem.playlistId"), "contentDetails.playlistItem.playlistId"),
        }
    elif kind == "upload":
        dimensions["shortcode"] = v.id(at(details, "upload.videoId"), "contentDetails.upload.videoId")
    return YtActivity(
        platform=Platform.YOUTUBE,
        source=source,
        activity_id=_required_id(v, item.get("id"), "id"),
        activity_type=kind,
        actor_channel_id=actor,
        dimensions=dimensions,
    )


def parse_activities_page(payload: dict[str, Any], *, source: str = EVENT_SOURCE) -> Page:
    """An ``activities.list`` answer, newest first."""
    v = Values(source)
    return Page(
        items=[parse_activity(item, source=source) for item in _items(v, payload)], next_cursor=_next_page(v, payload)
    )


def _side(v: Values, snippet: dict[str, Any], field: str) -> dict[str, Any]:
    return {
        "title": v.text(snippet.get("title"), f"{field}.title"),
        "description": v.text(snippet.get("description"), f"{field}.description"),
        **_pictures(v, snippet, field),
    }


def parse_subscription(item: dict[str, Any], *, source: str = EVENT_SOURCE) -> YtRelationship:
    """One ``youtube#subscription``: the subscriber (subscriberSnippet) subscribes to ``snippet.resourceId``."""
    v = Values(source)
    snippet = _object(v, item.get("snippet"), "snippet")
    subscriber = _object(v, item.get("subscriberSnippet"), "subscriberSnippet")
    _, subscribed_on = published(v, snippet.get("publishedAt"), "snippet.publishedAt")
    return YtRelationship(
        platform=Platform.YOUTUBE,
        source=source,
        relationship_id=_required_id(v, item.get("id"), "id"),
        # snippet.channelId is the subscriber's channel too, when subscriberSnippet was not asked for.
        source_channel_id=v.id(subscriber.get("channelId") or snippet.get("channelId"), "subscriberSnippet.channelId"),
        target_channel_id=_required_id(v, at(snippet, "resourceId.channelId"), "snippet.resourceId.channelId"),
        subscribed_on=subscribed_on,
        source_dimensions=_side(v, subscriber, "subscriberSnippet"),
        target_dimensions=_side(v, snippet, "snippet"),
    )


def parse_subscriptions_page(payload: dict[str, Any], *, source: str = EVENT_SOURCE) -> Page:
    """A ``subscriptions.list`` answer. A channel that subscribes to nothing is an empty last page
    (``totalResults`` 0), not an error: the legacy NoSubscriptionsFoundError is left behind."""
    v = Values(source)
    return Page(
        items=[parse_subscription(item, source=source) for item in _items(v, payload)],
        next_cursor=_next_page(v, payload),
    )


# The client


def rfc3339(moment: datetime) -> str:
    if moment.tzinfo is None:
        raise ValueError("search windows must be aware datetimes")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def check_batch(ids: Sequence[str]) -> str:
    if not 0 < len(ids) <= MAX_IDS:
        raise ValueError(f"the Data API takes 1 to {MAX_IDS} ids per call, not {len(ids)}")
    return ",".join(ids)


def channel_search_window(start_date: str | None, end_date: str | None) -> dict[str, str]:
    """The ``publishedAfter``/``publishedBefore`` of a channel's uploads between two YYYY-MM-DD days, inclusive."""
    window = {}
    if start_date:
        window["publishedAfter"] = f"{start_date}T00:00:00Z"
    if end_date:
        window["publishedBefore"] = f"{end_date}T23:59:59Z"
    return window


class YouTubeDataClient:
    """The Data API under ``source`` (``ytapitoken`` or ``ytapi``): every operation of the YouTube
    interface but insights."""

    def __init__(self, http: ProviderHttp, source: str = "ytapitoken") -> None:
        self._http = http
        self._source = source

    async def channels(self, ids: list[str], *, credential: Credential, request_id: str | None = None) -> list[Profile]:
        answer = await self._get(
            "channels",
            {"part": "snippet,statistics,contentDetails", "id": check_batch(ids), "maxResults": str(MAX_IDS)},
            credential,
            request_id,
            ProfileMissing,
        )
        return parse_channels(answer)

    async def channel_id_for_handle(self, handle: str, *, credential: Credential) -> str | None:
        """The id of the channel whose handle this is (``forHandle``, one quota unit); None when none has it."""
        answer = await self._get("channels", {"part": "id", "forHandle": handle}, credential, None, ProfileMissing)
        return parse_handle_channel(answer, source=self._source)

    async def videos(self, ids: list[str], *, credential: Credential, request_id: str | None = None) -> list[Post]:
        answer = await self._get(
            "videos",
            {"part": "snippet,statistics,contentDetails", "id": check_batch(ids), "maxResults": str(MAX_IDS)},
            credential,
            request_id,
            PostMissing,
        )
        return parse_videos(answer)

    async def playlist_items(
        self, playlist_id: str, cursor: str | None = None, *, credential: Credential, request_id: str | None = None
    ) -> Page:
        params = {"part": "id,contentDetails", "playlistId": playlist_id, "maxResults": str(PAGE_SIZE)}
        answer = await self._get("playlistItems", _paged(params, cursor), credential, request_id, ProfileMissing)
        return parse_playlist_items_page(answer)

    async def channel_video_ids(
        self,
        channel_id: str,
        start_date: str | None = None,
        end_date: str | None = None,
        cursor: str | None = None,
        *,
        credential: Credential,
        request_id: str | None = None,
    ) -> Page:
        params = {
            "part": "id",
            "channelId": channel_id,
            "order": "date",
            "maxResults": str(PAGE_SIZE),
            **channel_search_window(start_date, end_date),
        }
        answer = await self._get("search", _paged(params, cursor), credential, request_id, ProfileMissing)
        return parse_search_ids_page(answer)

    async def genre_search(
        self,
        category: str,
        language: str | None,
        published_after: datetime,
        cursor: str | None = None,
        *,
        credential: Credential,
        request_id: str | None = None,
    ) -> Page:
        params = {
            "part": "snippet",
            "q": category,
            "type": "video",
            "regionCode": REGION,
            "order": "viewCount",
            "maxResults": str(PAGE_SIZE),
            "publishedAfter": rfc3339(published_after),
        }
        if language:
            params["relevanceLanguage"] = language
        answer = await self._get("search", _paged(params, cursor), credential, request_id, PostMissing)
        return parse_search_ids_page(answer)

    async def keyword_search(
        self,
        keyword: str,
        published_after: datetime,
        published_before: datetime,
        cursor: str | None = None,
        *,
        credential: Credential,
        request_id: str | None = None,
    ) -> Page:
        answer = await self._get(
            "search",
            keyword_search_params(keyword, published_after, published_before, cursor),
            credential,
            request_id,
            PostMissing,
            retry_empty=True,
        )
        return parse_search_snippet_page(answer)

    async def comments(
        self, video_id: str, cursor: str | None = None, *, credential: Credential, request_id: str | None = None
    ) -> Page:
        answer = await self._get(
            "commentThreads", comment_params(video_id, cursor, "id,snippet"), credential, request_id, PostMissing
        )
        return parse_comment_threads_page(answer)

    async def activities(
        self, channel_id: str, cursor: str | None = None, *, credential: Credential, request_id: str | None = None
    ) -> Page:
        params = {"part": "id,snippet,contentDetails", "channelId": channel_id, "maxResults": str(PAGE_SIZE)}
        answer = await self._get("activities", _paged(params, cursor), credential, request_id, ProfileMissing)
        return parse_activities_page(answer)

    async def subscriptions(
        self, channel_id: str, cursor: str | None = None, *, credential: Credential, request_id: str | None = None
    ) -> Page:
        params = {
            "part": "id,snippet,subscriberSnippet,contentDetails",
            "channelId": channel_id,
            "order": "unread",
            "maxResults": str(PAGE_SIZE),
        }
        answer = await self._get("subscriptions", _paged(params, cursor), credential, request_id, ProfileMissing)
        return parse_subscriptions_page(answer)

    async def _get(
        self,
        resource: str,
        params: dict[str, str],
        credential: Credential,
        request_id: str | None,
        missing: type[ProviderError],
        *,
        retry_empty: bool = False,
    ) -> dict[str, Any]:
        key = credential.secrets.get("key")
        if not isinstance(key, str) or not key:
            raise AuthExpired(f"credential {credential.id} has no key", source=self._source)
        path = f"{API}/{resource}"
        return await get_answer(
            self._http,
            self._source,
            path,
            params | {"key": key},
            credential=credential,
            request_id=request_id,
            missing=missing,
            redact=(key,),
            retry_empty=retry_empty,
            secrets_as_headers=False,
        )


def _paged(params: dict[str, str], cursor: str | None) -> dict[str, str]:
    return params | {"pageToken": cursor} if cursor else params


def keyword_search_params(
    keyword: str, published_after: datetime, published_before: datetime, cursor: str | None
) -> dict[str, str]:
    return _paged(
        {
            "part": "snippet",
            "q": keyword,
            "type": "video",
            "regionCode": REGION,
            "order": "viewCount",
            "publishedAfter": rfc3339(published_after),
            "publishedBefore": rfc3339(published_before),
            "maxResults": str(PAGE_SIZE),
        },
        cursor,
    )


def comment_params(video_id: str, cursor: str | None, part: str) -> dict[str, str]:
    return _paged(
        {"part": part, "videoId": video_id, "maxResults": str(PAGE_SIZE), "order": "time", "textFormat": "html"}, cursor
    )


async def get_answer(
    http: ProviderHttp,
    source: str,
    path: str,
    params: dict[str, str],
    *,
    credential: Credential,
    request_id: str | None,
    missing: type[ProviderError],
    redact: Sequence[str] = (),
    retry_empty: bool = False,
    secrets_as_headers: bool = True,
) -> dict[str, Any]:
    """GET ``path`` and return its answer object; with ``retry_empty``, an empty 200 body is asked for once more
    (the legacy keyword search did so) before it counts as a bad answer."""
    what = f"GET {path}"
    for _ in range(2 if retry_empty else 1):
        response = await http.request(
            source,
            "GET",
            path,
            credential=credential,
            params=params,
            request_id=request_id,
            secrets_as_headers=secrets_as_headers,
        )
        if response.status_code != 200 or response.text.strip():
            return answer_object(response, source=source, what=what, missing=missing, redact=redact)
    raise BadResponse(f"{what} answered 200 with an empty body" + (" twice" if retry_empty else ""), source=source)
