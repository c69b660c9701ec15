"""Media downloads from the platforms' CDNs (source ``cdn``): one URL into memory, under a size cap and a
deadline, its failures as typed provider errors.

An expired CDN link ("URL signature expired") and a download over the cap are definitive failures, named
by their error class; a 5xx, a 429 and a lost connection are transient, and whether to try again is the
caller's.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import httpx

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
from providers.http_transport import AiohttpTransport

SOURCE = "cdn"
EXPIRED_BODY = b"URL signature expired"
# How much of a refused download is read to tell an expired link from another refusal.
ERROR_BODY_LIMIT = 1024
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
        limits = httpx.Limits(max_connections=MAX_CONNECTIONS, max_keepalive_connections=MAX_CONNECTIONS)
        # aiohttp's pool under httpx's interface, streamed so the cap stops a download as it arrives: httpcore's
        # pool cost most of a download's CPU, as it did ProviderHttp's (bench/README.md). Media hosts close
        # keep-alive connections at will and a GET is safe to repeat, so one whose connection drops before the
        # answer is sent again on a new connection; a host that keeps failing still ends in ProviderUnavailable.
        self._client = httpx.AsyncClient(
            timeout=httpx.Timeout(timeout),
            transport=AiohttpTransport(limits, streaming=True, resend_on_disconnect=True),
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
