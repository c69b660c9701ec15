"""Within an attempt, a GET whose connection was lost is sent once more on the same source; nothing else is."""

from __future__ import annotations

import asyncio
import socket
import struct
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest

from providers.errors import ProviderTimeout, ProviderUnavailable
from providers.http import ProviderHttp

SOURCE = "rapidapi-jotucker"
OK = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}"


class FlakyServer:
    """A loopback HTTP server that resets the first ``resets`` connections once a request arrives (the
    client reads a connection reset), or closes them cleanly without an answer when ``clean`` is set
    (a keep-alive connection the server closed just as the client reused it), hangs when ``hang``
    is set, and answers 200 otherwise."""

    def __init__(self, resets: int, hang: bool = False, clean: bool = False) -> None:
        self.resets = resets
        self.hang = hang
        self.clean = clean
        self.connections = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        await reader.readuntil(b"\r\n\r\n")
        if self.connections <= self.resets and self.clean:
            writer.close()
            return
        if self.connections <= self.resets:
            sock = writer.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            writer.transport.abort()
            return
        if self.hang:
            await asyncio.sleep(5)
        writer.write(OK)
        await writer.drain()
        writer.close()


@asynccontextmanager
async def serving(server: FlakyServer) -> AsyncIterator[ProviderHttp]:
    listener = await asyncio.start_server(server.handle, "127.0.0.1", 0)
    port = listener.sockets[0].getsockname()[1]
    http = ProviderHttp(base_urls={SOURCE: f"http://127.0.0.1:{port}"}, timeout=0.5)
    try:
        yield http
    finally:
        await http.aclose()
        listener.close()


async def test_a_get_that_lost_its_connection_is_sent_once_more():
    server = FlakyServer(resets=1)
    async with serving(server) as http:
        response = await http.request(SOURCE, "GET", "/media_likers")
    assert response.status_code == 200
    assert server.connections == 2


async def test_a_get_that_loses_it_twice_fails_over_to_the_next_source():
    server = FlakyServer(resets=5)
    async with serving(server) as http:
        with pytest.raises(ProviderUnavailable, match="ReadError"):
            await http.request(SOURCE, "GET", "/media_likers")
    assert server.connections == 2


async def test_a_connection_closed_before_the_answer_is_a_protocol_error_sent_once_more():
    server = FlakyServer(resets=5, clean=True)
    async with serving(server) as http:
        with pytest.raises(ProviderUnavailable, match="RemoteProtocolError"):
            await http.request(SOURCE, "GET", "/media_likers")
    assert server.connections == 2


async def test_a_refused_connection_is_a_connect_error():
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    listener.close()  # nothing listens on the port any more
    http = ProviderHttp(base_urls={SOURCE: f"http://127.0.0.1:{port}"}, timeout=0.5)
    try:
        with pytest.raises(ProviderUnavailable, match="ConnectError") as raised:
            await http.request(SOURCE, "GET", "/media_likers")
    finally:
        await http.aclose()
    assert isinstance(raised.value.__cause__, httpx.ConnectError)


async def test_a_post_is_never_sent_twice():
    server = FlakyServer(resets=1)
    async with serving(server) as http:
        with pytest.raises(ProviderUnavailable):
            await http.request(SOURCE, "POST", "/media_likers", json={})
    assert server.connections == 1


async def test_a_timeout_is_not_repeated():
    server = FlakyServer(resets=0, hang=True)
    async with serving(server) as http:
        with pytest.raises(ProviderTimeout):
            await http.request(SOURCE, "GET", "/media_likers")
    assert server.connections == 1
