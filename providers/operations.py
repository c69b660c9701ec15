"""The fetch operations: one per fetch type, each the capability a client must have to serve it.

A capability is a ``Protocol`` naming one client method with its exact signature; a client serves the
operation when it has that method (``isinstance(client, capability)``). The operation's ``method``
picks the bound method off a client, so a flow's ``ctx.fetch(FETCH_YT_PROFILES, ids)`` can be followed,
by a reader and by mypy, from the flow's arguments to the client method and back to its result type.

Every client method takes the flow's arguments positionally and the crawler's own keyword-only:
the ``credential`` it picked and the ``request_id`` it traces the call under. The fetch type's name is
the key of the priority lists (``providers/crawler.py``) and of ``BEAT_SOURCE_PRIORITIES``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, Protocol, TypeGuard, TypeVar, TypeVarTuple, runtime_checkable

from providers.http import Credential
from providers.instagram.graphapi import Insights
from providers.paging import Page
from providers.shopify.shopify import OrdersPage
from providers.youtube.youtube_analytics import ChannelInsights
from topics.models import Post, Profile

Ts = TypeVarTuple("Ts")
R = TypeVar("R")
R_co = TypeVar("R_co", covariant=True)
C = TypeVar("C")


class Method(Protocol[*Ts, R_co]):
    """A client's bound method: the flow's arguments, then the credential and the request being served."""

    def __call__(self, *args: *Ts, credential: Credential, request_id: str | None = None) -> Awaitable[R_co]: ...


@dataclass(frozen=True, slots=True)
class Operation(Generic[C, *Ts, R]):
    """A fetch type: ``capability`` is what a client must implement, ``method`` its bound method on one."""

    name: str
    # Typed as object: mypy takes no Protocol where a type[C] is asked (served_by narrows instead).
    capability: type[object]
    method: Callable[[C], Method[*Ts, R]]

    def served_by(self, client: object) -> TypeGuard[C]:
        return isinstance(client, self.capability)

    @property
    def method_name(self) -> str:
        """The client method the capability names, for people (what a source without it lacks)."""
        [name] = [name for name in vars(self.capability) if not name.startswith("_")]
        return name


# Instagram


@runtime_checkable
class ProfileById(Protocol):
    async def profile_by_id(
        self, profile_id: str, *, credential: Credential, request_id: str | None = None
    ) -> Profile: ...


@runtime_checkable
class ProfileByHandle(Protocol):
    async def profile_by_handle(
        self, handle: str, *, credential: Credential, request_id: str | None = None
    ) -> Profile: ...


@runtime_checkable
class PostsByProfileId(Protocol):
    async def posts_by_id(
        self, profile_id: str, cursor: str | None = None, *, credential: Credential, request_id: str | None = None
    ) -> Page: ...


@runtime_checkable
class PostsByHandle(Protocol):
    async def posts_by_handle(
        self, handle: str, cursor: str | None = None, *, credential: Credential, request_id: str | None = None
    ) -> Page: ...


@runtime_checkable
class ReelsByProfileId(Protocol):
    async def reels(
        self, profile_id: str, cursor: str | None = None, *, credential: Credential, request_id: str | None = None
    ) -> Page: ...


@runtime_checkable
class PostByShortcode(Protocol):
    async def post_by_shortcode(
        self, shortcode: str, *, credential: Credential, request_id: str | None = None
    ) -> Post: ...


@runtime_checkable
class PostInsights(Protocol):
    async def post_insights(
        self, post_id: str, post_type: str, shortcode: str, *, credential: Credential, request_id: str | None = None
    ) -> Insights[Post]: ...


@runtime_checkable
class ProfileInsights(Protocol):
    async def profile_insights(
        self, handle: str, *, credential: Credential, request_id: str | None = None
    ) -> Insights[Profile]: ...


@runtime_checkable
class StoryInsights(Protocol):
    async def story_insights(
        self, story_id: str, shortcode: str, *, credential: Credential, request_id: str | None = None
    ) -> Insights[Post]: ...


@runtime_checkable
class StoriesAndMediaByHandle(Protocol):
    async def stories_and_media(
        self, handle: str, cursor: str | None = None, *, credential: Credential, request_id: str | None = None
    ) -> tuple[list[Post], Page]: ...


@runtime_checkable
class CommentsByShortcode(Protocol):
    async def comments(
        self, shortcode: str, cursor: str | None = None, *, credential: Credential, request_id: str | None = None
    ) -> Page: ...


@runtime_checkable
class LikersByShortcode(Protocol):
    async def likers(
        self, shortcode: str, cursor: str | None = None, *, credential: Credential, request_id: str | None = None
    ) -> Page: ...


@runtime_checkable
class FollowingByProfileId(Protocol):
    async def following(
        self, profile_id: str, cursor: str | None = None, *, credential: Credential, request_id: str | None = None
    ) -> Page: ...


@runtime_checkable
class FollowersByProfileId(Protocol):
    async def followers(
        self, profile_id: str, cursor: str | None = None, *, credential: Credential, request_id: str | None = None
    ) -> Page: ...


@runtime_checkable
class HashtagPosts(Protocol):
    async def hashtag_posts(
        self, hashtag: str, cursor: str | None = None, *, credential: Credential, request_id: str | None = None
    ) -> Page: ...


@runtime_checkable
class TaggedPostsByProfileId(Protocol):
    async def tagged_posts(
        self, profile_id: str, cursor: str | None = None, *, credential: Credential, request_id: str | None = None
    ) -> Page: ...


@runtime_checkable
class StoriesByProfileId(Protocol):
    async def stories(
        self, profile_id: str, *, credential: Credential, request_id: str | None = None
    ) -> list[Post]: ...


# YouTube


@runtime_checkable
class YtChannels(Protocol):
    async def channels(
        self, ids: list[str], *, credential: Credential, request_id: str | None = None
    ) -> list[Profile]: ...


@runtime_checkable
class YtVideos(Protocol):
    async def videos(self, ids: list[str], *, credential: Credential, request_id: str | None = None) -> list[Post]: ...


@runtime_checkable
class YtPlaylistItems(Protocol):
    async def playlist_items(
        self, playlist_id: str, cursor: str | None = None, *, credential: Credential, request_id: str | None = None
    ) -> Page: ...


@runtime_checkable
class YtGenreSearch(Protocol):
    async def genre_search(
        self,
        category: str,
        language: str | None,
        published_after: datetime,
        cursor: str | None = None,
        *,
        credential: Credential,
        request_id: str | None = None,
    ) -> Page: ...


@runtime_checkable
class YtActivities(Protocol):
    async def activities(
        self, channel_id: str, cursor: str | None = None, *, credential: Credential, request_id: str | None = None
    ) -> Page: ...


@runtime_checkable
class YtSubscriptions(Protocol):
    async def subscriptions(
        self, channel_id: str, cursor: str | None = None, *, credential: Credential, request_id: str | None = None
    ) -> Page: ...


@runtime_checkable
class YtChannelVideoIds(Protocol):
    async def channel_video_ids(
        self,
        channel_id: str,
        start_date: str | None = None,
        end_date: str | None = None,
        cursor: str | None = None,
        *,
        credential: Credential,
        request_id: str | None = None,
    ) -> Page: ...


@runtime_checkable
class YtKeywordSearch(Protocol):
    async def keyword_search(
        self,
        keyword: str,
        published_after: datetime,
        published_before: datetime,
        cursor: str | None = None,
        *,
        credential: Credential,
        request_id: str | None = None,
    ) -> Page: ...


@runtime_checkable
class YtComments(Protocol):
    async def comments(
        self, video_id: str, cursor: str | None = None, *, credential: Credential, request_id: str | None = None
    ) -> Page: ...


@runtime_checkable
class YtChannelInsights(Protocol):
    async def channel_insights(
        self, channel_id: str, *, credential: Credential, request_id: str | None = None
    ) -> ChannelInsights: ...


# Shopify


@runtime_checkable
class StoreOrders(Protocol):
    async def orders(
        self,
        store: str,
        limit: int,
        filters: dict[str, str],
        cursor: str | None = None,
        *,
        credential: Credential,
        request_id: str | None = None,
    ) -> OrdersPage: ...


# The fetch types. A cursor is always passed (None for the first page): a later page names the one before.

Cursor = str | None

FETCH_PROFILE_BY_ID: Operation[ProfileById, str, Profile] = Operation(
    "fetch_profile_by_id", ProfileById, lambda client: client.profile_by_id
)
FETCH_PROFILE_BY_HANDLE: Operation[ProfileByHandle, str, Profile] = Operation(
    "fetch_profile_by_handle", ProfileByHandle, lambda client: client.profile_by_handle
)
FETCH_PROFILE_POSTS_BY_ID: Operation[PostsByProfileId, str, Cursor, Page] = Operation(
    "fetch_profile_posts_by_id", PostsByProfileId, lambda client: client.posts_by_id
)
FETCH_PROFILE_POSTS_BY_HANDLE: Operation[PostsByHandle, str, Cursor, Page] = Operation(
    "fetch_profile_posts_by_handle", PostsByHandle, lambda client: client.posts_by_handle
)
FETCH_REELS_POSTS: Operation[ReelsByProfileId, str, Cursor, Page] = Operation(
    "fetch_reels_posts", ReelsByProfileId, lambda client: client.reels
)
FETCH_POST_BY_SHORTCODE: Operation[PostByShortcode, str, Post] = Operation(
    "fetch_post_by_shortcode", PostByShortcode, lambda client: client.post_by_shortcode
)
FETCH_POST_INSIGHTS: Operation[PostInsights, str, str, str, Insights[Post]] = Operation(
    "fetch_post_insights", PostInsights, lambda client: client.post_insights
)
FETCH_PROFILE_INSIGHTS: Operation[ProfileInsights, str, Insights[Profile]] = Operation(
    "fetch_profile_insights", ProfileInsights, lambda client: client.profile_insights
)
FETCH_STORY_INSIGHTS: Operation[StoryInsights, str, str, Insights[Post]] = Operation(
    "fetch_story_insights", StoryInsights, lambda client: client.story_insights
)
FETCH_STORIES_BY_HANDLE: Operation[StoriesAndMediaByHandle, str, Cursor, tuple[list[Post], Page]] = Operation(
    "fetch_stories_by_handle", StoriesAndMediaByHandle, lambda client: client.stories_and_media
)
FETCH_POST_COMMENTS: Operation[CommentsByShortcode, str, Cursor, Page] = Operation(
    "fetch_post_comments", CommentsByShortcode, lambda client: client.comments
)
FETCH_POST_LIKES: Operation[LikersByShortcode, str, Cursor, Page] = Operation(
    "fetch_post_likes", LikersByShortcode, lambda client: client.likers
)
FETCH_FOLLOWING: Operation[FollowingByProfileId, str, Cursor, Page] = Operation(
    "fetch_following", FollowingByProfileId, lambda client: client.following
)
FETCH_FOLLOWERS: Operation[FollowersByProfileId, str, Cursor, Page] = Operation(
    "fetch_followers", FollowersByProfileId, lambda client: client.followers
)
FETCH_HASHTAG_POSTS: Operation[HashtagPosts, str, Cursor, Page] = Operation(
    "fetch_hashtag_posts", HashtagPosts, lambda client: client.hashtag_posts
)
FETCH_TAGGED_POSTS_BY_PROFILE_ID: Operation[TaggedPostsByProfileId, str, Cursor, Page] = Operation(
    "fetch_tagged_posts_by_profile_id", TaggedPostsByProfileId, lambda client: client.tagged_posts
)
FETCH_STORY_POSTS_BY_PROFILE_ID: Operation[StoriesByProfileId, str, list[Post]] = Operation(
    "fetch_story_posts_by_profile_id", StoriesByProfileId, lambda client: client.stories
)

FETCH_YT_PROFILES: Operation[YtChannels, list[str], list[Profile]] = Operation(
    "fetch_yt_profiles", YtChannels, lambda client: client.channels
)
FETCH_YT_POSTS: Operation[YtVideos, list[str], list[Post]] = Operation(
    "fetch_yt_posts", YtVideos, lambda client: client.videos
)
FETCH_YT_PLAYLIST_ITEMS: Operation[YtPlaylistItems, str, Cursor, Page] = Operation(
    "fetch_yt_playlist_items", YtPlaylistItems, lambda client: client.playlist_items
)
FETCH_YT_GENRE_SEARCH: Operation[YtGenreSearch, str, str | None, datetime, Cursor, Page] = Operation(
    "fetch_yt_genre_search", YtGenreSearch, lambda client: client.genre_search
)
FETCH_YT_ACTIVITIES: Operation[YtActivities, str, Cursor, Page] = Operation(
    "fetch_yt_activities", YtActivities, lambda client: client.activities
)
FETCH_YT_SUBSCRIPTIONS: Operation[YtSubscriptions, str, Cursor, Page] = Operation(
    "fetch_yt_subscriptions", YtSubscriptions, lambda client: client.subscriptions
)
FETCH_YT_CHANNEL_POSTS: Operation[YtChannelVideoIds, str, str | None, str | None, Cursor, Page] = Operation(
    "fetch_yt_channel_posts", YtChannelVideoIds, lambda client: client.channel_video_ids
)
FETCH_YT_SEARCH: Operation[YtKeywordSearch, str, datetime, datetime, Cursor, Page] = Operation(
    "fetch_yt_search", YtKeywordSearch, lambda client: client.keyword_search
)
FETCH_YT_COMMENTS: Operation[YtComments, str, Cursor, Page] = Operation(
    "fetch_yt_comments", YtComments, lambda client: client.comments
)
FETCH_YT_PROFILE_INSIGHTS: Operation[YtChannelInsights, str, ChannelInsights] = Operation(
    "fetch_yt_profile_insights", YtChannelInsights, lambda client: client.channel_insights
)

FETCH_ORDERS: Operation[StoreOrders, str, int, dict[str, str], Cursor, OrdersPage] = Operation(
    "fetch_orders", StoreOrders, lambda client: client.orders
)

OPERATIONS: dict[str, Operation[Any, *tuple[Any, ...], Any]] = {
    operation.name: operation
    for operation in (
        FETCH_PROFILE_BY_ID,
        FETCH_PROFILE_BY_HANDLE,
        FETCH_PROFILE_POSTS_BY_ID,
        FETCH_PROFILE_POSTS_BY_HANDLE,
        FETCH_REELS_POSTS,
        FETCH_POST_BY_SHORTCODE,
        FETCH_POST_INSIGHTS,
        FETCH_PROFILE_INSIGHTS,
        FETCH_STORY_INSIGHTS,
        FETCH_STORIES_BY_HANDLE,
        FETCH_POST_COMMENTS,
        FETCH_POST_LIKES,
        FETCH_FOLLOWING,
        FETCH_FOLLOWERS,
        FETCH_HASHTAG_POSTS,
        FETCH_TAGGED_POSTS_BY_PROFILE_ID,
        FETCH_STORY_POSTS_BY_PROFILE_ID,
        FETCH_YT_PROFILES,
        FETCH_YT_POSTS,
        FETCH_YT_PLAYLIST_ITEMS,
        FETCH_YT_GENRE_SEARCH,
        FETCH_YT_ACTIVITIES,
        FETCH_YT_SUBSCRIPTIONS,
        FETCH_YT_CHANNEL_POSTS,
        FETCH_YT_SEARCH,
        FETCH_YT_COMMENTS,
        FETCH_YT_PROFILE_INSIGHTS,
        FETCH_ORDERS,
    )
}
