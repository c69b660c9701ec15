"""The sandbox's CDN: ``GET /cdn/<path>`` serves what ``cdn.py`` URLs point at.

``BEAT_CDN_BASE_URLS`` maps the CDN host to ``<sandbox url>/cdn``, so a URL such as
``https://scontent-bom1-1.cdninstagram.com/v/t51.2885-15/x_n.jpg?…`` is fetched from
``<sandbox url>/cdn/v/t51.2885-15/x_n.jpg?…``. A valid URL gets small bytes, the same
for the same path, that begin like the real format (JPEG, PNG, WebP, MP4) and carry its
Content-Type. An expired or wrongly signed URL gets 403 with the body "URL signature
expired", as Instagram's CDN answers.
"""

from __future__ import annotations

import hashlib
import random
import struct
import time
import zlib

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Mount, Route

from providers.sandbox import cdn

PREFIX = "/cdn"
EXPIRED_BODY = "URL signature expired"

# Sizes the sandbox's media come in, bytes: enough to stream in several chunks, small
# enough that thousands of demo downloads stay cheap.
IMAGE_SIZES = (4_000, 16_000)
VIDEO_SIZES = (40_000, 120_000)


def _rng(path: str) -> random.Random:
    return random.Random(hashlib.blake2b(path.encode(), digest_size=16).digest())


def _segments(marker: bytes, payload: bytes, limit: int = 65_533) -> bytes:
    """JPEG marker segments of at most ``limit`` payload bytes each (the length field is 16 bits)."""
    out = bytearray()
    for start in range(0, len(payload), limit):
        piece = payload[start : start + limit]
        out += marker + struct.pack(">H", len(piece) + 2) + piece
    return bytes(out)


def _jpeg(rng: random.Random) -> bytes:
    # SOI, a JFIF APP0 header, the filler as comment segments, EOI.
    app0 = b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
    filler = rng.randbytes(rng.randrange(*IMAGE_SIZES))
    return b"\xff\xd8" + _segments(b"\xff\xe0", app0) + _segments(b"\xff\xfe", filler) + b"\xff\xd9"


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _png(rng: random.Random) -> bytes:
    # A real 16×16 picture of one colour, plus an ancillary chunk that decoders skip to give it bulk.
    side = 16
    pixel = rng.randbytes(3)
    rows = b"".join(b"\x00" + pixel * side for _ in range(side))
    header = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", zlib.compress(rows))
        + _png_chunk(b"beAt", rng.randbytes(rng.randrange(*IMAGE_SIZES)))
        + _png_chunk(b"IEND", b"")
    )


def _webp(rng: random.Random) -> bytes:
    # RIFF container with a lossless (VP8L) chunk: signature byte, then 14-bit width-1 and height-1.
    side = 320
    data = (
        bytes([0x2F]) + struct.pack("<I", (side - 1) | ((side - 1) << 14)) + rng.randbytes(rng.randrange(*IMAGE_SIZES))
    )
    if len(data) % 2:
        data += b"\x00"
    chunk = b"VP8L" + struct.pack("<I", len(data)) + data
    return b"RIFF" + struct.pack("<I", 4 + len(chunk)) + b"WEBP" + chunk


def _mp4(rng: random.Random) -> bytes:
    # An ISO base media file: the ftyp box, then the media data box.
    brands = b"isom" + struct.pack(">I", 0x200) + b"isomiso2avc1mp41"
    ftyp = struct.pack(">I", 8 + len(brands)) + b"ftyp" + brands
    payload = rng.randbytes(rng.randrange(*VIDEO_SIZES))
    return ftyp + struct.pack(">I", 8 + len(payload)) + b"mdat" + payload


MEDIA = {
    "jpg": ("image/jpeg", _jpeg),
    "jpeg": ("image/jpeg", _jpeg),
    "png": ("image/png", _png),
    "webp": ("image/webp", _webp),
    "mp4": ("video/mp4", _mp4),
}


def media(path: str) -> tuple[bytes, str] | None:
    """The bytes and Content-Type served for a CDN path, or None when the extension is not media."""
    known = MEDIA.get(path.rsplit(".", 1)[-1].lower())
    if known is None:
        return None
    content_type, build = known
    return build(_rng(path)), content_type


class CdnRoutes:
    def mount(self) -> Mount:
        return Mount(PREFIX, routes=[Route("/{path:path}", self.serve, methods=["GET"])])

    async def serve(self, request: Request) -> Response:
        path = "/" + request.path_params["path"]
        query = request.query_params
        if not cdn.is_valid(path, query.get("oe"), query.get("oh"), time.time()):
            return PlainTextResponse(EXPIRED_BODY, status_code=403)
        found = media(path)
        if found is None:
            return PlainTextResponse("Not Found", status_code=404)
        body, content_type = found
        return Response(body, media_type=content_type, headers={"cache-control": "max-age=1209600"})
