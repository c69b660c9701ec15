"""YouTube flows (legacy §2.2). Each is a plain async function: (context, params) -> result summary.

Ids are refreshed in batches of ``BATCH`` per Data API call. Waits between pages and the
legacy sleeps of the keyword search are module constants scaled by ``BEAT_FLOW_WAIT_SCALE``;
caps and windows are the legacy ones. Later pages of a listing stick to the first page's
source, because page tokens are not portable between providers.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, TypeVar, TypeVarTuple

from agents.flows.context import FlowContext
from agents.flows.keywords import keywords
from agents.flows.pages import emit_pages
from providers import operations as ops
from providers.crawler import AllSourcesFailed
from providers.errors import NoCredential, ProfileMissing, ProviderError, RetriableProviderError
from providers.paging import Page
from providers.youtube import youtube_web
from providers.youtube.youtube_data import iso8601_seconds
from topics.models import Platform, Post, Profile, utcnow
from topics.params import (
    ChannelIdParams,
    PostCommentsParams,
    YtActivitiesParams,
    YtChannelPostsParams,
    YtGenreParams,
    YtPlaylistParams,
    YtPostsParams,
    YtPostTypeParams,
    YtProfilesParams,
    YtRelationshipParams,
    YtSearchParams,
)

BATCH = 40
GENRE_BATCH = 50
DEFAULT_MAX_POSTS = 50
GENRE_MAX_POSTS = 100
GENRE_LOOKBACK_DAYS = 90
DEFAULT_MAX_COMMENTS = 1000
SEARCH_MAX_PAGES_PER_WINDOW = 10
CATEGORIZE_MAX_POSTS = 1000
CATEGORIZE_CHUNK = 100
PAGE_WAIT = 1.0
# The legacy keyword search slept so that the post and profile refreshes could land first.
AFTER_POSTS_WAIT = 15.0
AFTER_PROFILES_WAIT = 10.0
AFTER_CATEGORIZE_WAIT = 10.0
CATEGORIZATION_SOURCE = "categorization"
# Shorts probes of one batch of videos under way at once: youtube.com sets no published limit.
PROBE_CONCURRENCY = 8

C = TypeVar("C")
Ts = TypeVarTuple("Ts")


# Shared steps


def _batches(ids: Sequence[str], size: int) -> list[list[str]]:
    unique = list(dict.fromkeys(i.strip() for i in ids if i and i.strip()))
    return [unique[start : start + size] for start in range(0, len(unique), size)]


@dataclass(slots=True)
class Listing:
    items: list
    cursor: str | None
    stopped: str | None = None


async def _collect(
    ctx: FlowContext,
    operation: ops.Operation[C, *Ts, ops.Cursor, Page],
    *args: *Ts,
    cap: int | None = None,
    cursor: str | None = None,
    max_pages: int | None = None,
    more: Callable[[Page], bool] | None = None,
    page_sizes: list[int] | None = None,
) -> Listing:
    """Page a listing until it ends, ``cap`` items (None = no cap), ``max_pages`` pages, or a page for
    which ``more`` says stop. Later pages stick to the first page's source. A page that fails after the
    first ends the listing and keeps what was collected (legacy: QuotaExceeded stops and keeps), saying why.
    ``page_sizes`` gets the number of items of each page, for the flows that emit page events.
    """
    items: list = []
    source: str | None = None
    pages = 0
    while True:
        try:
            page, source = await ctx.fetch(operation, *args, cursor, only=source)
        except (AllSourcesFailed, NoCredential, RetriableProviderError) as exc:
            if not pages:
                raise
            return Listing(items, cursor, f"stopped early: {exc}")
        pages += 1
        items.extend(page.items)
        if page_sizes is not None:
            page_sizes.append(len(page.items))
        cursor = page.next_cursor
        if cap is not None and len(items) >= cap:
            return Listing(items[:cap], cursor)
        if (
            cursor is None
            or not page.items
            or (max_pages is not None and pages >= max_pages)
            or (more is not None and not more(page))
        ):
            return Listing(items, cursor)
        await ctx.wait(PAGE_WAIT)


async def _refresh_profiles(ctx: FlowContext, channel_ids: Sequence[str]) -> dict:
    found: set[str] = set()
    asked = _batches(channel_ids, BATCH)
    for batch in asked:
        profiles, _ = await ctx.fetch(ops.FETCH_YT_PROFILES, batch)
        for profile in profiles:
            if profile.profile_id not in found:
                found.add(profile.profile_id)
                ctx.emit(profile)
    missing = [i for batch in asked for i in batch if i not in found]
    return {"profiles": len(found), "missing": missing}


def _web(ctx: FlowContext) -> youtube_web.YouTubeWebClient:
    if ctx.tools is None or ctx.tools.youtube_web is None:
        raise RuntimeError("the worker has no youtube.com client")
    return ctx.tools.youtube_web


def _needs_probe(post: Post) -> bool:
    """Whether only the shorts probe can type ``post``: untyped, and not too long to be a Short."""
    seconds = iso8601_seconds(post.dimensions.get("duration"))
    return post.dimensions.get("post_type") is None and youtube_web.post_type_by_length(seconds) is None


@dataclass(slots=True)
class Probes:
    """What the shorts probe said of a refresh's videos: their types, and how many it could not type."""

    types: dict[str, str] = field(default_factory=dict)
    failed: int = 0
    first_error: str | None = None


async def _probe(ctx: FlowContext, posts: Sequence[Post], probes: Probes) -> None:
    """Type ``posts`` on youtube.com, a few at a time. A probe that fails leaves its video untyped (the
    scheduled refresh_yt_post_type types it later) and is counted, rather than failing the refresh."""
    unknown = [post for post in posts if _needs_probe(post)]
    if not unknown:
        return
    web = _web(ctx)
    gate = asyncio.Semaphore(PROBE_CONCURRENCY)

    async def one(post: Post) -> None:
        async with gate:
            try:
                probes.types[post.shortcode] = await web.post_type(post.shortcode, request_id=ctx.request_id)
            except ProviderError as exc:
                probes.failed += 1
                probes.first_error = probes.first_error or f"{post.shortcode}: {exc}"

    await asyncio.gather(*(one(post) for post in unknown))
    if probes.types:
        ctx.used(youtube_web.SOURCE)


async def _refresh_posts(ctx: FlowContext, post_ids: Sequence[str], size: int = BATCH, **dimensions: Any) -> dict:
    """Refresh videos by id; ``dimensions`` (playlist_id, category, topic) are added when given. A video
    that may be a Short is typed by the shorts probe before its event goes out."""
    extra = {key: value for key, value in dimensions.items() if value is not None}
    found: dict[str, Post] = {}
    probes = Probes()
    asked = _batches(post_ids, size)
    for batch in asked:
        posts, _ = await ctx.fetch(ops.FETCH_YT_POSTS, batch)
        fresh: dict[str, Post] = {}
        for post in posts:
            if post.shortcode not in found:
                fresh.setdefault(post.shortcode, post)
        await _probe(ctx, list(fresh.values()), probes)
        for post in fresh.values():
            found[post.shortcode] = post
            typed = {"post_type": probes.types[post.shortcode]} if post.shortcode in probes.types else {}
            ctx.emit(post, keywords=keywords(post.dimensions.get("title")), **extra, **typed)
    missing = [i for batch in asked for i in batch if i not in found]
    return {
        "posts": len(found),
        "missing": missing,
        "probed": len(probes.types),
        "probe_failed": probes.failed,
        "probe_error": probes.first_error,
    }


def _posts_result(ctx: FlowContext, refreshed: dict, **extra: Any) -> dict:
    return ctx.summary(**refreshed, **extra)


# Profiles


async def refresh_yt_profiles(ctx: FlowContext, params: YtProfilesParams) -> dict:
    return ctx.summary(**await _refresh_profiles(ctx, params.channel_ids))


async def refresh_yt_profile_insights(ctx: FlowContext, params: ChannelIdParams) -> dict:
    # Analytics answers only with the channel owner's OAuth credential, chosen by channel id.
    found, _ = await ctx.fetch(ops.FETCH_YT_PROFILE_INSIGHTS, params.channel_id, handle=params.channel_id)
    # The event carries the reports that arrived; the sink's null-safe upsert keeps the stored rest.
    ctx.emit(found.profile)
    return ctx.summary(
        channel_id=params.channel_id, reports=sorted(found.profile.dimensions), failed_reports=found.failed
    )


# Posts


async def refresh_yt_posts(ctx: FlowContext, params: YtPostsParams) -> dict:
    refreshed = await _refresh_posts(
        ctx, params.post_ids, playlist_id=params.playlist_id, category=params.category, topic=params.topic
    )
    return _posts_result(ctx, refreshed)


async def _uploads_playlist(ctx: FlowContext, channel_id: str) -> str:
    """The channel's uploads playlist: stored by an earlier profile refresh, else fetched (and the
    profile refreshed on the way, so the next run finds it stored)."""
    if ctx.queries is not None and (stored := await ctx.queries.uploads_playlist_id(channel_id)):
        return stored
    profiles, _ = await ctx.fetch(ops.FETCH_YT_PROFILES, [channel_id])
    profile: Profile | None = next((p for p in profiles if p.profile_id == channel_id), None)
    if profile is None:
        raise ProfileMissing(f"no channel {channel_id}")
    ctx.emit(profile)
    playlist = profile.dimensions.get("uploads_playlist_id")
    if not playlist:
        raise ProfileMissing(f"channel {channel_id} has no uploads playlist")
    return playlist


async def refresh_yt_posts_by_playlist_id(ctx: FlowContext, params: YtPlaylistParams) -> dict:
    playlist_id = await _uploads_playlist(ctx, params.channel_id)
    # Absent max_posts reads every page; a falsy one (0) means the legacy default.
    cap = None if params.max_posts is None else (params.max_posts or DEFAULT_MAX_POSTS)
    listing = await _collect(ctx, ops.FETCH_YT_PLAYLIST_ITEMS, playlist_id, cap=cap)
    refreshed = await _refresh_posts(ctx, listing.items, playlist_id=playlist_id)
    return _posts_result(ctx, refreshed, playlist_id=playlist_id, listed=len(listing.items), stopped=listing.stopped)


async def refresh_yt_posts_by_channel_id(ctx: FlowContext, params: YtChannelPostsParams) -> dict:
    start = params.filter.start_date.isoformat() if params.filter and params.filter.start_date else None
    end = params.filter.end_date.isoformat() if params.filter and params.filter.end_date else None
    # A full date window reads every page; otherwise the newest max_posts.
    cap = None if (start and end) else (params.max_posts or DEFAULT_MAX_POSTS)
    listing = await _collect(ctx, ops.FETCH_YT_CHANNEL_POSTS, params.channel_id, start, end, cap=cap)
    refreshed = await _refresh_posts(ctx, listing.items)
    return _posts_result(ctx, refreshed, listed=len(listing.items), stopped=listing.stopped)


async def refresh_yt_posts_by_genre(ctx: FlowContext, params: YtGenreParams) -> dict:
    since = utcnow() - timedelta(days=GENRE_LOOKBACK_DAYS)
    listing = await _collect(
        ctx, ops.FETCH_YT_GENRE_SEARCH, params.category, params.language, since, cap=GENRE_MAX_POSTS
    )
    refreshed = await _refresh_posts(ctx, listing.items, size=GENRE_BATCH, category=params.category)
    return _posts_result(ctx, refreshed, listed=len(listing.items), stopped=listing.stopped)


def search_windows(start: date, end: date, frequency: int | None) -> list[tuple[datetime, datetime]]:
    """The date range cut into search windows: ``frequency`` days when given, else weekly under 60 days
    and 30-day windows beyond (legacy §2.2). Windows cover whole days, end inclusive."""
    if end < start:
        raise ValueError(f"end_date {end} is before start_date {start}")
    step = frequency or (7 if (end - start).days < 60 else 30)
    windows = []
    day = start
    while day <= end:
        last = min(day + timedelta(days=step - 1), end)
        windows.append(
            (
                datetime.combine(day, time.min, tzinfo=UTC),
                datetime.combine(last, time.max, tzinfo=UTC).replace(microsecond=0),
            )
        )
        day = last + timedelta(days=1)
    return windows


async def _search_keyword(
    ctx: FlowContext, keyword: str, windows: list[tuple[datetime, datetime]]
) -> tuple[list[Post], list[str]]:
    """Search snippets of every window; an error ends that window only (legacy), and is reported."""
    found: dict[str, Post] = {}
    errors: list[str] = []
    for after, before in windows:
        try:
            listing = await _collect(
                ctx, ops.FETCH_YT_SEARCH, keyword, after, before, max_pages=SEARCH_MAX_PAGES_PER_WINDOW
            )
        except ProviderError as exc:
            errors.append(f"{after.date()}..{before.date()}: {exc}")
            continue
        if listing.stopped:
            errors.append(f"{after.date()}..{before.date()}: {listing.stopped}")
        for post in listing.items:
            found.setdefault(post.shortcode, post)
    return list(found.values()), errors


async def _categorize(ctx: FlowContext, posts: list[Post]) -> dict:
    ray = ctx.tools.ray if ctx.tools else None
    if ray is None:
        return {"categorized": 0, "categorization": "skipped: BEAT_RAY_URL is not set"}
    chosen = posts[:CATEGORIZE_MAX_POSTS]
    categorized = 0
    for start in range(0, len(chosen), CATEGORIZE_CHUNK):
        chunk = chosen[start : start + CATEGORIZE_CHUNK]
        texts = [(post.shortcode, post.dimensions.get("title") or "") for post in chunk]
        labels = await ray.categorize([(i, t) for i, t in texts if t.strip()], request_id=ctx.request_id)
        for post in chunk:
            if (label := labels.get(post.shortcode)) is not None:
                categorized += 1
                ctx.emit(
                    Post(
                        platform=Platform.YOUTUBE,
                        source=CATEGORIZATION_SOURCE,
                        shortcode=post.shortcode,
                        profile_id=post.profile_id,
                        handle=None,
                        publish_time=post.publish_time,
                        dimensions={"categorization": label},
                    )
                )
    return {"categorized": categorized, "categorization": "done"}


async def refresh_yt_posts_by_search(ctx: FlowContext, params: YtSearchParams) -> dict:
    windows = search_windows(params.start_date, params.end_date, params.frequency)
    per_keyword: dict[str, dict] = {}
    all_posts: dict[str, Post] = {}
    for keyword in params.keywords:
        snippets, errors = await _search_keyword(ctx, keyword, windows)
        for snippet in snippets:
            ctx.emit(snippet, topic=keyword)
            all_posts.setdefault(snippet.shortcode, snippet)
        refreshed = await _refresh_posts(ctx, [s.shortcode for s in snippets], topic=keyword) if snippets else None
        await ctx.wait(AFTER_POSTS_WAIT)
        channels = sorted({s.profile_id for s in snippets if s.profile_id})
        profiles = await _refresh_profiles(ctx, channels) if channels else {"profiles": 0}
        await ctx.wait(AFTER_PROFILES_WAIT)
        per_keyword[keyword] = {
            "found": len(snippets),
            "posts": refreshed["posts"] if refreshed else 0,
            "profiles": profiles["profiles"],
            "errors": errors,
            # Which videos each keyword found: the keyword export's mapping file reads them.
            "video_ids": [s.shortcode for s in snippets],
        }
    categorization: dict = {"categorized": 0, "categorization": "not asked"}
    if params.categorization:
        categorization = await _categorize(ctx, list(all_posts.values()))
        await ctx.wait(AFTER_CATEGORIZE_WAIT)
    return ctx.summary(job_id=params.job_id, windows=len(windows), keywords=per_keyword, **categorization)


async def refresh_yt_post_type(ctx: FlowContext, params: YtPostTypeParams) -> dict:
    post_type = await _web(ctx).post_type(params.post_id, request_id=ctx.request_id)
    # Only the type: the sink's null-safe upsert leaves every other column of the post as stored.
    ctx.emit(
        Post(
            platform=Platform.YOUTUBE,
            source=youtube_web.SOURCE,
            shortcode=params.post_id,
            profile_id=None,
            handle=None,
            publish_time=None,
            dimensions={"post_type": post_type},
        )
    )
    ctx.used(youtube_web.SOURCE)
    return ctx.summary(post_type=post_type)


# Activities, comments, subscriptions (events only but comments)


async def fetch_yt_post_comments(ctx: FlowContext, params: PostCommentsParams) -> dict:
    sizes: list[int] = []
    listing = await _collect(
        ctx,
        ops.FETCH_YT_COMMENTS,
        params.shortcode,
        cap=params.max_comments or DEFAULT_MAX_COMMENTS,
        cursor=params.cursor,
        page_sizes=sizes,
    )
    emitted = [ctx.emit(comment, keywords=keywords(comment.dimensions.get("text"))) for comment in listing.items]
    pages = emit_pages(ctx, emitted, sizes)
    return ctx.summary(comments=len(emitted), pages=pages, cursor=listing.cursor, stopped=listing.stopped)


async def refresh_yt_activities(ctx: FlowContext, params: YtActivitiesParams) -> dict:
    # Legacy: the feed is read for subscriptions, so paging stops at a page without one.
    listing = await _collect(
        ctx,
        ops.FETCH_YT_ACTIVITIES,
        params.channel_id,
        cap=params.max_activities or None,
        more=lambda page: any(a.activity_type == "subscription" for a in page.items),
    )
    for activity in listing.items:
        ctx.emit(activity)
    return ctx.summary(activities=len(listing.items), stopped=listing.stopped)


async def refresh_yt_profile_relationship(ctx: FlowContext, params: YtRelationshipParams) -> dict:
    listing = await _collect(ctx, ops.FETCH_YT_SUBSCRIPTIONS, params.channel_id, cap=params.max_relationship or None)
    for subscription in listing.items:
        ctx.emit(subscription)
    return ctx.summary(subscriptions=len(listing.items), stopped=listing.stopped)
