"""Instagram flows (legacy §2.1). Each is a plain async function: (context, params) -> result summary.

Waits between pages and retry sleeps are the legacy ones, scaled by configuration
(``BEAT_FLOW_WAIT_SCALE``); a flow's timeout bounds them all.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from functools import partial
from typing import Any

from agents.flows.context import FlowContext
from agents.flows.keywords import keywords
from agents.flows.pages import emit_pages
from providers import operations as ops
from providers.errors import ProfileMissing
from providers.paging import Page
from topics.models import Platform, Post, Profile, utcnow
from topics.params import (
    FollowingParams,
    HandleParams,
    HashtagPostsParams,
    PostCommentsParams,
    PostInsightsParams,
    PostLikesParams,
    ProfileBasicParams,
    ProfileCustomParams,
    ProfileIdParams,
    ShortcodeParams,
    StoryInsightsParams,
    StoryPostsParams,
    TaggedPostsParams,
)

RECENT_POSTS_DAYS = 30
RECENT_POSTS_MAX = 50
RECENT_REELS_MAX = 10
STORIES_MEDIA_DAYS = 90
STORIES_MEDIA_MAX = 150
FOLLOWERS_MAX = 2000
FOLLOWING_MAX = 200
DEFAULT_MAX_COMMENTS = 1000
STORY_PROFILE_METRICS = ("profile_follower", "profile_er", "profile_static_er", "profile_reels_er")

# A paged listing keyed by one id (a profile, a shortcode, a hashtag), whatever the capability behind it.
Paged = ops.Operation[Any, str, ops.Cursor, Page]


# Shared steps


async def _profile_by_handle(ctx: FlowContext, handle: str) -> Profile:
    profile, _ = await ctx.fetch(ops.FETCH_PROFILE_BY_HANDLE, handle)
    return profile


async def _profile_by_id(ctx: FlowContext, profile_id: str) -> Profile:
    profile, _ = await ctx.fetch(ops.FETCH_PROFILE_BY_ID, profile_id)
    return profile


def _emit_post(ctx: FlowContext, post: Post, refreshed_profile_id: str | None = None, **dimensions) -> None:
    extra = dict(dimensions)
    if post.kind == "post" and "keywords" not in post.dimensions:
        extra["keywords"] = keywords(post.dimensions.get("caption"))
    # A post on this profile's feed that belongs to someone else is a collaboration (legacy §4.1).
    if refreshed_profile_id and post.profile_id and post.profile_id != refreshed_profile_id:
        extra["collab_profile_id"] = refreshed_profile_id
    ctx.emit(post, **extra)


def _emit_unique(ctx: FlowContext, posts: list[Post], refreshed_profile_id: str | None = None, **dimensions) -> int:
    seen: set[str] = set()
    for post in posts:
        if post.shortcode not in seen:
            seen.add(post.shortcode)
            _emit_post(ctx, post, refreshed_profile_id, **dimensions)
    return len(seen)


async def _page(
    ctx: FlowContext, operation: Paged, key: str, cursor: str | None, source: str | None, *, handle: str | None = None
) -> tuple[Page, str]:
    page, source = await ctx.fetch(operation, key, cursor, only=source, handle=handle)
    return page, source


def _oldest(items: list[Post]) -> datetime | None:
    return min((p.publish_time for p in items if p.publish_time), default=None)


async def _collect_recent(
    ctx: FlowContext, operation: Paged, profile_id: str, max_posts: int, days: int = RECENT_POSTS_DAYS
) -> list[Post]:
    """Page until the oldest post on a page is older than ``days`` or more than ``max_posts`` are collected.

    Later pages stick to the first page's source: cursors are not portable between providers.
    """
    horizon = utcnow() - timedelta(days=days)
    collected: list[Post] = []
    cursor: str | None = None
    source: str | None = None
    while True:
        page, source = await _page(ctx, operation, profile_id, cursor, source)
        collected.extend(page.items)
        oldest = _oldest(page.items)
        if page.next_cursor is None or not page.items or (oldest and oldest < horizon) or len(collected) > max_posts:
            return collected
        cursor = page.next_cursor


async def _collect_capped(
    ctx: FlowContext,
    operation: Paged,
    key: str,
    cap: int,
    *,
    cursor: str | None = None,
    page_wait: float = 0.0,
    retries: int = 0,
    retry_sleep: float = 0.0,
    page_sizes: list[int] | None = None,
) -> tuple[list, str | None]:
    """Page a listing until it ends or ``cap`` items are collected; return them and the next cursor.

    A failed page is retried (``retries`` times, ``retry_sleep`` apart) on the source of the first page.
    ``page_sizes`` gets the number of items of each page, for the flows that emit page events.
    """
    collected: list = []
    source: str | None = None
    while True:
        page, source = await ctx.retrying(
            partial(_page, ctx, operation, key, cursor, source), retries=retries, sleep=retry_sleep
        )
        collected.extend(page.items)
        if page_sizes is not None:
            page_sizes.append(len(page.items))
        cursor = page.next_cursor
        if cursor is None or not page.items or len(collected) >= cap:
            return collected, cursor
        await ctx.wait(page_wait)


def _emit_profile_and_posts(ctx: FlowContext, profile: Profile, posts: list[Post]) -> int:
    # The legacy engine published the profile twice per refresh; one event per entity is enough.
    ctx.emit(profile)
    return _emit_unique(ctx, [*profile.embedded_posts, *posts], profile.profile_id)


async def _full_refresh(ctx: FlowContext, profile: Profile) -> dict:
    posts = await _collect_recent(ctx, ops.FETCH_PROFILE_POSTS_BY_ID, profile.profile_id, RECENT_POSTS_MAX)
    if profile.metrics.get("media_count"):
        posts += await _collect_recent(ctx, ops.FETCH_REELS_POSTS, profile.profile_id, RECENT_REELS_MAX)
    emitted = _emit_profile_and_posts(ctx, profile, posts)
    return ctx.summary(profile_id=profile.profile_id, posts=emitted)


# Profiles


async def refresh_profile_by_handle(ctx: FlowContext, params: HandleParams) -> dict:
    return await _full_refresh(ctx, await _profile_by_handle(ctx, params.handle))


async def refresh_profile_by_profile_id(ctx: FlowContext, params: ProfileIdParams) -> dict:
    return await _full_refresh(ctx, await _profile_by_id(ctx, params.profile_id))


async def refresh_profile_basic(ctx: FlowContext, params: ProfileBasicParams) -> dict:
    if params.handle:
        profile = await _profile_by_handle(ctx, params.handle)
    else:
        assert params.profile_id is not None
        profile = await _profile_by_id(ctx, params.profile_id)
    emitted = _emit_profile_and_posts(ctx, profile, [])
    return ctx.summary(profile_id=profile.profile_id, posts=emitted)


async def refresh_profile_custom(ctx: FlowContext, params: ProfileCustomParams) -> dict:
    if params.handle:
        profile = await _profile_by_handle(ctx, params.handle)
    else:
        assert params.profile_id is not None
        profile = await _profile_by_id(ctx, params.profile_id)
    posts, _ = await _collect_capped(
        ctx, ops.FETCH_PROFILE_POSTS_BY_ID, profile.profile_id, params.max_posts + 1, retries=6, retry_sleep=10
    )
    emitted = _emit_profile_and_posts(ctx, profile, posts)
    return ctx.summary(profile_id=profile.profile_id, posts=emitted)


# Posts


async def refresh_post_by_shortcode(ctx: FlowContext, params: ShortcodeParams) -> dict:
    post, _ = await ctx.fetch(ops.FETCH_POST_BY_SHORTCODE, params.shortcode)
    _emit_post(ctx, post)
    return ctx.summary(shortcode=post.shortcode)


async def refresh_tagged_posts_by_profile_id(ctx: FlowContext, params: TaggedPostsParams) -> dict:
    posts, _ = await _collect_capped(
        ctx, ops.FETCH_TAGGED_POSTS_BY_PROFILE_ID, params.profile_id, params.max_posts + 1, retries=6, retry_sleep=10
    )
    return ctx.summary(posts=_emit_unique(ctx, posts))


async def fetch_hashtag_posts(ctx: FlowContext, params: HashtagPostsParams) -> dict:
    posts, cursor = await _collect_capped(
        ctx,
        ops.FETCH_HASHTAG_POSTS,
        params.hashtag,
        params.max_posts,
        cursor=params.cursor,
        page_wait=5,
        retries=6,
        retry_sleep=10,
    )
    return ctx.summary(posts=_emit_unique(ctx, posts), cursor=cursor)


# Insights (Graph, with the credential of the account the data belongs to). Each result names the metrics
# Graph refused as not served (``dropped_metrics``): the request completes with the others.


async def refresh_post_insights(ctx: FlowContext, params: PostInsightsParams) -> dict:
    insights, _ = await ctx.fetch(
        ops.FETCH_POST_INSIGHTS, params.post_id, params.post_type, params.shortcode, handle=params.handle
    )
    ctx.emit(insights.data)
    return ctx.summary(shortcode=params.shortcode, dropped_metrics=list(insights.dropped_metrics))


async def refresh_profile_insights(ctx: FlowContext, params: HandleParams) -> dict:
    assert ctx.queries is not None
    profile_id = await ctx.queries.profile_id_for_handle(params.handle)
    if profile_id is None:
        raise ProfileMissing(f"no instagram_account row for {params.handle!r}; refresh the profile first")
    insights, _ = await ctx.fetch(ops.FETCH_PROFILE_INSIGHTS, params.handle, handle=params.handle)
    audience = insights.data
    audience.profile_id = profile_id
    ctx.emit(audience)
    return ctx.summary(profile_id=profile_id, dropped_metrics=list(insights.dropped_metrics))


# Stories


async def _graph_stories(ctx: FlowContext, handle: str) -> tuple[list[Post], list[Post]]:
    """Stories, and media pages until older than 90 days or more than 150 items, via Graph as ``handle``."""
    horizon = utcnow() - timedelta(days=STORIES_MEDIA_DAYS)
    stories: list[Post] = []
    media: list[Post] = []
    cursor: str | None = None
    source: str | None = None
    while True:
        (page_stories, page), source = await ctx.fetch(
            ops.FETCH_STORIES_BY_HANDLE, handle, cursor, only=source, handle=handle
        )
        if cursor is None:
            stories = page_stories
        media.extend(page.items)
        oldest = _oldest(page.items)
        if (
            page.next_cursor is None
            or not page.items
            or (oldest and oldest < horizon)
            or len(media) > STORIES_MEDIA_MAX
        ):
            return stories, media
        cursor = page.next_cursor


async def refresh_stories_posts(ctx: FlowContext, params: HandleParams) -> dict:
    stories, media = await _graph_stories(ctx, params.handle)
    for story in stories:
        ctx.emit(story, profile_id=story.profile_id)
    emitted = _emit_unique(ctx, media)
    return ctx.summary(stories=len(stories), posts=emitted)


async def refresh_story_insights(ctx: FlowContext, params: StoryInsightsParams) -> dict:
    assert ctx.queries is not None
    story_id = params.story_id
    stored = await ctx.queries.instagram_post(params.shortcode)
    if stored is not None and stored.post_id and stored.post_id == stored.shortcode:
        # A story ingested from a RapidAPI source carries its pk as post_id; Graph needs its own id.
        stories, _ = await _graph_stories(ctx, params.handle)
        match = next((s for s in stories if s.shortcode == params.shortcode), None)
        if match is not None and match.dimensions.get("post_id"):
            story_id = str(match.dimensions["post_id"])
    insights, _ = await ctx.fetch(ops.FETCH_STORY_INSIGHTS, story_id, params.shortcode, handle=params.handle)
    story = insights.data
    story.profile_id = story.profile_id or params.profile_id
    story.handle = story.handle or params.handle
    ctx.emit(story)
    return ctx.summary(shortcode=params.shortcode, story_id=story_id, dropped_metrics=list(insights.dropped_metrics))


async def refresh_story_posts_by_profile_id(ctx: FlowContext, params: StoryPostsParams) -> dict:
    stories, source = await ctx.fetch(ops.FETCH_STORY_POSTS_BY_PROFILE_ID, params.profile_id)
    profile_metrics = {name: getattr(params, name) for name in STORY_PROFILE_METRICS}
    seen: set[str] = set()
    for story in stories:
        seen.update({story.shortcode, str(story.dimensions.get("post_id") or story.shortcode)})
        story.metrics.update(profile_metrics)
        ctx.emit(story, profile_id=params.profile_id)
    expired = [story_id for story_id in params.story_ids or [] if story_id not in seen]
    for story_id in expired:
        # Requested stories the provider no longer returns have expired: keep a row for them.
        ctx.emit(
            Post(
                platform=Platform.INSTAGRAM,
                source=source,
                shortcode=story_id,
                profile_id=params.profile_id,
                handle=params.handle,
                publish_time=None,
                metrics=dict(profile_metrics),
                dimensions={
                    "post_id": story_id,
                    "post_type": "story",
                    "profile_id": params.profile_id,
                    "handle": params.handle,
                },
                kind="story",
            )
        )
    return ctx.summary(stories=len(stories), expired=len(expired))


# Relationships and activities


async def fetch_profile_followers(ctx: FlowContext, params: ProfileIdParams) -> dict:
    followers, cursor = await _collect_capped(
        ctx, ops.FETCH_FOLLOWERS, params.profile_id, FOLLOWERS_MAX, page_wait=5, retries=6, retry_sleep=10
    )
    for relationship in followers[:FOLLOWERS_MAX]:
        ctx.emit(relationship)
    return ctx.summary(followers=min(len(followers), FOLLOWERS_MAX), cursor=cursor)


async def fetch_profile_following(ctx: FlowContext, params: FollowingParams) -> dict:
    following, cursor = await _collect_capped(
        ctx,
        ops.FETCH_FOLLOWING,
        params.profile_id,
        FOLLOWING_MAX,
        cursor=params.cursor,
        page_wait=10,
        retries=2,
        retry_sleep=30,
    )
    for relationship in following[:FOLLOWING_MAX]:
        ctx.emit(relationship)
    return ctx.summary(following=min(len(following), FOLLOWING_MAX), cursor=cursor)


async def fetch_post_likes(ctx: FlowContext, params: PostLikesParams) -> dict:
    sizes: list[int] = []
    likes, cursor = await _collect_capped(
        ctx, ops.FETCH_POST_LIKES, params.shortcode, params.max_likes, cursor=params.cursor, page_sizes=sizes
    )
    emitted = [ctx.emit(like) for like in likes[: params.max_likes]]
    pages = emit_pages(ctx, emitted, sizes)
    return ctx.summary(likes=len(emitted), pages=pages, cursor=cursor)


async def fetch_post_comments(ctx: FlowContext, params: PostCommentsParams) -> dict:
    cap = params.max_comments or DEFAULT_MAX_COMMENTS
    sizes: list[int] = []
    comments, cursor = await _collect_capped(
        ctx, ops.FETCH_POST_COMMENTS, params.shortcode, cap, cursor=params.cursor, page_sizes=sizes
    )
    emitted = [ctx.emit(comment, keywords=keywords(comment.dimensions.get("text"))) for comment in comments[:cap]]
    pages = emit_pages(ctx, emitted, sizes)
    return ctx.summary(comments=len(emitted), pages=pages, cursor=cursor)
