"""httpx's client interface over aiohttp's connection pool, for ProviderHttp.

httpcore's pool checks every pooled connection on each request and on each response
close, and its anyio streams add several layers per read and write: with the worker's
200 keep-alive connections that was most of a request's CPU (bench/README.md). aiohttp's
pool and parser cost a fraction of it. Clients and tests keep httpx's types: aiohttp's
errors are raised as the httpx errors httpcore raises for the same failure, so
ProviderHttp classifies them exactly as before (a clean close before the answer is a
RemoteProtocolError, a reset a ReadError, a refusal a ConnectError).

With ``streaming`` the body is not read up front: the response's stream yields aiohttp's chunks as
they arrive, so a reader that stops early (AssetDownloader's size cap) never holds the whole body.
Closing it hands the connection back to the pool when the body was read to its end, and closes the
connection otherwise, as httpcore does.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import httpx

# Most specific first: the first class the error is an instance of decides.
_ERRORS: tuple[tuple[type[BaseException], type[httpx.TransportError]], ...] = (
    (aiohttp.ConnectionTimeoutError, httpx.ConnectTimeout),
    (aiohttp.ServerTimeoutError, httpx.ReadTimeout),
    (TimeoutError, httpx.ReadTimeout),
    (aiohttp.InvalidUrlClientError, httpx.UnsupportedProtocol),
    (aiohttp.ClientConnectorError, httpx.ConnectError),
    (aiohttp.ServerDisconnectedError, httpx.RemoteProtocolError),
    (aiohttp.ClientPayloadError, httpx.RemoteProtocolError),
    (aiohttp.ClientResponseError, httpx.RemoteProtocolError),
    (aiohttp.ClientOSError, httpx.ReadError),
    (aiohttp.ClientConnectionError, httpx.NetworkError),
    (aiohttp.ClientError, httpx.TransportError),
)


def as_httpx_error(exc: BaseException, request: httpx.Request) -> httpx.TransportError | None:
    """The httpx error httpcore raises for the failure aiohttp reported, or None if it is not a transport failure."""
    for aiohttp_class, httpx_class in _ERRORS:
        if isinstance(exc, aiohttp_class):
            return httpx_class(str(exc) or type(exc).__name__, request=request)
    return None


class _AiohttpBodyStream(httpx.AsyncByteStream):
    """An aiohttp response's body as httpx reads a streamed one, its failures as httpx errors."""

    def __init__(self, response: aiohttp.ClientResponse, request: httpx.Request) -> None:
        self._response = response
        self._request = request

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            # Whatever the socket delivered, without re-chunking it.
            async for chunk in self._response.content.iter_any():
                yield chunk
        except Exception as exc:
            mapped = as_httpx_error(exc, self._request)
            if mapped is None:
                raise
            raise mapped from exc

    async def aclose(self) -> None:
        self._response.release()


class AiohttpTransport(httpx.AsyncBaseTransport):
    """Sends each httpx request through one aiohttp session.

    The body is read whole, as ProviderHttp reads it, unless ``streaming``: then it is read as the
    client iterates the response, and the connection is released when the client closes it. With
    ``resend_on_disconnect`` an idempotent request whose connection is closed or reset before the answer
    arrives is sent once more, on a new connection.
    """

    def __init__(self, limits: httpx.Limits, *, streaming: bool = False, resend_on_disconnect: bool = False) -> None:
        self._limits = limits
        self._streaming = streaming
        self._resend_on_disconnect = resend_on_disconnect
        self._session: aiohttp.ClientSession | None = None

    def _opened(self) -> aiohttp.ClientSession:
        # Made on first use: a session belongs to the event loop running when it is made.
        if self._session is None:
            connector = aiohttp.TCPConnector(
                limit=self._limits.max_connections or 0,
                keepalive_timeout=self._limits.keepalive_expiry or 0,
                # Providers are a handful of hosts: resolve each once, as httpcore's pool keeps them.
                ttl_dns_cache=300,
            )
            # httpx decodes the body by its content-encoding itself, and its headers go out as given.
            self._session = aiohttp.ClientSession(connector=connector, auto_decompress=False, skip_auto_headers=())
            # aiohttp sends an idempotent request once more, unseen, when its connection fails before the answer
            # (a pooled one the server had closed, or any reset). ProviderHttp repeats such a GET itself, in a
            # rate-limit slot and a trace of its own, so the provider never gets more calls than the limiter
            # granted (tests/test_http_retry.py counts the connections). A client
            # with no limiter wants the resend (``resend_on_disconnect``): it stands in for httpcore's check that
            # a pooled connection was not closed by the server before it is used. aiohttp offers no argument for
            # it; the attribute is read on every request.
            self._session._retry_connection = self._resend_on_disconnect
        return self._session

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        try:
            sending = self._send(request)
            stream: httpx.AsyncByteStream
            if self._streaming:
                response = await sending
                stream = _AiohttpBodyStream(response, request)
            else:
                async with sending as response:
                    stream = httpx.ByteStream(await response.read())
        except Exception as exc:
            mapped = as_httpx_error(exc, request)
            if mapped is None:
                raise
            raise mapped from exc
        extensions = {"http_version": b"HTTP/1.1"}
        if response.reason:
            extensions["reason_phrase"] = response.reason.encode()
        return httpx.Response(
            response.status,
            headers=response.raw_headers,
            stream=stream,
            request=request,
            extensions=extensions,
        )

    def _send(self, request: httpx.Request) -> aiohttp.client._RequestContextManager:
        timeout = request.extensions.get("timeout", {})
        return self._opened().request(
            request.method,
            str(request.url),
            headers=request.headers.multi_items(),
            data=request.content or None,
            allow_redirects=False,
            compress=False,
            timeout=aiohttp.ClientTimeout(
                total=None,
                connect=timeout.get("pool"),
                sock_connect=timeout.get("connect"),
                sock_read=timeout.get("read"),
            ),
        )

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
