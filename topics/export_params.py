"""Parameters of the eleven CSV exports (legacy §2.3, §11.2), under their legacy names.

Every export took ``scrape_id`` from the legacy dispatcher; Beat names the job after the request's own id,
so a ``scrape_id`` sent by a legacy caller is accepted and ignored. An id list comes inline (``channel_ids``)
or as the URL of a CSV whose first column holds the ids under a header row (``channel_ids_path``), as the
legacy's ClickHouse ``url(path, 'CSVWithNames')`` read it; exactly one of the two is required.
"""

from __future__ import annotations

from datetime import date
from enum import Enum
from typing import Any

from pydantic import Field, model_validator

from topics.params import Params

# An inline list goes into the request's record and every status of it; a longer one belongs in a CSV.
MAX_INLINE_IDS = 5000


class ExportParams(Params):
    scrape_id: Any = None


def _one_of(params: Params, inline: str, path: str) -> None:
    if bool(getattr(params, inline)) == bool(getattr(params, path)):
        raise ValueError(f"exactly one of {inline} and {path} is required")


def _ordered(start: date | None, end: date | None) -> None:
    if start and end and end < start:
        raise ValueError("end_date is before start_date")


class ChannelIdsParams(ExportParams):
    channel_ids: list[str] | None = Field(None, max_length=MAX_INLINE_IDS)
    channel_ids_path: str | None = None

    @model_validator(mode="after")
    def _ids(self) -> ChannelIdsParams:
        _one_of(self, "channel_ids", "channel_ids_path")
        return self


class ChannelRangeParams(ChannelIdsParams):
    start_date: date
    end_date: date

    @model_validator(mode="after")
    def _range(self) -> ChannelRangeParams:
        _ordered(self.start_date, self.end_date)
        return self


class ChannelVideosParams(ChannelRangeParams):
    max_posts: int = Field(500, ge=1)


class FilterBy(str, Enum):
    CHANNEL_GCC_CATEGORY = "channel_gcc_category"
    CHANNEL_YT_CATEGORY = "channel_yt_category"


class EngagementParams(ChannelRangeParams):
    filter_by: FilterBy


class VideoIdsParams(ExportParams):
    video_ids: list[str] | None = Field(None, max_length=MAX_INLINE_IDS)
    video_ids_path: str | None = None

    @model_validator(mode="after")
    def _ids(self) -> VideoIdsParams:
        _one_of(self, "video_ids", "video_ids_path")
        return self


class PlaylistParams(ExportParams):
    playlist_ids: list[str] | None = Field(None, max_length=MAX_INLINE_IDS)
    playlist_ids_path: str | None = None

    @model_validator(mode="after")
    def _ids(self) -> PlaylistParams:
        _one_of(self, "playlist_ids", "playlist_ids_path")
        return self


class KeywordVideosParams(ExportParams):
    keywords: list[str] | None = Field(None, max_length=MAX_INLINE_IDS)
    keywords_list_path: str | None = None
    start_date: date
    end_date: date
    frequency: int | None = Field(None, ge=1)

    @model_validator(mode="after")
    def _valid(self) -> KeywordVideosParams:
        _one_of(self, "keywords", "keywords_list_path")
        _ordered(self.start_date, self.end_date)
        return self
