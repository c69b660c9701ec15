"""What each legacy table (legacy §11.7, ORM columns included) becomes in Beat: its columns, the Beat
table and upsert rules it is written under, and how one legacy row turns into one Beat row.

The Beat tables are the sink's own ``UpsertTable`` specs (``sinks.instagram``, ``sinks.youtube``, …),
with the legacy columns no event feeds added (``on_gcc``, ``gplsuid``, ``er12p``, ``created_at`` …), and
every key returned, so an import counts what it changed. A legacy row's ``updated_at`` (else its
``created_at``) is its observation time, so duplicates merge newer-wins and a legacy row never overwrites
what Beat observed later; a row with neither is dated ``UNDATED`` and only fills empty columns.

Columns not carried: every table's ``id`` (Beat keys rows by their natural key and numbers its own rows;
``scrape_request_log.id`` is the exception, kept as text), and ``instagram_account.avg_*`` (the legacy
engine never maintained them, legacy §11.9: Beat recomputes them from the imported posts).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sinks import instagram, pictures, shopify, youtube
from sinks.assets import CONTENT_TYPES
from sinks.upsert import Column, Rule, UpsertTable, columns

UNDATED = datetime(1970, 1, 1, tzinfo=UTC)

# How a legacy column is read. The legacy sends each row as one JSON object of its non-null values, so
# numbers, booleans and arrays arrive typed; what JSON cannot type is converted here.
TEXT, INT, FLOAT, BOOL, TIME, JSON, TEXTS = "text", "int", "float", "bool", "time", "json", "texts"


class Refused(ValueError):
    """A legacy row that cannot become a Beat row; the message is the reason, counted per reason."""


# A jsonb value travels as its text, so the stripping of null members spares what it holds.
CONVERTERS: dict[str, Callable[[Any], Any]] = {TIME: datetime.fromisoformat, JSON: json.loads}


def select_expression(name: str, kind: str) -> str:
    """The SELECT expression of a legacy column, aliased to its name: a naive timestamp is read in the
    session's time zone (the legacy's)."""
    quoted = '"' + name + '"'
    if kind == TIME:
        return f"{quoted}::timestamptz AS {quoted}"
    if kind == JSON:
        return f"{quoted}::text AS {quoted}"
    return quoted


@dataclass(frozen=True)
class LegacyTable:
    """One legacy table: ``columns`` (legacy name -> kind) as read, ``target`` the Beat table written."""

    name: str
    columns: dict[str, str]
    target: UpsertTable
    convert: Callable[[dict[str, Any]], dict[str, Any]]


def _importing(table: UpsertTable, *extra: Column, returning: tuple[str, ...] = ()) -> UpsertTable:
    """The sink's table spec with the legacy-only columns, returning the key (and ``returning``) of every
    row a batch changed, and watching nothing (an imported picture is already in ``asset_log``)."""
    return dataclasses.replace(
        table,
        columns=(*table.columns, *extra),
        returning=tuple(dict.fromkeys((*table.key, *returning))),
        watch=(),
    )


_CREATED = Column("created_at", "timestamptz", Rule.ONCE)


def _observed(row: dict[str, Any]) -> datetime:
    return row.get("updated_at") or row.get("created_at") or UNDATED


def _carry(row: dict[str, Any], key: str, names: frozenset[str]) -> dict[str, Any]:
    """The row's values of ``names`` (a parsed row holds only its non-null values, and a column no row of a
    batch has is left out of its statement), the key required, the observation and first-seen times."""
    if not row.get(key):
        raise Refused(f"no {key}")
    out = {name: value for name, value in row.items() if name in names}
    out["observed_at"] = _observed(row)
    out["created_at"] = row.get("created_at") or out["observed_at"]
    return out


def _carrying(key: str, names: tuple[str, ...]) -> Callable[[dict[str, Any]], dict[str, Any]]:
    carried = frozenset(names)
    return lambda row: _carry(row, key, carried)


# instagram_account

_IG_ACCOUNT_TEXTS = (
    "profile_id",
    "handle",
    "full_name",
    "profile_type",
    "biography",
    "profile_pic_url",
    "category",
    "category_id",
    "fbid",
)
_IG_ACCOUNT_COUNTS = ("followers", "following", "media_count")
_IG_ACCOUNT_FLAGS = ("is_business_or_creator", "is_creator", "is_private", "is_verified")
_IG_ACCOUNT_LEGACY_FLAGS = ("is_in_gcc_collection", "on_gcc")

IG_ACCOUNT = LegacyTable(
    "instagram_account",
    {
        **dict.fromkeys(_IG_ACCOUNT_TEXTS, TEXT),
        **dict.fromkeys(_IG_ACCOUNT_COUNTS, INT),
        **dict.fromkeys((*_IG_ACCOUNT_FLAGS, *_IG_ACCOUNT_LEGACY_FLAGS), BOOL),
        **dict.fromkeys(("created_at", "updated_at", "refreshed_at"), TIME),
    },
    _importing(instagram.ACCOUNT, *columns("boolean", *_IG_ACCOUNT_LEGACY_FLAGS), _CREATED),
    _carrying(
        "profile_id",
        (*_IG_ACCOUNT_TEXTS, *_IG_ACCOUNT_COUNTS, *_IG_ACCOUNT_FLAGS, *_IG_ACCOUNT_LEGACY_FLAGS, "refreshed_at"),
    ),
)

# instagram_post: every legacy column has a Beat column of the same name.

_IG_POST_COUNTS = tuple(instagram.POST_COUNTS[key] for key in instagram.POST_COUNTS if key != "views")
_IG_POST_ONCE_COUNTS = tuple(instagram.STORY_PROFILE_COUNTS.values())
_IG_POST_RATES = ("engagement", *instagram.STORY_PROFILE_RATES.values())

IG_POST = LegacyTable(
    "instagram_post",
    {
        "shortcode": TEXT,
        **dict.fromkeys(instagram.POST_TEXTS, TEXT),
        **dict.fromkeys((*_IG_POST_COUNTS, *_IG_POST_ONCE_COUNTS), INT),
        **dict.fromkeys(_IG_POST_RATES, FLOAT),
        **dict.fromkeys(("story_links", "story_hashtags"), TEXTS),
        **dict.fromkeys(("created_at", "updated_at", "publish_time"), TIME),
    },
    _importing(instagram.POST, _CREATED, returning=("profile_id", "post_type")),
    _carrying(
        "shortcode",
        (
            "shortcode",
            *instagram.POST_TEXTS,
            *_IG_POST_COUNTS,
            *_IG_POST_ONCE_COUNTS,
            *_IG_POST_RATES,
            "story_links",
            "story_hashtags",
            "publish_time",
        ),
    ),
)

IG_INSIGHTS = LegacyTable(
    "instagram_profile_insights",
    {
        "profile_id": TEXT,
        "handle": TEXT,
        **dict.fromkeys(instagram.AUDIENCE_COLUMNS, JSON),
        **dict.fromkeys(("created_at", "updated_at"), TIME),
    },
    _importing(instagram.PROFILE_INSIGHTS, _CREATED),
    _carrying("profile_id", ("profile_id", "handle", *instagram.AUDIENCE_COLUMNS)),
)

# youtube_account: the legacy columns no event feeds are written too.

_YT_ACCOUNT_LEGACY_TEXTS = ("gplsuid", "yt_category_id", "yt_category", "locale")
_YT_ACCOUNT_TEXTS = ("channel_id", *youtube.ACCOUNT_TEXTS, "username", *_YT_ACCOUNT_LEGACY_TEXTS)
_YT_ACCOUNT_COUNTS = (*youtube.ACCOUNT_COUNTS.values(), "shorts")

YT_ACCOUNT = LegacyTable(
    "youtube_account",
    {
        **dict.fromkeys(_YT_ACCOUNT_TEXTS, TEXT),
        **dict.fromkeys(_YT_ACCOUNT_COUNTS, INT),
        "er12p": FLOAT,
        **dict.fromkeys(("is_subscriber_count_hidden", "is_verified"), BOOL),
        **dict.fromkeys(("created_at", "updated_at", "published_at"), TIME),
    },
    _importing(
        youtube.ACCOUNT,
        *columns("text", *_YT_ACCOUNT_LEGACY_TEXTS),
        Column("shorts", "bigint"),
        Column("er12p", "double precision"),
        _CREATED,
    ),
    _carrying(
        "channel_id",
        (
            *_YT_ACCOUNT_TEXTS,
            *_YT_ACCOUNT_COUNTS,
            "er12p",
            "is_subscriber_count_hidden",
            "is_verified",
            "published_at",
        ),
    ),
)

YT_POST = LegacyTable(
    "youtube_post",
    {
        "shortcode": TEXT,
        **dict.fromkeys(youtube.POST_TEXTS, TEXT),
        **dict.fromkeys(youtube.POST_COUNTS.values(), INT),
        "is_licensed": BOOL,
        **dict.fromkeys(("created_at", "updated_at", "published_at"), TIME),
    },
    _importing(youtube.POST, _CREATED),
    _carrying(
        "shortcode",
        ("shortcode", *youtube.POST_TEXTS, *youtube.POST_COUNTS.values(), "is_licensed", "published_at"),
    ),
)

_YT_AUDIENCE = ("country", "city", "gender_age")

YT_INSIGHTS = LegacyTable(
    "youtube_profile_insights",
    {"channel_id": TEXT, **dict.fromkeys(_YT_AUDIENCE, JSON), **dict.fromkeys(("created_at", "updated_at"), TIME)},
    _importing(youtube.PROFILE_INSIGHTS, _CREATED),
    _carrying("channel_id", ("channel_id", *_YT_AUDIENCE)),
)

# asset_log: the legacy stored no content type; its uploads said ``image/jpg`` for a .jpg (legacy §7). Beat's
# column gets the standard type of the stored key's extension. A MIME type found in ``asset_type`` is read
# the same way.

_ASSET_TEXTS = ("entity_id", "entity_type", "platform", "asset_type", "asset_url", "original_url")
_ASSET_NAMES = frozenset(_ASSET_TEXTS)
_NONSTANDARD_TYPES = {"image/jpg": "image/jpeg", "image/pjpeg": "image/jpeg"}


def _asset_row(row: dict[str, Any]) -> dict[str, Any]:
    out = _carry(row, "entity_id", _ASSET_NAMES)
    kind = out.get("asset_type")
    content_type = None
    if kind and "/" in kind:
        content_type = _NONSTANDARD_TYPES.get(kind.lower(), kind.lower())
        out["asset_type"] = "VIDEO" if content_type.startswith("video/") else "IMAGE"
    url = out.get("asset_url") or ""
    extension = url.rsplit(".", 1)[-1].lower() if "." in url.rsplit("/", 1)[-1] else ""
    content_type = CONTENT_TYPES.get("jpg" if extension == "jpeg" else extension, content_type)
    if content_type:
        out["content_type"] = content_type
    return out


ASSETS = LegacyTable(
    "asset_log",
    {**dict.fromkeys(_ASSET_TEXTS, TEXT), **dict.fromkeys(("created_at", "updated_at"), TIME)},
    _importing(pictures.ASSET_LOG, _CREATED),
    _asset_row,
)

_ORDER_TEXTS = ("platform_order_id", *shopify.ORDER_TEXTS, "utm_params", "store", "platform")

ORDERS = LegacyTable(
    "order",
    {
        **dict.fromkeys(_ORDER_TEXTS, TEXT),
        "order_data": JSON,
        **dict.fromkeys(("created_at", "updated_at"), TIME),
    },
    _importing(shopify.ORDER, _CREATED),
    _carrying("platform_order_id", (*_ORDER_TEXTS, "order_data")),
)

# Accounts before posts: the posts' batches recompute their accounts' derived columns.
ENTITY_TABLES = (IG_ACCOUNT, IG_POST, IG_INSIGHTS, YT_ACCOUNT, YT_POST, YT_INSIGHTS, ASSETS, ORDERS)
