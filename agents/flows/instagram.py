"""Instagram flows (legacy §2.1). Each is a plain async function: (context, params) -> result summary."""

from __future__ import annotations

from datetime import timedelta

from agents.flows.context import FlowContext
from agents.flows.params import HandleParams, ProfileBasicParams, ShortcodeParams
from providers.models import Page, PostData, ProfileData
from topics.models import utcnow

RECENT_POSTS_DAYS = 30
RECENT_POSTS_MAX = 50
RECENT_REELS_MAX = 10


async def _profile_by_handle(ctx: FlowContext, handle: str) -> ProfileData:
    profile, source = await ctx.crawler.fetch(
        "fetch_profile_by_handle",
        lambda client, cred: client.profile_by_handle(handle, credential=cred, request_id=ctx.request_id),
    )
    ctx.used(source)
    return profile


async def _profile_by_id(ctx: FlowContext, profile_id: str) -> ProfileData:
    profile, source = await ctx.crawler.fetch(
        "fetch_profile_by_id",
        lambda client, cred: client.profile_by_id(profile_id, credential=cred, request_id=ctx.request_id),
    )
    ctx.used(source)
    return profile


def _emit_profile_with_posts(ctx: FlowContext, profile: ProfileData) -> None:
    ctx.emit_profile(profile)
    for post in profile.embedded_posts:
        _emit_post_of(ctx, post, profile.profile_id)


def _emit_post_of(ctx: FlowContext, post: PostData, refreshed_profile_id: str) -> None:
    # A post on this profile's feed that belongs to someone else is a collaboration (legacy §4.1).
    if post.profile_id and post.profile_id != refreshed_profile_id:
        ctx.emit_post(post, collab_profile_id=refreshed_profile_id)
    else:
        ctx.emit_post(post)


async def _collect_recent(
    ctx: FlowContext, fetch_type: str, method: str, profile_id: str, max_posts: int
) -> list[PostData]:
    """Page through a listing until the oldest post on a page is older than 30 days or enough are collected."""
    horizon = utcnow() - timedelta(days=RECENT_POSTS_DAYS)
    collected: list[PostData] = []
    cursor: str | None = None
    source: str | None = None
    while True:
        page, source = await ctx.crawler.fetch(
            fetch_type,
            lambda client, cred: getattr(client, method)(
                profile_id, cursor=cursor, credential=cred, request_id=ctx.request_id
            ),
            only=source,
        )
        ctx.used(source)
        collected.extend(page.items)
        oldest = min((p.publish_time for p in page.items if p.publish_time), default=None)
        if _done(page, oldest, horizon) or len(collected) > max_posts:
            return collected
        cursor = page.next_cursor


def _done(page: Page, oldest, horizon) -> bool:
    return page.next_cursor is None or not page.items or (oldest is not None and oldest < horizon)


async def refresh_profile_basic(ctx: FlowContext, params: ProfileBasicParams) -> dict:
    if params.handle:
        profile = await _profile_by_handle(ctx, params.handle)
    else:
        assert params.profile_id is not None
        profile = await _profile_by_id(ctx, params.profile_id)
    _emit_profile_with_posts(ctx, profile)
    return ctx.summary(profile_id=profile.profile_id)


async def refresh_profile_by_handle(ctx: FlowContext, params: HandleParams) -> dict:
    profile = await _profile_by_handle(ctx, params.handle)
    posts = await _collect_recent(ctx, "fetch_profile_posts_by_id", "posts_by_id", profile.profile_id, RECENT_POSTS_MAX)
    if profile.metrics.get("media_count"):
        posts += await _collect_recent(ctx, "fetch_reels_posts", "reels", profile.profile_id, RECENT_REELS_MAX)
    # The legacy engine published the profile twice per refresh; one event per entity is enough.
    ctx.emit_profile(profile)
    seen: set[str] = set()
    for post in [*profile.embedded_posts, *posts]:
        if post.shortcode not in seen:
            seen.add(post.shortcode)
            _emit_post_of(ctx, post, profile.profile_id)
    return ctx.summary(profile_id=profile.profile_id, posts=len(seen))


async def refresh_post_by_shortcode(ctx: FlowContext, params: ShortcodeParams) -> dict:
    post, source = await ctx.crawler.fetch(
        "fetch_post_by_shortcode",
        lambda client, cred: client.post_by_shortcode(params.shortcode, credential=cred, request_id=ctx.request_id),
    )
    ctx.used(source)
    ctx.emit_post(post)
    return ctx.summary(shortcode=post.shortcode)
