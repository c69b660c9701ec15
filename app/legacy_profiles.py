"""The legacy profile routes (legacy §5): by handle, by profile id and by id, in the legacy envelope.

A route answers from Postgres. When the row is missing, older than its freshness bound (1 day; 7 days by
profile id) or the caller forces it, the route first refreshes: it submits the flow on its priority lane and
waits until the request is stored (``app.submission``), never running the flow itself. The refreshes the legacy
limited (byhandle with ``full_refresh``, byid) count against the stacked limits (``app.refresh_limits``).

Every outcome is HTTP 200 with ``status.code``, as the legacy answered: 2 for a full limit, 404 for a profile
that could not be found or refreshed, 504 (with ``scrape_id`` to poll) for a refresh still running at the
bound, 400 for a platform a route does not serve.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

import asyncpg
from fastapi import APIRouter, Depends, FastAPI, Path, Query, Request
from fastapi.responses import JSONResponse
from pydantic import AfterValidator, BaseModel

from app.api_errors import LegacyRoute, legacy_error
from app.api_state import ApiState, api_state
from app.legacy_posts import PostMetrics, RecentPost, post_metrics, recent_posts

# The legacy envelope and platform values, one copy for every legacy route group.
from app.legacy_posts_api import REFRESHES, ErrorAnswer, LegacyPlatform, Success
from app.refresh_limits import (
    INSTAGRAM_BY_HANDLE,
    INSTAGRAM_BY_ID,
    YOUTUBE_BY_ID,
    LimitExceeded,
    LimitKeys,
    RefreshLimits,
)
from app.submission import RefreshOutcome, refresh_and_wait
from sinks.derived import REELS, STATIC, profile_type
from topics.limits import MAX_TEXT, text_problem
from topics.models import utcnow

DAY = timedelta(days=1)
WEEK = timedelta(days=7)
LIMIT_EXCEEDED = "Concurrency Limit Exceeded"


def _storable(value: str) -> str:
    problem = text_problem(value)
    if problem:
        raise ValueError(problem)
    return value


Column = Literal["handle", "profile_id"]
Identity = Annotated[str, Path(min_length=1, max_length=MAX_TEXT), AfterValidator(_storable)]
State = Annotated[ApiState, Depends(api_state)]


class InstagramProfile(BaseModel):
    """byhandle's keys (legacy §5); ``post_metrics`` and ``recent_posts`` only with ``full_refresh``."""

    platform: Literal["instagram"] = "instagram"
    handle: str | None
    fbid: str | None
    profile_pic_url: str | None
    profile_id: str
    biography: str | None
    following: int | None
    followers: int | None
    full_name: str | None
    is_private: bool | None
    updated_at: datetime
    post_metrics: PostMetrics | None = None
    recent_posts: list[RecentPost] | None = None
    profile_type: Literal["personal", "business_or_creator"]
    media_count: int | None


class YoutubeProfile(BaseModel):
    platform: Literal["youtube"] = "youtube"
    channel_id: str
    title: str | None
    subscribers: int | None
    uploads: int | None
    views: int | None
    thumbnail: str | None


class ProfileAnswer(BaseModel):
    status: Success
    profile: InstagramProfile | YoutubeProfile


class NestedProfile(BaseModel):
    """byprofileid keeps legacy §5's nesting: the inner ``profile`` holds byhandle's keys."""

    platform: Literal["instagram"] = "instagram"
    handle: str | None
    profile: InstagramProfile


class NestedProfileAnswer(BaseModel):
    status: Success
    profile: NestedProfile


@asynccontextmanager
async def _limits(app: FastAPI) -> AsyncIterator[None]:
    # Runs inside create_api's lifespan, so the facade's settings are there already.
    limits = RefreshLimits.from_settings(app.state.beat.settings)
    app.state.refresh_limits = limits
    try:
        yield
    finally:
        await limits.aclose()


def refresh_limits(request: Request) -> RefreshLimits:
    limits: RefreshLimits = request.app.state.refresh_limits
    return limits


Limits = Annotated[RefreshLimits, Depends(refresh_limits)]
router = APIRouter(route_class=LegacyRoute, lifespan=_limits)


def truthy(value: str | None) -> bool:
    """The legacy flags are untyped strings: any non-empty value is true ("false" included)."""
    return bool(value)


def _found(profile: BaseModel) -> dict[str, Any]:
    return {"status": {"type": "SUCCESS", "message": "Profile found"}, "profile": profile}


def _not_found(identity: str) -> JSONResponse:
    return legacy_error(f"Profile not found - {identity}", 404)


def _unserved(platform: LegacyPlatform, route: str) -> JSONResponse:
    return legacy_error(f"{route} does not serve {platform.value} profiles", 400)


def _still_running(outcome: RefreshOutcome) -> JSONResponse:
    return JSONResponse(
        {
            "status": {
                "type": "ERROR",
                "message": f"the refresh is still running: poll /scrape_request_log/flow/{outcome.request_id}",
                "code": 504,
            },
            "scrape_id": outcome.request_id,
        }
    )


def stale(updated_at: datetime | None, bound: timedelta) -> bool:
    return updated_at is None or utcnow() - updated_at > bound


_INSTAGRAM_COLUMNS = (
    "profile_id, handle, fbid, profile_pic_url, biography, following, followers, full_name, is_private, "
    "is_business_or_creator, media_count, updated_at"
)


async def instagram_by(pool: asyncpg.Pool, column: Column, value: str) -> asyncpg.Record | None:
    # A handle can move between accounts: the most recently written one has it now.
    return await pool.fetchrow(
        f"SELECT {_INSTAGRAM_COLUMNS} FROM instagram_account WHERE {column} = $1 ORDER BY updated_at DESC LIMIT 1",
        value,
    )


async def youtube_by(pool: asyncpg.Pool, channel_id: str) -> asyncpg.Record | None:
    return await pool.fetchrow(
        "SELECT channel_id, title, subscribers, uploads, views, thumbnail, updated_at FROM youtube_account "
        "WHERE channel_id = $1",
        channel_id,
    )


def instagram_profile(row: asyncpg.Record, **extra: Any) -> InstagramProfile:
    fields = {name: row[name] for name in InstagramProfile.model_fields if name in row}
    return InstagramProfile(**fields, profile_type=profile_type(row["is_business_or_creator"]), **extra)


def youtube_profile(row: asyncpg.Record) -> YoutubeProfile:
    return YoutubeProfile(**{name: row[name] for name in YoutubeProfile.model_fields if name in row})


async def _refresh(
    state: ApiState,
    flow: str,
    params: dict[str, Any],
    *,
    limits: RefreshLimits | None = None,
    keys: LimitKeys | None = None,
    subject: str = "",
) -> RefreshOutcome | JSONResponse:
    """Refresh through ``flow`` (inside the stacked limits when ``keys`` are given); a refusal as its answer."""
    if limits is not None and keys is not None:
        try:
            await limits.take(keys, subject)
        except LimitExceeded:
            return legacy_error(LIMIT_EXCEEDED, 2)
    outcome = await refresh_and_wait(state, flow, params)
    if outcome.outcome == "timeout":
        return _still_running(outcome)
    return outcome


async def _instagram(
    state: ApiState,
    column: Column,
    identity: str,
    refresh: tuple[str, dict[str, Any]],
    bound: timedelta,
    *,
    force: bool = False,
    limits: RefreshLimits | None = None,
    keys: LimitKeys | None = None,
) -> asyncpg.Record | JSONResponse:
    """The account row, refreshed first when missing, older than ``bound`` or forced; or the answer to give."""
    row = await instagram_by(state.pool, column, identity)
    if force or row is None or stale(row["updated_at"], bound):
        flow, params = refresh
        outcome = await _refresh(state, flow, params, limits=limits, keys=keys, subject=identity)
        if isinstance(outcome, JSONResponse):
            return outcome
        if outcome.outcome == "failed":
            return _not_found(identity)
        row = await instagram_by(state.pool, column, identity)
    return row if row is not None else _not_found(identity)


async def _youtube(
    state: ApiState, channel_id: str, *, limits: RefreshLimits | None = None, keys: LimitKeys | None = None
) -> YoutubeProfile | JSONResponse:
    row = await youtube_by(state.pool, channel_id)
    if row is None or stale(row["updated_at"], DAY):
        outcome = await _refresh(
            state, "refresh_yt_profiles", {"channel_ids": [channel_id]}, limits=limits, keys=keys, subject=channel_id
        )
        if isinstance(outcome, JSONResponse):
            return outcome
        if outcome.outcome == "failed":
            return _not_found(channel_id)
        row = await youtube_by(state.pool, channel_id)
    return youtube_profile(row) if row is not None else _not_found(channel_id)


@router.get(
    "/profiles/{platform}/byhandle/{handle}", response_model=ProfileAnswer | ErrorAnswer, openapi_extra=REFRESHES
)
@router.get(
    "/social-profile-service/{platform}/byhandle/{handle}",
    response_model=ProfileAnswer | ErrorAnswer,
    openapi_extra=REFRESHES,
)
async def profile_by_handle(
    platform: LegacyPlatform,
    handle: Identity,
    state: State,
    limits: Limits,
    full_refresh: Annotated[str | None, Query(max_length=MAX_TEXT)] = None,
    force_refresh: Annotated[str | None, Query(max_length=MAX_TEXT)] = None,
) -> Any:
    """Instagram: refresh_profile_basic, or with ``full_refresh`` the full refresh_profile_by_handle inside the
    stacked limits (and the answer adds recent_posts and post_metrics). YouTube: the handle is the channel id."""
    if platform is LegacyPlatform.youtube:
        answer = await _youtube(state, handle)
        return answer if isinstance(answer, JSONResponse) else _found(answer)
    if platform is not LegacyPlatform.instagram:
        return _unserved(platform, "byhandle")
    full = truthy(full_refresh)
    flow = "refresh_profile_by_handle" if full else "refresh_profile_basic"
    row = await _instagram(
        state,
        "handle",
        handle,
        (flow, {"handle": handle}),
        DAY,
        force=truthy(force_refresh),
        limits=limits if full else None,
        keys=INSTAGRAM_BY_HANDLE if full else None,
    )
    if isinstance(row, JSONResponse):
        return row
    if not full:
        return _found(instagram_profile(row))
    return _found(await with_posts(state, row))


async def with_posts(state: ApiState, row: asyncpg.Record) -> InstagramProfile:
    """The profile with its 12 newest reels and 12 newest static posts, and the post_metrics over them."""
    profile_id = row["profile_id"]
    cdn = state.settings.cdn_base_url
    posts = [
        *await recent_posts(state.pool, profile_id, post_types=(REELS,), cdn_base_url=cdn),
        *await recent_posts(state.pool, profile_id, post_types=STATIC, cdn_base_url=cdn),
    ]
    return instagram_profile(row, recent_posts=posts, post_metrics=await post_metrics(state.pool, profile_id))


@router.get(
    "/profiles/{platform}/byprofileid/{profile_id}",
    response_model=NestedProfileAnswer | ErrorAnswer,
    openapi_extra=REFRESHES,
)
async def profile_by_profile_id(platform: LegacyPlatform, profile_id: Identity, state: State) -> Any:
    """Instagram only: refreshed when older than 7 days; answered nested, ``profile={platform, handle, profile}``."""
    if platform is not LegacyPlatform.instagram:
        return _unserved(platform, "byprofileid")
    row = await _instagram(
        state, "profile_id", profile_id, ("refresh_profile_by_profile_id", {"profile_id": profile_id}), WEEK
    )
    if isinstance(row, JSONResponse):
        return row
    inner = instagram_profile(row)
    return _found(NestedProfile(handle=inner.handle, profile=inner))


@router.get("/profiles/{platform}/byid/{id}", response_model=ProfileAnswer | ErrorAnswer, openapi_extra=REFRESHES)
async def profile_by_id(
    platform: LegacyPlatform,
    profile_id: Annotated[str, Path(alias="id", min_length=1, max_length=MAX_TEXT), AfterValidator(_storable)],
    state: State,
    limits: Limits,
    third_party_fallback: Annotated[str | None, Query(max_length=MAX_TEXT, description="unused, as legacy")] = None,
) -> Any:
    """Instagram by profile id, YouTube by channel id, each refreshed when older than 1 day inside its limits."""
    if platform is LegacyPlatform.youtube:
        answer = await _youtube(state, profile_id, limits=limits, keys=YOUTUBE_BY_ID)
        return answer if isinstance(answer, JSONResponse) else _found(answer)
    if platform is not LegacyPlatform.instagram:
        return _unserved(platform, "byid")
    row = await _instagram(
        state,
        "profile_id",
        profile_id,
        ("refresh_profile_by_profile_id", {"profile_id": profile_id}),
        DAY,
        limits=limits,
        keys=INSTAGRAM_BY_ID,
    )
    if isinstance(row, JSONResponse):
        return row
    return _found(instagram_profile(row))
