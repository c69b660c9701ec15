"""ProviderHttp over aiohttp keeps httpx's behaviour: what goes out, how a compressed answer comes back, and how a
streamed body is read, cut short and released."""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import json

import httpx
import pytest

from providers.http import ProviderHttp
from providers.http_transport import AiohttpTransport

SOURCE = "rapidapi-jotucker"


async def test_the_request_goes_out_as_given_and_a_gzip_answer_is_decoded():
    seen: list[bytes] = []
    body = gzip.compress(json.dumps({"name": "café"}).encode())

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(asyncio.IncompleteReadError):  # the client closed its connection
            while True:  # keep-alive: every request on the connection
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.split(b"\r\n")
                length = next((int(line.split(b":")[1]) for line in lines if line.startswith(b"content-length")), 0)
                seen.append(head + await reader.readexactly(length))
                writer.write(
                    b"HTTP/1.1 201 Created\r\ncontent-type: application/json\r\ncontent-encoding: gzip\r\n"
                    b"content-length: %d\r\n\r\n%s" % (len(body), body)
                )
                await writer.drain()

    listener = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = listener.sockets[0].getsockname()[1]
    http = ProviderHttp(base_urls={SOURCE: f"http://127.0.0.1:{port}"}, timeout=2.0)
    try:
        got = await http.request(SOURCE, "GET", "/info", params={"user": "a b"}, headers={"X-Key": "secret"})
        posted = await http.request(SOURCE, "POST", "/form", json={"n": 1})
    finally:
        await http.aclose()
        listener.close()

    assert (got.status_code, got.reason_phrase, got.json()) == (201, "Created", {"name": "café"})
    assert posted.json() == {"name": "café"}
    get_lines, post_lines = (request.split(b"\r\n") for request in seen)
    assert get_lines[0] == b"GET /info?user=a+b HTTP/1.1"
    assert b"x-key: secret" in get_lines
    assert post_lines[0] == b"POST /form HTTP/1.1"
    assert post_lines[-1] == b'{"n":1}'
    assert b"content-type: application/json" in post_lines


async def test_a_streamed_body_arrives_as_sent_and_its_connection_is_reused_only_when_read_to_the_end():
    connections = 0
    paced = asyncio.Event()
    endless_sent = 0
    endless_dropped = asyncio.Event()
    endless_total = 64 * 2**20

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections, endless_sent
        connections += 1
        with contextlib.suppress(asyncio.IncompleteReadError):  # the client closed its connection
            while True:
                path = (await reader.readuntil(b"\r\n\r\n")).split(b" ")[1]
                if path == b"/whole":
                    writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nwhole")
                elif path == b"/paced":
                    writer.write(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nfirst\r\n")
                    await writer.drain()
                    await paced.wait()  # the rest only once the client has the first chunk
                    writer.write(b"6\r\nsecond\r\n0\r\n\r\n")
                elif path == b"/endless":
                    writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n" % endless_total)
                    try:
                        while endless_sent < endless_total:
                            writer.write(b"x" * 65536)
                            endless_sent += 65536
                            await writer.drain()
                    except ConnectionError:
                        endless_dropped.set()
                        return
                else:  # cut: the connection ends 10 bytes into a 100-byte body
                    writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n0123456789")
                    await writer.drain()
                    writer.close()
                    return
                await writer.drain()

    listener = await asyncio.start_server(handle, "127.0.0.1", 0)
    base = f"http://127.0.0.1:{listener.sockets[0].getsockname()[1]}"
    client = httpx.AsyncClient(transport=AiohttpTransport(httpx.Limits(), streaming=True), timeout=2.0)
    try:
        async with client.stream("GET", f"{base}/paced") as response:
            chunks = response.aiter_raw()
            assert await anext(chunks) == b"first"
            paced.set()
            assert b"".join([chunk async for chunk in chunks]) == b"second"
        assert (await client.get(f"{base}/whole")).content == b"whole"
        assert connections == 1  # read to its end, the streamed answer's connection served the next request

        received = 0
        async with client.stream("GET", f"{base}/endless") as response:
            async for chunk in response.aiter_raw():
                received += len(chunk)
                if received > 100_000:
                    break
        await asyncio.wait_for(endless_dropped.wait(), 2.0)
        assert endless_sent < endless_total / 4  # stopped early: the body was never read whole
        assert (await client.get(f"{base}/whole")).content == b"whole"
        assert connections == 2  # the half-read connection was closed, not pooled

        async with client.stream("GET", f"{base}/cut") as response:
            with pytest.raises(httpx.RemoteProtocolError):
                await response.aread()
    finally:
        await client.aclose()
        listener.close()


async def test_a_request_dropped_before_its_answer_is_resent_only_when_asked():
    attempts = 0

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal attempts
        await reader.readuntil(b"\r\n\r\n")
        attempts += 1
        if attempts % 2:  # every other request: the connection ends without an answer
            writer.close()
            return
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok")
        await writer.drain()
        writer.close()

    listener = await asyncio.start_server(handle, "127.0.0.1", 0)
    url = f"http://127.0.0.1:{listener.sockets[0].getsockname()[1]}/a.jpg"
    resending = httpx.AsyncClient(transport=AiohttpTransport(httpx.Limits(), resend_on_disconnect=True), timeout=2.0)
    plain = httpx.AsyncClient(transport=AiohttpTransport(httpx.Limits()), timeout=2.0)
    try:
        assert (await resending.get(url)).content == b"ok"
        assert attempts == 2
        with pytest.raises(httpx.RemoteProtocolError):
            await plain.get(url)
        assert attempts == 3
    finally:
        await resending.aclose()
        await plain.aclose()
        listener.close()
