"""ProviderHttp over aiohttp keeps httpx's behaviour: what goes out, and how a compressed answer comes back."""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import json

from providers.http import ProviderHttp

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
