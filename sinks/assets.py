"""Where assets are stored: the legacy key layout, content types, and the two interchangeable stores.

Keys follow the legacy layout ``assets/{entity_type}s/{platform}/{entity_id}.{ext}`` (legacy §7),
with standard content types (``image/jpeg``, not the legacy ``image/jpg``). With an S3 bucket
configured the store is S3 (``sinks.s3_store``); without one, a local directory laid out like
the keys (``sinks.local_store``, the embedded default).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Protocol
from urllib.parse import urlsplit

from core.settings import Settings
from topics.errors import BeatError, Decision

CONTENT_TYPES = {"jpg": "image/jpeg", "png": "image/png", "webp": "image/webp", "mp4": "video/mp4"}
# What a response's Content-Type says about an image's extension.
_IMAGE_EXTENSIONS = {
    "image/jpeg": "jpg",
    "image/jpg": "jpg",
    "image/pjpeg": "jpg",
    "image/png": "png",
    "image/webp": "webp",
}
_SUFFIXES = {".jpg": "jpg", ".jpeg": "jpg", ".png": "png", ".webp": "webp"}


class AssetStoreError(BeatError):
    """The store refused or failed a read or a write."""

    decision = Decision.TRANSIENT


@dataclass(frozen=True, slots=True)
class StoredAsset:
    key: str
    size: int
    content_type: str


class Upload(Protocol):
    """An object written chunk by chunk (a report streamed from Postgres): whole once ``complete`` returns, never
    seen half-written, and gone without a trace after ``abort``."""

    async def write(self, chunk: bytes) -> None: ...

    async def complete(self) -> str:
        """Finish the object; where it landed (``s3://bucket/key``, or the local file's path)."""
        ...

    async def abort(self) -> None: ...


class AssetStore(Protocol):
    def describe(self) -> str: ...

    async def open_upload(self, key: str, content_type: str) -> Upload: ...

    async def put(self, key: str, body: bytes, content_type: str) -> StoredAsset: ...

    async def stat(self, key: str) -> StoredAsset | None: ...

    async def aclose(self) -> None: ...


def asset_extension(asset_type: str, content_type: str | None, url: str) -> str:
    """The file extension of an asset: a video is mp4; an image's comes from the response's Content-Type,
    then the URL path's suffix, then the legacy substring rule (jpg/jpeg, webp, else png)."""
    kind = asset_type.upper()
    if kind == "VIDEO":
        return "mp4"
    if kind != "IMAGE":
        raise ValueError(f"asset_type must be IMAGE or VIDEO, got {asset_type!r}")
    if content_type:
        declared = _IMAGE_EXTENSIONS.get(content_type.split(";", 1)[0].strip().lower())
        if declared:
            return declared
    suffix = _SUFFIXES.get(PurePosixPath(urlsplit(url).path).suffix.lower())
    if suffix:
        return suffix
    lowered = url.lower()
    if "jpg" in lowered or "jpeg" in lowered:
        return "jpg"
    if "webp" in lowered:
        return "webp"
    return "png"


def asset_key(entity_type: str, platform: str, entity_id: str, ext: str) -> str:
    """``assets/{entity_type}s/{platform}/{entity_id}.{ext}``; the legacy code appends "s" to any type."""
    if not entity_id or entity_id.startswith(".") or "/" in entity_id or "\\" in entity_id:
        raise ValueError(f"entity_id {entity_id!r} cannot name a stored asset")
    if ext not in CONTENT_TYPES:
        raise ValueError(f"extension {ext!r} is not one of {', '.join(CONTENT_TYPES)}")
    return f"assets/{entity_type.lower()}s/{platform.lower()}/{entity_id}.{ext}"


def content_type_of(key: str) -> str:
    return CONTENT_TYPES[PurePosixPath(key).suffix.lstrip(".").lower()]


async def open_asset_store(settings: Settings) -> AssetStore:
    # Imported here: both stores import this module's types.
    if settings.s3_bucket:
        from sinks.s3_store import S3AssetStore

        secret = settings.s3_secret_access_key
        return await S3AssetStore.open(
            bucket=settings.s3_bucket,
            endpoint_url=settings.s3_endpoint_url,
            region=settings.s3_region,
            access_key_id=settings.s3_access_key_id,
            secret_access_key=secret.get_secret_value() if secret else None,
            timeout=settings.asset_timeout,
        )
    from sinks.local_store import LocalAssetStore

    return LocalAssetStore(settings.asset_dir or settings.data_dir / "assets")
