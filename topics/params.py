"""Parameter models of every legacy flow (legacy §2), with the legacy parameter names.

Unknown parameters are rejected, as the legacy dispatcher did with a TypeError,
but here the request is dead-lettered with the validation message instead.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

# A bare host name: it becomes the host of the URL, so a scheme, path, port or userinfo
# in it would send the store's token somewhere else.
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
SHOP_DOMAIN = re.compile(rf"{_LABEL}(?:\.{_LABEL})+")
MAX_DOMAIN_LENGTH = 253  # DNS


def is_shop_domain(store: str) -> bool:
    return len(store) <= MAX_DOMAIN_LENGTH and SHOP_DOMAIN.fullmatch(store) is not None


class Params(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class HandleParams(Params):
    handle: str = Field(min_length=1)


class ProfileIdParams(Params):
    profile_id: str = Field(min_length=1)


class ProfileBasicParams(Params):
    profile_id: str | None = None
    handle: str | None = None

    @model_validator(mode="after")
    def _one_identity(self) -> ProfileBasicParams:
        if not self.profile_id and not self.handle:
            raise ValueError("profile_id or handle is required")
        return self


class ProfileCustomParams(ProfileBasicParams):
    max_posts: int = Field(ge=1)


class ShortcodeParams(Params):
    shortcode: str = Field(min_length=1)


class PostInsightsParams(Params):
    shortcode: str
    handle: str
    post_id: str
    post_type: str


class TaggedPostsParams(Params):
    profile_id: str
    max_posts: int = Field(ge=1)


class StoryInsightsParams(Params):
    story_id: str
    shortcode: str
    profile_id: str
    handle: str


class StoryPostsParams(Params):
    profile_id: str
    handle: str | None = None
    story_ids: list[str] | None = None
    profile_follower: int | None = None
    profile_er: float | None = None
    profile_static_er: float | None = None
    profile_reels_er: float | None = None


class FollowingParams(Params):
    profile_id: str
    cursor: str | None = None


class PostLikesParams(Params):
    shortcode: str
    max_likes: int = 2000
    cursor: str | None = None


class PostCommentsParams(Params):
    shortcode: str
    max_comments: int | None = None
    cursor: str | None = None


class HashtagPostsParams(Params):
    hashtag: str
    max_posts: int = Field(ge=1)
    cursor: str | None = None


class YtProfilesParams(Params):
    channel_ids: list[str] = Field(min_length=1)


class YtPostsParams(Params):
    post_ids: list[str] = Field(min_length=1)
    playlist_id: str | None = None
    category: str | None = None
    topic: str | None = None


class ChannelIdParams(Params):
    channel_id: str


class YtPlaylistParams(Params):
    channel_id: str
    max_posts: int | None = None


class DateFilter(Params):
    start_date: date | None = None
    end_date: date | None = None

    @model_validator(mode="after")
    def _ordered(self) -> DateFilter:
        if self.start_date and self.end_date and self.end_date < self.start_date:
            raise ValueError("end_date is before start_date")
        return self


class YtChannelPostsParams(Params):
    channel_id: str
    filter: DateFilter | None = None
    max_posts: int | None = None


class YtGenreParams(Params):
    category: str
    language: str | None = None


class YtSearchParams(Params):
    job_id: str
    keywords: list[str] = Field(min_length=1)
    start_date: date
    end_date: date
    categorization: bool = True
    frequency: int | None = Field(None, ge=1)

    @model_validator(mode="after")
    def _ordered(self) -> YtSearchParams:
        if self.end_date < self.start_date:
            raise ValueError("end_date is before start_date")
        return self


class YtPostTypeParams(Params):
    post_id: str


class YtActivitiesParams(Params):
    channel_id: str
    max_activities: int | None = None


class YtRelationshipParams(Params):
    channel_id: str
    max_relationship: int | None = None


class GptData(Params):
    handle: str
    name: str | None = None
    bio: str | None = None


class GptDataWithCategory(GptData):
    category: str


class GptParams(Params):
    data: GptData


class GptAudienceAgeGenderParams(Params):
    data: GptDataWithCategory


class OrdersParams(Params):
    store: str = Field(description="the shop's domain, e.g. my-store.myshopify.com")
    limit: int = Field(250, ge=1, le=250)
    updated_at_min: str | None = None
    created_at_min: str | None = None
    created_at_max: str | None = None

    @model_validator(mode="after")
    def _bare_shop_domain(self) -> OrdersParams:
        # The store becomes the host the store's token is sent to: nothing in it may point elsewhere.
        if not is_shop_domain(self.store):
            raise ValueError(
                "store must be a bare shop domain such as my-store.myshopify.com: letters, digits, "
                "dots and hyphens, without a scheme, path, port or userinfo"
            )
        return self


class AssetParams(Params):
    entity_type: str
    entity_id: str
    asset_type: str
    original_url: str
    platform: str
    hash: Any = None


# Sentiment and the collection reports (legacy §11.2, §11.4)


class SentimentComment(Params):
    text: str = Field(min_length=1)
    id: str = Field(min_length=1)


class SentimentParams(Params):
    """A page of comments to judge; the sentiment feed builds it from a page event on ``post_activity_log``."""

    platform: Literal["INSTAGRAM", "YOUTUBE"]
    shortcode: str = Field(min_length=1)
    comments: list[SentimentComment] = Field(min_length=1, max_length=1000)
    page_event_id: str | None = None


class KeywordCollectionParams(Params):
    """Legacy ``keyword_collection_rk`` payload: ``{job_id, keywords[], platform, start_date, end_date}``."""

    job_id: str = Field(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9_.-]+$")
    keywords: list[str] = Field(min_length=1, max_length=100)
    platform: Literal["INSTAGRAM", "YOUTUBE"]
    start_date: date
    end_date: date

    @model_validator(mode="after")
    def _ordered(self) -> KeywordCollectionParams:
        if self.start_date > self.end_date:
            raise ValueError("start_date is after end_date")
        if not all(keyword.strip() for keyword in self.keywords):
            raise ValueError("a keyword is empty")
        return self


class SentimentReportParams(Params):
    """Legacy ``sentiment_collection_report_in_rk`` payload ``{collectionType, collectionId}``, plus the
    collection's ``shortcodes``: Beat cannot resolve a Coffee collection id itself."""

    # The legacy payload's camelCase names.
    collectionType: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.-]+$")
    collectionId: str = Field(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9_.-]+$")
    shortcodes: list[str] | None = Field(None, max_length=10_000)
