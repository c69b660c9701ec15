"""``asset_upload_flow`` and ``asset_upload_flow_stories`` (legacy §7): download a media URL, store it, announce it.

Both flow names run ``upload_asset``; they differ only in their topic and concurrency.
A URL stored for the same entity within ``BEAT_ASSET_DEDUPE_WINDOW`` is not fetched
again. An expired CDN link ("URL signature expired") and a download over
``BEAT_ASSET_MAX_BYTES`` are definitive failures, named by their error class. The
``hash`` param is ignored, as the legacy engine ignored it: it is upstream's guard
against re-queuing a URL.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta

from agents.flows.context import FlowContext
from core.settings import Settings
from providers.cdn.downloader import SOURCE, AssetDownloader, Download
from providers.errors import NotSupported, ProviderUnavailable, QuotaExceeded
from sinks.assets import (
    AssetStore,
    asset_extension,
    asset_key,
    content_type_of,
    open_asset_store,
)
from topics.models import Asset, Platform, utcnow
from topics.params import AssetParams

log = logging.getLogger(__name__)

# A CDN edge that failed (5xx, connection reset) usually answers the next try; a
# timeout is not retried, since it already used the whole download budget.
DOWNLOAD_TRIES = 3
RETRY_WAIT = 1.0


@dataclass
class AssetRuntime:
    """What the asset flows share in one worker process: the store, the downloader, the dedupe window."""

    store: AssetStore
    downloader: AssetDownloader
    dedupe_window: float

    @classmethod
    async def open(cls, settings: Settings) -> AssetRuntime:
        store = await open_asset_store(settings)
        downloader = AssetDownloader(
            timeout=settings.asset_timeout, max_bytes=settings.asset_max_bytes, cdn_base_urls=settings.cdn_base_urls
        )
        log.info("assets are stored in %s", store.describe())
        return cls(store, downloader, settings.asset_dedupe_window)

    async def aclose(self) -> None:
        await self.downloader.aclose()
        await self.store.aclose()


async def upload_asset(ctx: FlowContext, params: AssetParams) -> dict:
    assets = ctx.assets
    assert assets is not None, "the worker runtime opens the asset store"
    try:
        platform = Platform(params.platform.upper())
    except ValueError:
        raise NotSupported(
            f"platform {params.platform!r} is not one of {', '.join(p.value for p in Platform)}", source=SOURCE
        ) from None
    try:
        # The key is checked before anything is fetched; the extension is settled after.
        provisional = asset_extension(params.asset_type, None, params.original_url)
        asset_key(params.entity_type, platform.value, params.entity_id, provisional)
    except ValueError as exc:
        raise NotSupported(str(exc), source=SOURCE) from None
    ctx.used(SOURCE)

    if assets.dedupe_window > 0 and ctx.queries is not None:
        since = utcnow() - timedelta(seconds=assets.dedupe_window)
        recent = await ctx.queries.recent_asset(params.entity_id, params.original_url, since)
        # Only when the object is still there: a record alone does not make an asset.
        if recent is not None and await assets.store.stat(recent.asset_url) is not None:
            return ctx.summary(
                asset_url=recent.asset_url, content_type=recent.content_type, size=recent.size, deduplicated=True
            )

    download = await _download(ctx, assets.downloader, params.original_url)
    ext = asset_extension(params.asset_type, download.content_type, params.original_url)
    key = asset_key(params.entity_type, platform.value, params.entity_id, ext)
    stored = await assets.store.put(key, download.body, content_type_of(key))
    ctx.emit(
        Asset(
            platform=platform,
            entity_type=params.entity_type,
            entity_id=params.entity_id,
            asset_type=params.asset_type,
            asset_url=stored.key,
            original_url=params.original_url,
            content_type=stored.content_type,
            size=stored.size,
        )
    )
    return ctx.summary(asset_url=stored.key, content_type=stored.content_type, size=stored.size, deduplicated=False)


async def _download(ctx: FlowContext, downloader: AssetDownloader, url: str) -> Download:
    tries = 0
    while True:
        try:
            return await downloader.fetch(url)
        except (ProviderUnavailable, QuotaExceeded):
            tries += 1
            if tries >= DOWNLOAD_TRIES:
                raise
        await ctx.wait(RETRY_WAIT * tries)
