"""``asset_upload_flow`` and ``asset_upload_flow_stories`` (legacy §7): download a media URL, store it, announce it.

Both flow names run ``upload_asset``; they differ only in their topic and concurrency.
A URL stored for the same entity within ``BEAT_ASSET_DEDUPE_WINDOW`` is not fetched
again. An expired CDN link ("URL signature expired") and a download over
``BEAT_ASSET_MAX_BYTES`` are definitive failures, named by their error class. The
``hash`` param is ignored, as the legacy engine ignored it: it is upstream's guard
against re-queuing a URL.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import timedelta

import httpx

from agents.flows.context import FlowContext
from core.settings import Settings
from providers.errors import (
    AssetTooLarge,
    AssetUnavailable,
    NotSupported,
    ProviderTimeout,
    ProviderUnavailable,
    QuotaExceeded,
    UrlSignatureExpired,
)
from providers.http import retry_after_seconds
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

SOURCE = "cdn"
EXPIRED_BODY = b"URL signature expired"
# How much of a refused download is read to tell an expired link from another refusal.
ERROR_BODY_LIMIT = 1024
# A CDN edge that failed (5xx, connection reset) usually answers the next try; a
# timeout is not retried, since it already used the whole download budget.
DOWNLOAD_TRIES = 3
RETRY_WAIT = 1.0
MAX_CONNECTIONS = 100


@dataclass(frozen=True, slots=True)
class Download:
    body: bytes
    content_type: str | None


class AssetDownloader:
    """Streams one URL into memory under a size cap and a deadline; failures become provider errors.

    ``cdn_base_urls`` maps a host to a base URL that serves it instead (the sandbox, a proxy):
    ``https://<host>/p?q`` is fetched from ``<base>/p?q``.
    """

    def __init__(self, *, timeout: float, max_bytes: int, cdn_base_urls: dict[str, str]) -> None:
        self._timeout = timeout
        self._max_bytes = max_bytes
        self._bases = {host.lower(): base.rstrip("/") for host, base in cdn_base_urls.items()}
        self._client = httpx.AsyncClient(
            timeout=httpx.Timeout(timeout),
            limits=httpx.Limits(max_connections=MAX_CONNECTIONS, max_keepalive_connections=MAX_CONNECTIONS),
            follow_redirects=True,
        )

    async def aclose(self) -> None:
        await self._client.aclose()

    def resolve(self, url: str) -> tuple[httpx.URL, httpx.URL]:
        """The URL as given, and where it is fetched from."""
        try:
            parsed = httpx.URL(url)
        except httpx.InvalidURL as exc:
            raise NotSupported(f"original_url is not a URL: {exc}", source=SOURCE) from None
        if parsed.scheme not in ("http", "https") or not parsed.host:
            raise NotSupported(
                f"original_url must be an http(s) URL, got {parsed.scheme or 'no'} scheme", source=SOURCE
            )
        base = self._bases.get(parsed.host.lower())
        if base is None:
            return parsed, parsed
        return parsed, httpx.URL(base + parsed.raw_path.decode("ascii"))

    async def fetch(self, url: str) -> Download:
        original, target = self.resolve(url)
        # Errors name the URL without its query: signatures make it long and say nothing.
        where = f"{original.host}{original.path}"
        try:
            async with asyncio.timeout(self._timeout):
                return await self._stream(target, where)
        except TimeoutError:
            raise ProviderTimeout(f"download of {where} took over {self._timeout:g}s", source=SOURCE) from None
        except httpx.TimeoutException as exc:
            raise ProviderTimeout(f"download of {where} timed out", source=SOURCE) from exc
        except httpx.TransportError as exc:
            raise ProviderUnavailable(f"download of {where} failed: {type(exc).__name__}", source=SOURCE) from exc

    async def _stream(self, target: httpx.URL, where: str) -> Download:
        async with self._client.stream("GET", target) as response:
            if response.status_code != 200:
                head = await _read_at_most(response, ERROR_BODY_LIMIT)
                _raise_for(response, head, where)
            declared = response.headers.get("content-length")
            if declared is not None and declared.isdigit() and int(declared) > self._max_bytes:
                raise AssetTooLarge(
                    f"{where} is {int(declared)} bytes, over the {self._max_bytes}-byte cap", source=SOURCE
                )
            # Counted as it arrives: a Content-Length may be absent, or wrong.
            chunks: list[bytes] = []
            size = 0
            async for chunk in response.aiter_bytes():
                size += len(chunk)
                if size > self._max_bytes:
                    raise AssetTooLarge(
                        f"{where} exceeded the {self._max_bytes}-byte cap while downloading", source=SOURCE
                    )
                chunks.append(chunk)
        body = b"".join(chunks)
        if len(body) <= ERROR_BODY_LIMIT and body.strip() == EXPIRED_BODY:
            raise UrlSignatureExpired(f"{where}: URL signature expired", source=SOURCE)
        return Download(body, response.headers.get("content-type"))


async def _read_at_most(response: httpx.Response, limit: int) -> bytes:
    head = b""
    async for chunk in response.aiter_bytes():
        head += chunk
        if len(head) >= limit:
            break
    return head[:limit]


def _raise_for(response: httpx.Response, head: bytes, where: str) -> None:
    status = response.status_code
    if head.strip() == EXPIRED_BODY:
        raise UrlSignatureExpired(f"{where}: URL signature expired", source=SOURCE)
    if status == 429:
        raise QuotaExceeded(f"{where} answered 429", source=SOURCE, retry_after=retry_after_seconds(response.headers))
    if status >= 500:
        raise ProviderUnavailable(f"{where} answered {status}", source=SOURCE)
    raise AssetUnavailable(f"{where} answered {status}", source=SOURCE)


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
