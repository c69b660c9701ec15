"""The legacy product routes for posts, recent posts, Instagram insights and Graph tokens (legacy §5, §10).

Each answers as the legacy server did: HTTP 200 with ``{"status": {"type", "message", "code"?}, …}``, the
outcome in ``status.code`` (``LegacyRoute`` turns every refusal into that envelope; an outage is a 503 with
``Retry-After``). A route that refreshes does not run the flow: it submits the request on the flow's
priority lane, waits until the request is stored (``app.submission``) and answers from Postgres. A refresh
still running when the wait ends answers the legacy error shape with ``scrape_id``, so the caller can poll
``/scrape_request_log/flow/{scrape_id}``. ``/token/validate`` asks Graph's ``debug_token`` itself, through
the workers' HTTP layer (``app.facade_providers``).
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

import asyncpg
from fastapi import APIRouter, Depends, HTTPException, Path, Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from app.api_errors import LegacyRoute
from app.api_state import ApiState, api_state
from app.facade_providers import FacadeProviders, facade_providers, providers_lifespan
from app.legacy_posts import NON_STORY, PostMetrics, RecentPost, post_metrics, recent_posts
from app.submission import RefreshOutcome, refresh_and_wait
from providers.credentials import CredentialStore
from providers.errors import AuthExpired, ProviderError
from providers.graph_tokens import update_graph_token
from providers.instagram.graphapi import TokenInfo
from providers.sources import SOURCES
from topics.limits import MAX_TEXT

State = Annotated[ApiState, Depends(api_state)]
Providers = Annotated[FacadeProviders, Depends(facade_providers)]
Text = Annotated[str, Query(min_length=1, max_length=MAX_TEXT)]
PathText = Annotated[str, Path(min_length=1, max_length=MAX_TEXT)]

router = APIRouter(route_class=LegacyRoute, lifespan=providers_lifespan)

# Failures the legacy answered with their own code; any other is a 500 (BeatException's code, or 500).
_NOT_FOUND = frozenset({"ProfileMissing", "PostMissing"})
# The legacy token codes (§5): TokenValidationFalied, DataAccessExpired, valid.
TOKEN_INVALID, TOKEN_EXPIRED, TOKEN_VALID = 190, 500, 200
_PROVIDERS = {"graphapi": "GRAPHAPI", "lama": "LAMA"}


class LegacyPlatform(StrEnum):
    """The legacy ``platform`` path parameter: lower-case values, echoed back in lower case."""

    instagram = "instagram"
    youtube = "youtube"
    shopify = "shopify"


class Success(BaseModel):
    type: Literal["SUCCESS"] = "SUCCESS"
    message: str


class Failure(BaseModel):
    type: Literal["ERROR"] = "ERROR"
    message: str
    code: int


class ErrorAnswer(BaseModel):
    """A refusal or failure, still HTTP 200; ``scrape_id`` names a refresh still running (code 504)."""

    status: Failure
    scrape_id: str | None = None


class PostNumbers(BaseModel):
    reach: int | None
    views: int | None
    likes: int | None
    play_count: int | None
    comments: int | None


class LegacyPost(BaseModel):
    platform: LegacyPlatform
    handle: str | None
    data_provider: str | None = Field(description="GRAPHAPI, LAMA, or the source that answered, upper-case")
    shortcode: str
    post_id: str | None
    post_type: str | None
    content_type: str | None
    thumbnail: str | None
    display_url: str | None
    story_links: list[str] | None
    story_hashtags: list[str] | None
    publish_time: datetime | None
    updated_at: datetime
    metrics: PostNumbers


class PostAnswer(BaseModel):
    status: Success
    post: LegacyPost


class RecentPostsData(BaseModel):
    platform: LegacyPlatform
    profile_id: str
    recent_posts: list[RecentPost]


class RecentPostsAnswer(BaseModel):
    status: Success
    data: RecentPostsData


class InsightsProfile(BaseModel):
    handle: str
    followers: int | None
    following: int | None
    media_count: int | None
    post_metrics: PostMetrics


class InsightsAnswer(BaseModel):
    status: Success
    profile: InsightsProfile


class AudienceData(BaseModel):
    city: dict[str, Any] | None
    gender_age: dict[str, Any] | None


class AudienceProfile(BaseModel):
    handle: str
    audience_data: AudienceData


class AudienceAnswer(BaseModel):
    status: Success
    profile: AudienceProfile


class TokenAnswer(BaseModel):
    status: Success
    code: int = Field(description="200: the token is valid (legacy: the code beside status, not inside it)")


class StoredAnswer(BaseModel):
    status: Success


class TokenBody(BaseModel):
    """``POST /tokens``: a credential for ``source``; Graph's may give ``token`` and ``user_id`` directly."""

    model_config = ConfigDict(extra="ignore")
    source: str = Field("graphapi", max_length=MAX_TEXT)
    handle: str | None = Field(None, max_length=MAX_TEXT)
    credentials: dict[str, Any] | None = None
    token: str | None = Field(None, max_length=MAX_TEXT)
    user_id: str | None = Field(None, max_length=MAX_TEXT)


# Refreshes


class _Deadline:
    """One bound for every refresh a route makes (``BEAT_API_REFRESH_TIMEOUT``)."""

    def __init__(self, seconds: float) -> None:
        self._end = time.monotonic() + seconds

    def left(self) -> float:
        return max(0.0, self._end - time.monotonic())


def _still_running(outcome: RefreshOutcome) -> JSONResponse:
    message = f"Refresh still running: poll /scrape_request_log/flow/{outcome.request_id}"
    return JSONResponse({"status": {"type": "ERROR", "message": message, "code": 504}, "scrape_id": outcome.request_id})


def _failure(outcome: RefreshOutcome, fallback_message: str) -> HTTPException:
    error = outcome.error or {}
    code = 404 if error.get("type") in _NOT_FOUND else 500
    return HTTPException(code, error.get("message") or f"{fallback_message} ({outcome.status})")


async def _refresh(state: ApiState, deadline: _Deadline, flow: str, params: dict[str, Any]) -> RefreshOutcome:
    return await refresh_and_wait(state, flow, params, timeout=deadline.left())


def _platform_of(platform: LegacyPlatform) -> None:
    if platform is not LegacyPlatform.instagram:
        raise HTTPException(400, f"Platform {platform.value} is not supported here")


# Reads


_POST_SQL = """
SELECT shortcode, profile_id, handle, post_id, post_type, content_type, thumbnail_url, display_url, story_links,
       story_hashtags, publish_time, updated_at, reach, views, likes, plays, comments, source
FROM instagram_post WHERE shortcode = $1
"""

_ACCOUNT_SQL = """
SELECT profile_id, handle, followers, following, media_count FROM instagram_account
WHERE handle = $1 ORDER BY updated_at DESC LIMIT 1
"""

_AUDIENCE_SQL = "SELECT audience_city, audience_gender_age FROM instagram_profile_insights WHERE profile_id = $1"


def _provider(source: str | None) -> str | None:
    return _PROVIDERS.get(source, source.upper()) if source else None


def _legacy_post(row: asyncpg.Record, data_provider: str | None) -> LegacyPost:
    return LegacyPost(
        platform=LegacyPlatform.instagram,
        handle=row["handle"],
        data_provider=data_provider,
        shortcode=row["shortcode"],
        post_id=row["post_id"],
        post_type=row["post_type"],
        content_type=row["content_type"],
        thumbnail=row["thumbnail_url"],
        display_url=row["display_url"],
        story_links=row["story_links"],
        story_hashtags=row["story_hashtags"],
        publish_time=row["publish_time"],
        updated_at=row["updated_at"],
        metrics=PostNumbers(
            reach=row["reach"],
            views=row["views"],
            likes=row["likes"],
            play_count=row["plays"],
            comments=row["comments"],
        ),
    )


def _has_graph_id(row: asyncpg.Record | None) -> bool:
    # A RapidAPI post id is "<media pk>_<owner pk>" (or absent): Graph insights need Graph's own media id.
    return row is not None and bool(row["post_id"]) and "_" not in row["post_id"]


def _bare(handle: str | None) -> str:
    return (handle or "").strip().lstrip("@").lower()


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


# Posts


@router.get("/posts/{platform}/byshortcode/{shortcode}", response_model=PostAnswer | ErrorAnswer)
async def post_by_shortcode(
    platform: LegacyPlatform,
    shortcode: PathText,
    handle: Text,
    state: State,
    third_party_fallback: bool = False,
) -> PostAnswer | JSONResponse:
    """Graph first: the account's media (with its own credential) when the post has no Graph id yet, then the
    post's insights. When that fails and ``third_party_fallback`` is set, the post by shortcode from the
    third-party sources, which must belong to ``handle``."""
    _platform_of(platform)
    deadline = _Deadline(state.settings.api_refresh_timeout)
    outcome: RefreshOutcome | None = None
    row = await state.pool.fetchrow(_POST_SQL, shortcode)
    if not _has_graph_id(row):
        outcome = await _refresh(state, deadline, "refresh_stories_posts", {"handle": handle})
        if outcome.outcome == "stored":
            row = await state.pool.fetchrow(_POST_SQL, shortcode)
    if _has_graph_id(row):
        assert row is not None
        params = {"shortcode": shortcode, "handle": handle, "post_id": row["post_id"], "post_type": row["post_type"]}
        outcome = await _refresh(state, deadline, "refresh_post_insights", params)
        if outcome.outcome == "stored":
            stored = await state.pool.fetchrow(_POST_SQL, shortcode)
            return PostAnswer(status=Success(message="Post Retrieved"), post=_legacy_post(stored, "GRAPHAPI"))
    if outcome is not None and outcome.outcome == "timeout":
        return _still_running(outcome)
    if not third_party_fallback:
        if outcome is None or outcome.outcome == "stored":
            raise HTTPException(404, f"Post missing - {shortcode}")
        raise _failure(outcome, "Post refresh failed")
    return await _third_party_post(state, deadline, shortcode, handle)


async def _third_party_post(
    state: ApiState, deadline: _Deadline, shortcode: str, handle: str
) -> PostAnswer | JSONResponse:
    outcome = await _refresh(state, deadline, "refresh_post_by_shortcode", {"shortcode": shortcode})
    if outcome.outcome == "timeout":
        return _still_running(outcome)
    if outcome.outcome == "failed":
        raise _failure(outcome, "Post refresh failed")
    row = await state.pool.fetchrow(_POST_SQL, shortcode)
    if row is None:
        raise HTTPException(404, f"Post missing - {shortcode}")
    if _bare(row["handle"]) != _bare(handle):
        raise HTTPException(400, f"Post {shortcode} does not belong to {handle}")
    return PostAnswer(status=Success(message="Post Retrieved"), post=_legacy_post(row, _provider(row["source"])))


@router.get("/posts/{platform}/{post_type}/{shortcode}", response_model=PostAnswer | ErrorAnswer)
async def post_by_type(
    platform: LegacyPlatform,
    post_type: PathText,
    shortcode: PathText,
    profile_id: Text,
    state: State,
) -> PostAnswer | JSONResponse:
    """A story is refreshed with its profile's stories; any other post by its shortcode."""
    _platform_of(platform)
    deadline = _Deadline(state.settings.api_refresh_timeout)
    story = post_type.lower() == "story"
    if story:
        outcome = await _refresh(state, deadline, "refresh_story_posts_by_profile_id", {"profile_id": profile_id})
    else:
        outcome = await _refresh(state, deadline, "refresh_post_by_shortcode", {"shortcode": shortcode})
    if outcome.outcome == "timeout":
        return _still_running(outcome)
    if outcome.outcome == "failed":
        raise _failure(outcome, "Post refresh failed")
    row = await state.pool.fetchrow(_POST_SQL, shortcode)
    if row is None:
        raise HTTPException(404, f"{'Story' if story else 'Post'} not found - {shortcode}")
    message = "Stories Retrieved" if story else "Post Retrieved"
    return PostAnswer(status=Success(message=message), post=_legacy_post(row, _provider(row["source"])))


@router.get("/recent/posts/{platform}/byprofileid/{profile_id}", response_model=RecentPostsAnswer | ErrorAnswer)
async def recent_posts_by_profile_id(
    platform: LegacyPlatform,
    profile_id: PathText,
    state: State,
    post_types: Annotated[list[str] | None, Query(max_length=8)] = None,
) -> RecentPostsAnswer:
    """The 12 newest posts with a thumbnail (stories left out), from Postgres; no refresh."""
    _platform_of(platform)
    posts = await recent_posts(
        state.pool, profile_id, post_types=post_types or NON_STORY, cdn_base_url=state.settings.cdn_base_url
    )
    if not posts:
        raise HTTPException(500, f"No posts found for {profile_id}")
    return RecentPostsAnswer(
        status=Success(message="Recent Posts Retrieved"),
        data=RecentPostsData(platform=platform, profile_id=profile_id, recent_posts=posts),
    )


# Instagram insights: each stores the caller's fresh Graph token first (legacy update_token).


async def _store_token(state: ApiState, handle: str, token: str | None, user_id: str | None) -> None:
    if token and user_id:
        await update_graph_token(state.pool, handle, token, user_id)


async def _account(state: ApiState, deadline: _Deadline, handle: str) -> asyncpg.Record | JSONResponse:
    outcome = await _refresh(state, deadline, "refresh_profile_basic", {"handle": handle})
    if outcome.outcome == "timeout":
        return _still_running(outcome)
    if outcome.outcome == "failed":
        raise HTTPException(404, f"Profile not found - {handle}")
    account = await state.pool.fetchrow(_ACCOUNT_SQL, handle)
    if account is None:
        raise HTTPException(404, f"Profile not found - {handle}")
    return account


@router.get("/profiles/INSTAGRAM/byhandle/{handle}/insights", response_model=InsightsAnswer | ErrorAnswer)
async def instagram_insights(
    handle: PathText,
    state: State,
    token: Annotated[str | None, Query(max_length=MAX_TEXT)] = None,
    user_id: Annotated[str | None, Query(max_length=MAX_TEXT)] = None,
) -> InsightsAnswer | JSONResponse:
    """The account refreshed (Graph first), with its post_metrics."""
    await _store_token(state, handle, token, user_id)
    account = await _account(state, _Deadline(state.settings.api_refresh_timeout), handle)
    if isinstance(account, JSONResponse):
        return account
    return InsightsAnswer(
        status=Success(message="Profile Insights Retrieved"),
        profile=InsightsProfile(
            handle=account["handle"],
            followers=account["followers"],
            following=account["following"],
            media_count=account["media_count"],
            post_metrics=await post_metrics(state.pool, account["profile_id"]),
        ),
    )


@router.get("/profiles/INSTAGRAM/byhandle/{handle}/audienceinsights", response_model=AudienceAnswer | ErrorAnswer)
async def instagram_audience_insights(
    handle: PathText,
    state: State,
    token: Annotated[str | None, Query(max_length=MAX_TEXT)] = None,
    user_id: Annotated[str | None, Query(max_length=MAX_TEXT)] = None,
) -> AudienceAnswer | JSONResponse:
    """The account's follower demographics, read with its own Graph credential; an account Beat has not
    stored yet is refreshed first (the insights flow needs its profile id)."""
    await _store_token(state, handle, token, user_id)
    deadline = _Deadline(state.settings.api_refresh_timeout)
    account = await state.pool.fetchrow(_ACCOUNT_SQL, handle)
    if account is None:
        found = await _account(state, deadline, handle)
        if isinstance(found, JSONResponse):
            return found
        account = found
    outcome = await _refresh(state, deadline, "refresh_profile_insights", {"handle": handle})
    if outcome.outcome == "timeout":
        return _still_running(outcome)
    if outcome.outcome == "failed":
        raise _failure(outcome, "Audience insights failed")
    audience = await state.pool.fetchrow(_AUDIENCE_SQL, account["profile_id"])
    if audience is None:
        raise HTTPException(404, f"Audience insights not found - {handle}")
    return AudienceAnswer(
        status=Success(message="Audience Insights Retrieved"),
        profile=AudienceProfile(
            handle=handle,
            audience_data=AudienceData(
                city=_json(audience["audience_city"]), gender_age=_json(audience["audience_gender_age"])
            ),
        ),
    )


# Tokens


def _token_verdict(info: TokenInfo) -> tuple[int, str]:
    if info.is_valid is False or info.missing_scopes:
        return TOKEN_INVALID, "Token is invalid"
    if info.is_data_access_expired(datetime.now(UTC)):
        return TOKEN_EXPIRED, "Data access expired"
    return TOKEN_VALID, "Token is valid"


@router.get("/token/validate", response_model=TokenAnswer | ErrorAnswer)
async def validate_token(
    access_token: Text,
    providers: Providers,
    social_user_id: Annotated[str | None, Query(max_length=MAX_TEXT)] = None,
    handle: Annotated[str | None, Query(max_length=MAX_TEXT)] = None,
    platform: Annotated[str | None, Query(max_length=MAX_TEXT)] = None,
    type: Annotated[str, Query(max_length=MAX_TEXT)] = "graphapi",
) -> TokenAnswer:
    """Graph's ``debug_token`` on the token: invalid or short of the four scopes is 190, data access expired
    is 500, else valid (code 200 beside the status, as the legacy answered)."""
    if type.lower() != "graphapi":
        raise HTTPException(400, f"Token validation is not supported for {type}")
    # Without an app token a user token can inspect itself.
    app_token = providers.app_token or access_token
    try:
        with providers.on_demand():
            info = await providers.graph.debug_token(access_token, app_token)
    except AuthExpired:
        raise HTTPException(TOKEN_INVALID, "Token is invalid") from None
    except ProviderError as exc:
        raise HTTPException(502, f"Graph did not validate the token: {exc.message}") from None
    code, message = _token_verdict(info)
    if code != TOKEN_VALID:
        raise HTTPException(code, message)
    return TokenAnswer(status=Success(message=message), code=code)


@router.post("/tokens", response_model=StoredAnswer | ErrorAnswer)
async def store_token(body: TokenBody, state: State) -> StoredAnswer:
    """Stores the credential (the legacy route was a stub that stored nothing)."""
    if body.source not in SOURCES:
        raise HTTPException(400, f"Unknown source {body.source}")
    secrets = dict(body.credentials or {})
    if body.token:
        secrets.setdefault("token", body.token)
    if body.user_id:
        secrets.setdefault("user_id", body.user_id)
    if not secrets:
        raise HTTPException(400, "No credentials given")
    if body.source == "graphapi" and not (secrets.get("token") and secrets.get("user_id")):
        raise HTTPException(400, "A graphapi credential needs token and user_id")
    await CredentialStore(state.pool).add(body.source, secrets, handle=body.handle)
    return StoredAnswer(status=Success(message="Inserted Successfully"))
