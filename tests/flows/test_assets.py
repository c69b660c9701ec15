"""The asset pipeline: key layout and content types, both stores (moto's S3 server over HTTP and a
local directory), the sandbox's signed and expiring CDN, the downloader's limits, and the asset flows
end to end through the broker into S3 and onto the asset_log topic."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import aioboto3
import httpx
import pytest
import pytest_asyncio
from aiokafka import AIOKafkaConsumer, TopicPartition
from moto.server import ThreadedMotoServer

from core.settings import load_settings
from providers.cdn.downloader import AssetDownloader
from providers.errors import (
    AssetTooLarge,
    AssetUnavailable,
    NotSupported,
    ProviderTimeout,
    ProviderUnavailable,
    UrlSignatureExpired,
)
from providers.sandbox import cdn
from providers.sandbox.cdn_routes import EXPIRED_BODY, media
from providers.sandbox.config import SandboxConfig
from providers.sandbox.instagram import InstagramWorld
from providers.sandbox.seeds import sandbox_cdn_base_urls
from providers.sandbox.server import SandboxServer
from sinks.assets import AssetStore, asset_extension, asset_key, open_asset_store
from sinks.local_store import LocalAssetStore
from tests.conftest import isolated
from tests.support import failures, produce_requests, unique, wait_terminal
from topics import names

REGION = "ap-south-1"
KEYS = {"s3_access_key_id": "testing", "s3_secret_access_key": "testing"}
# Above every sandbox medium (videos are at most 120 kB), below what the origin's /big sends.
E2E_CAP = 150_000
BIG = 400_000

MAGIC = {
    "image/jpeg": b"\xff\xd8\xff",
    "image/png": b"\x89PNG\r\n\x1a\n",
    "video/mp4": b"ftypisom",
}


def cdn_path(url: str) -> str:
    return httpx.URL(url).path


# Services


@pytest.fixture(scope="module")
def moto_url() -> str:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest_asyncio.fixture(scope="module")
async def s3(moto_url: str):
    async with aioboto3.Session().client(
        "s3", endpoint_url=moto_url, region_name=REGION, aws_access_key_id="testing", aws_secret_access_key="testing"
    ) as client:
        yield client


async def new_bucket(s3) -> str:
    bucket = f"beat-assets-{uuid.uuid4().hex[:10]}"
    await s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION})
    return bucket


@pytest.fixture(scope="module")
def cdn_sandbox():
    """A sandbox of this module's own, so its CDN traffic counts only these tests' downloads."""
    with SandboxServer(SandboxConfig()) as server:
        yield server


class Origin:
    """A loopback HTTP server whose paths misbehave the ways a media host can."""

    def __init__(self) -> None:
        self.hits: Counter[str] = Counter()
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.sockets[0].getsockname()[1]}"

    async def stop(self) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            path = head.split(b" ", 2)[1].decode()
            self.hits[path] += 1
            await self._answer(path, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    async def _answer(self, path: str, writer: asyncio.StreamWriter) -> None:
        if path.startswith(("/big", "/endless")):
            # Chunked, so the size is known only by counting what arrives.
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: image/jpeg\r\nTransfer-Encoding: chunked\r\n\r\n")
            chunk = b"\xff" * 16_384
            sent = 0
            while path.startswith("/endless") or sent < BIG:
                writer.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                await writer.drain()
                sent += len(chunk)
                if sent > 50 * BIG:  # a client that never stops reading is a failed test, not a hang
                    break
            writer.write(b"0\r\n\r\n")
        elif path.startswith("/drip"):
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: image/png\r\nContent-Length: 1000\r\n\r\n")
            for _ in range(1000):
                writer.write(b"\x00")
                await writer.drain()
                await asyncio.sleep(0.05)
        elif path.startswith("/expired"):
            # Legacy: the body decides, whatever the status.
            self._plain(writer, 200, EXPIRED_BODY.encode())
        elif path.startswith("/unavailable"):
            self._plain(writer, 503, b"upstream connect error")
        else:
            self._plain(writer, 404, b"Not Found")
        await writer.drain()

    @staticmethod
    def _plain(writer: asyncio.StreamWriter, status: int, body: bytes) -> None:
        writer.write(
            b"HTTP/1.1 %d X\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n%s" % (status, len(body), body)
        )


@pytest_asyncio.fixture(scope="module")
async def origin() -> AsyncIterator[Origin]:
    server = Origin()
    await server.start()
    yield server
    await server.stop()


# Keys and content types (legacy §7)


def test_keys_follow_the_legacy_layout() -> None:
    assert asset_key("PROFILE", "INSTAGRAM", "4821937", "jpg") == "assets/profiles/instagram/4821937.jpg"
    assert asset_key("POST", "INSTAGRAM", "C1a-B_c2", "mp4") == "assets/posts/instagram/C1a-B_c2.mp4"
    # The legacy code appends "s" to whatever the type is; consumers build URLs from these keys.
    assert asset_key("story", "instagram", "3312_99", "webp") == "assets/storys/instagram/3312_99.webp"
    for entity_id in ("", "..", "../../etc/passwd", "a/b", "a\\b", ".hidden"):
        with pytest.raises(ValueError, match="cannot name a stored asset"):
            asset_key("POST", "INSTAGRAM", entity_id, "jpg")
    with pytest.raises(ValueError, match="extension"):
        asset_key("POST", "INSTAGRAM", "C1", "gif")


@pytest.mark.parametrize(
    ("asset_type", "content_type", "url", "ext"),
    [
        ("IMAGE", "image/jpeg", "https://h/x.png", "jpg"),  # the response wins over the URL
        ("IMAGE", "image/jpg; charset=binary", "https://h/x", "jpg"),
        ("IMAGE", "image/webp", "https://h/x.jpg", "webp"),
        ("IMAGE", "image/png", "https://h/x.jpg", "png"),
        ("IMAGE", "application/octet-stream", "https://h/a/x.webp?stp=dst-jpg", "webp"),  # then the path's suffix
        ("IMAGE", None, "https://h/a/x.JPEG", "jpg"),
        ("IMAGE", None, "https://h/a/x?stp=dst-jpg_e35", "jpg"),  # then the legacy substring rule
        ("IMAGE", None, "https://h/a/x?format=webp", "webp"),
        ("IMAGE", None, "https://h/a/x", "png"),
        ("image", "image/jpeg", "https://h/x", "jpg"),
        ("VIDEO", "video/quicktime", "https://h/x.mov", "mp4"),
    ],
)
def test_extension_from_the_response_then_the_url(asset_type, content_type, url, ext) -> None:
    assert asset_extension(asset_type, content_type, url) == ext


def test_an_unknown_asset_type_is_refused() -> None:
    with pytest.raises(ValueError, match="IMAGE or VIDEO"):
        asset_extension("GIF", "image/gif", "https://h/x.gif")


# The two stores, one suite


@dataclass
class StoreCase:
    store: AssetStore
    kind: str
    # key -> (body, content type, content disposition); the local store keeps neither of the last two
    read: Callable[[str], Awaitable[tuple[bytes, str | None, str | None]]]


@pytest_asyncio.fixture(params=["local", "s3"])
async def store_case(request, tmp_path: Path, moto_url: str, s3) -> AsyncIterator[StoreCase]:
    if request.param == "local":
        root = tmp_path / "assets"
        store = await open_asset_store(load_settings(asset_dir=root, data_dir=tmp_path))

        async def read(key: str):
            path = root / key
            return path.read_bytes(), None, None
    else:
        bucket = await new_bucket(s3)
        store = await open_asset_store(load_settings(s3_bucket=bucket, s3_endpoint_url=moto_url, **KEYS))

        async def read(key: str):
            got = await s3.get_object(Bucket=bucket, Key=key)
            return await got["Body"].read(), got["ContentType"], got.get("ContentDisposition")

    try:
        yield StoreCase(store, request.param, read)
    finally:
        await store.aclose()


async def test_a_stored_asset_reads_back_whole_with_its_content_type(store_case: StoreCase) -> None:
    store = store_case.store
    key = asset_key("POST", "INSTAGRAM", unique("C"), "jpg")
    assert await store.stat(key) is None
    body = media("/v/t51.2885-15/x_n.jpg")[0]

    stored = await store.put(key, body, "image/jpeg")

    assert (stored.key, stored.size, stored.content_type) == (key, len(body), "image/jpeg")
    assert await store.stat(key) == stored
    got, content_type, disposition = await store_case.read(key)
    assert got == body
    if store_case.kind == "s3":
        assert (content_type, disposition) == ("image/jpeg", "inline")


async def test_concurrent_uploads_for_one_entity_leave_one_whole_object(store_case: StoreCase) -> None:
    store = store_case.store
    key = asset_key("PROFILE", "INSTAGRAM", unique("p"), "mp4")
    bodies = [bytes([n]) * 300_000 for n in range(12)]

    await asyncio.gather(*(store.put(key, body, "video/mp4") for body in bodies))

    got, _, _ = await store_case.read(key)
    assert got in bodies
    assert (await store.stat(key)).size == 300_000
    if store_case.kind == "local":
        leftovers = [p.name for p in Path(store.describe()).rglob("*") if p.is_file() and p.name.endswith(".part")]
        assert leftovers == []


async def test_the_local_store_stays_inside_its_directory(tmp_path: Path) -> None:
    store = LocalAssetStore(tmp_path / "assets")
    with pytest.raises(ValueError, match="outside"):
        await store.put("../escaped.jpg", b"x", "image/jpeg")
    assert not (tmp_path / "escaped.jpg").exists()


# The sandbox's CDN


async def test_the_cdn_serves_each_format_with_its_magic_bytes(cdn_sandbox: SandboxServer) -> None:
    world = InstagramWorld()
    urls = {
        "image/jpeg": world.account("meera.makeup").profile_pic_url,
        "image/png": cdn.signed_url("/v/t51.2885-15/9_pic_n.png", stp="dst-png"),
        "image/webp": cdn.signed_url("/v/t51.2885-15/9_pic_n.webp", stp="dst-webp"),
        "video/mp4": cdn.video(3_141_592_653, 720, 1280),
    }
    async with httpx.AsyncClient() as client:
        for content_type, url in urls.items():
            assert url.startswith(f"https://{cdn.HOST}/")
            local = sandbox_cdn_base_urls(cdn_sandbox.url)[cdn.HOST] + httpx.URL(url).raw_path.decode()
            first, again = await client.get(local), await client.get(local)
            assert first.status_code == 200, (url, first.text)
            assert first.headers["content-type"] == content_type
            assert first.content == again.content and len(first.content) > 1000
            if content_type == "image/webp":
                assert first.content[:4] == b"RIFF" and first.content[8:16] == b"WEBPVP8L"
            else:
                assert MAGIC[content_type] in first.content[:12]


async def test_cdn_links_expire_and_their_signature_is_checked(cdn_sandbox: SandboxServer, monkeypatch) -> None:
    path = "/v/t51.2885-15/77_exp_n.jpg"
    now = time.time()
    fresh = httpx.URL(cdn.signed_url(path, stp="dst-jpg"))
    oe = int(fresh.params["oe"], 16)
    assert fresh.params["oe"] == fresh.params["oe"].upper()
    assert now + cdn.DEFAULT_TTL <= oe <= now + cdn.DEFAULT_TTL + cdn.EXPIRY_GRANULE

    monkeypatch.setenv(cdn.TTL_ENV, "120")
    short = httpx.URL(cdn.signed_url(path, stp="dst-jpg"))
    assert now + 120 <= int(short.params["oe"], 16) <= time.time() + 240
    monkeypatch.setenv(cdn.TTL_ENV, "soon")
    with pytest.raises(ValueError, match=cdn.TTL_ENV):
        cdn.signed_url(path, stp="dst-jpg")
    monkeypatch.delenv(cdn.TTL_ENV)

    expired = httpx.URL(cdn.signed_url(path, stp="dst-jpg", now=now - 2 * cdn.DEFAULT_TTL))
    forged = fresh.copy_set_param("oe", format(oe + 86_400, "X"))
    base = f"{cdn_sandbox.url}/cdn"
    async with httpx.AsyncClient() as client:
        assert (await client.get(base + fresh.raw_path.decode())).status_code == 200
        for url in (expired, forged, fresh.copy_remove_param("oh")):
            answer = await client.get(base + url.raw_path.decode())
            assert (answer.status_code, answer.text) == (403, EXPIRED_BODY)
        not_media = httpx.URL(cdn.signed_url("/v/t51.2885-15/77_exp_n.txt", stp="x"))
        assert (await client.get(base + not_media.raw_path.decode())).status_code == 404


# The downloader's limits


def downloader(cdn_sandbox: SandboxServer, *, max_bytes: int = 10**6, timeout: float = 5.0) -> AssetDownloader:
    return AssetDownloader(timeout=timeout, max_bytes=max_bytes, cdn_base_urls=sandbox_cdn_base_urls(cdn_sandbox.url))


async def test_downloads_stop_at_the_size_cap(cdn_sandbox: SandboxServer, origin: Origin) -> None:
    fetcher = downloader(cdn_sandbox, max_bytes=20_000)
    try:
        # Declared too large: refused before the body is read.
        with pytest.raises(AssetTooLarge, match=r"is \d+ bytes, over the 20000-byte cap"):
            await fetcher.fetch(cdn.video(2_718_281_828, 720, 1280))
        # Chunked and endless: stopped once the count passes the cap.
        with pytest.raises(AssetTooLarge, match="exceeded the 20000-byte cap"):
            await fetcher.fetch(f"{origin.url}/endless/a.jpg")
        small = await fetcher.fetch(cdn.signed_url("/v/t51.2885-15/5_small_n.png", stp="dst-png"))
        assert small.content_type == "image/png" and len(small.body) <= 20_000
    finally:
        await fetcher.aclose()


async def test_download_failures_are_named(cdn_sandbox: SandboxServer, origin: Origin) -> None:
    fetcher = downloader(cdn_sandbox, timeout=0.5)
    try:
        expired = cdn.signed_url("/v/t51.2885-15/8_old_n.jpg", stp="x", now=time.time() - 3 * cdn.DEFAULT_TTL)
        with pytest.raises(
            UrlSignatureExpired, match=r"scontent-bom1-1\.cdninstagram\.com/v/t51\.2885-15/8_old_n\.jpg"
        ):
            await fetcher.fetch(expired)
        with pytest.raises(UrlSignatureExpired):
            await fetcher.fetch(f"{origin.url}/expired/a.jpg")
        with pytest.raises(AssetUnavailable, match="answered 404"):
            await fetcher.fetch(f"{origin.url}/missing/a.jpg")
        with pytest.raises(ProviderUnavailable, match="answered 503"):
            await fetcher.fetch(f"{origin.url}/unavailable/a.jpg")
        started = time.monotonic()
        with pytest.raises(ProviderTimeout, match=r"took over 0.5s"):
            await fetcher.fetch(f"{origin.url}/drip/a.png")
        assert time.monotonic() - started < 2.0
        with pytest.raises(NotSupported, match="http"):
            await fetcher.fetch("ftp://example.com/a.jpg")
    finally:
        await fetcher.aclose()


# End to end: request topic -> worker -> S3 and asset_log -> sink


@dataclass
class AssetStack:
    bootstrap: str
    prefix: str
    bucket: str


@pytest_asyncio.fixture(scope="module")
async def asset_stack(broker, database_url, session_dir, moto_url, s3, cdn_sandbox, origin, pool):
    bucket = await new_bucket(s3)
    async with isolated(
        broker,
        database_url,
        session_dir,
        SandboxConfig(),
        "assets",
        s3_bucket=bucket,
        s3_endpoint_url=moto_url,
        **KEYS,
        asset_max_bytes=E2E_CAP,
        cdn_base_urls=sandbox_cdn_base_urls(cdn_sandbox.url),
        # One attempt: the flow's own retries of an edge's 5xx are what these tests count.
        retry_max_attempts="1",
    ) as (prefix, spawn, _):
        spawn("worker", "--flows", "asset_upload_flow*")
        yield AssetStack(broker, prefix, bucket)


def asset_request(entity_type: str, entity_id: str, asset_type: str, url: str) -> dict:
    return {
        "platform": "INSTAGRAM",
        "params": {
            "entity_type": entity_type,
            "entity_id": entity_id,
            "asset_type": asset_type,
            "original_url": url,
            "platform": "INSTAGRAM",
            "hash": 1234567,
        },
    }


async def submit(stack: AssetStack, flow: str, bodies: list[dict]) -> list[str]:
    return await produce_requests(stack.bootstrap, f"{stack.prefix}{names.scrape_topic(flow)}", bodies)


async def results(pool, ids: list[str]) -> dict[str, dict]:
    rows = await pool.fetch("SELECT id, result FROM scrape_request_log WHERE id = ANY($1)", ids)
    return {row["id"]: json.loads(row["result"]) for row in rows}


async def asset_records(bootstrap: str, topic: str, request_ids: set[str], timeout: float = 20.0) -> dict[str, tuple]:
    """request id -> (record key, value) from the asset_log topic, read from the beginning."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, auto_offset_reset="earliest")
    await consumer.start()
    found: dict[str, tuple] = {}
    try:
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        if not partitions:
            await consumer._client.force_metadata_update()
            partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        deadline = time.monotonic() + timeout
        while set(found) < request_ids and time.monotonic() < deadline:
            for records in (await consumer.getmany(timeout_ms=200)).values():
                for record in records:
                    value = json.loads(record.value)
                    if value["request_id"] in request_ids:
                        found[value["request_id"]] = (record.key.decode(), value)
    finally:
        await consumer.stop()
    return found


async def test_assets_of_every_kind_land_in_s3_and_on_asset_log(asset_stack: AssetStack, s3, pool) -> None:
    world = InstagramWorld()
    profile_id = world.profile_id_for(unique("assets.owner").replace("_", "."))
    cases = {
        # flow, entity type, asset type, URL -> content type, extension
        "profile": ("asset_upload_flow", "PROFILE", "IMAGE", world.account_by_id(profile_id).hd_profile_pic_url),
        "post_png": (
            "asset_upload_flow",
            "POST",
            "IMAGE",
            cdn.signed_url(f"/v/t51.2885-15/{uuid.uuid4().hex}_n.png", stp="dst-png"),
        ),
        "post_webp": (
            "asset_upload_flow",
            "POST",
            "IMAGE",
            cdn.signed_url(f"/v/t51.2885-15/{uuid.uuid4().hex}_n.webp", stp="dst-webp"),
        ),
        "story": ("asset_upload_flow_stories", "STORY", "VIDEO", cdn.video(int(time.time() * 1000), 720, 1280)),
    }
    expected = {
        "profile": ("image/jpeg", "jpg"),
        "post_png": ("image/png", "png"),
        "post_webp": ("image/webp", "webp"),
        "story": ("video/mp4", "mp4"),
    }
    ids: dict[str, str] = {}
    entities: dict[str, str] = {}
    for name, (flow, entity_type, asset_type, url) in cases.items():
        entities[name] = profile_id if name == "profile" else unique(name).replace("_", "")
        [ids[name]] = await submit(asset_stack, flow, [asset_request(entity_type, entities[name], asset_type, url)])

    statuses = await wait_terminal(pool, ids.values(), timeout=45)
    assert set(statuses.values()) == {"COMPLETE"}, (statuses, await failures(pool, ids.values()))
    done = await results(pool, list(ids.values()))
    records = await asset_records(asset_stack.bootstrap, f"{asset_stack.prefix}{names.ASSET_LOG}", set(ids.values()))

    for name, (_flow, entity_type, asset_type, url) in cases.items():
        content_type, ext = expected[name]
        key = f"assets/{entity_type.lower()}s/instagram/{entities[name]}.{ext}"
        body = media(cdn_path(url))[0]
        result = done[ids[name]]
        assert (result["asset_url"], result["content_type"], result["size"], result["deduplicated"]) == (
            key,
            content_type,
            len(body),
            False,
        )
        stored = await s3.get_object(Bucket=asset_stack.bucket, Key=key)
        assert (stored["ContentType"], stored["ContentDisposition"]) == (content_type, "inline")
        assert await stored["Body"].read() == body

        record_key, event = records[ids[name]]
        assert record_key == f"INSTAGRAM:{entities[name]}"
        assert {
            k: event[k]
            for k in (
                "kind",
                "platform",
                "entity_type",
                "entity_id",
                "asset_type",
                "asset_url",
                "original_url",
                "content_type",
                "size",
                "schema_version",
            )
        } == {
            "kind": "asset",
            "platform": "INSTAGRAM",
            "entity_type": entity_type,
            "entity_id": entities[name],
            "asset_type": asset_type,
            "asset_url": key,
            "original_url": url,
            "content_type": content_type,
            "size": len(body),
            "schema_version": 1,
        }


async def test_expired_oversized_unreachable_and_invalid_assets_fail_by_name(
    asset_stack: AssetStack, s3, pool, origin: Origin
) -> None:
    expired_url = cdn.signed_url(
        f"/v/t51.2885-15/{uuid.uuid4().hex}_n.jpg", stp="dst-jpg", now=time.time() - 2 * cdn.DEFAULT_TTL
    )
    big_path = f"/big/{uuid.uuid4().hex}.jpg"
    down_path = f"/unavailable/{uuid.uuid4().hex}.jpg"
    expired_id, big_id = unique("expired").replace("_", ""), unique("big").replace("_", "")
    fresh = cdn.signed_url(f"/v/t51.2885-15/{uuid.uuid4().hex}_n.jpg", stp="dst-jpg")
    ids = await submit(
        asset_stack,
        "asset_upload_flow",
        [
            asset_request("POST", expired_id, "IMAGE", expired_url),
            asset_request("POST", big_id, "IMAGE", f"{origin.url}{big_path}"),
            asset_request("POST", unique("down").replace("_", ""), "IMAGE", f"{origin.url}{down_path}"),
            asset_request("POST", unique("gif").replace("_", ""), "GIF", fresh),
            asset_request("POST", "../../escape", "IMAGE", fresh),
        ],
    )

    statuses = await wait_terminal(pool, ids, timeout=45)
    rows = await pool.fetch(
        "SELECT id, status, error_type, error_message FROM scrape_request_log WHERE id = ANY($1)", ids
    )
    errors = {row["id"]: (row["status"], row["error_type"], row["error_message"]) for row in rows}
    assert errors[ids[0]][:2] == ("FAILED", "UrlSignatureExpired"), statuses
    assert "URL signature expired" in errors[ids[0]][2]
    assert errors[ids[1]][:2] == ("FAILED", "AssetTooLarge"), statuses
    assert f"{E2E_CAP}-byte cap" in errors[ids[1]][2]
    # A definitive failure is not retried; an edge answering 5xx is, twice, then the request fails.
    assert origin.hits[big_path] == 1
    assert errors[ids[2]][:2] == ("FAILED", "ProviderUnavailable") and origin.hits[down_path] == 3
    assert errors[ids[3]][:2] == ("FAILED", "NotSupported") and "IMAGE or VIDEO" in errors[ids[3]][2]
    assert errors[ids[4]][:2] == ("FAILED", "NotSupported") and "cannot name a stored asset" in errors[ids[4]][2]
    listed = await s3.list_objects_v2(Bucket=asset_stack.bucket, Prefix="assets/posts/instagram/")
    stored = {item["Key"] for item in listed.get("Contents", [])}
    assert not {key for key in stored if expired_id in key or big_id in key}


async def wait_asset_row(pool, entity_id: str, original_url: str, timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await pool.fetchval(
            "SELECT 1 FROM asset_log WHERE entity_id = $1 AND original_url = $2", entity_id, original_url
        ):
            return True
        await asyncio.sleep(0.2)
    return False


async def test_the_same_url_is_downloaded_once_within_the_window(
    asset_stack: AssetStack, pool, cdn_sandbox: SandboxServer
) -> None:
    entity_id = unique("dedupe").replace("_", "")
    url = cdn.signed_url(f"/v/t51.2885-15/{uuid.uuid4().hex}_n.jpg", stp="dst-jpg")
    [first] = await submit(asset_stack, "asset_upload_flow", [asset_request("POST", entity_id, "IMAGE", url)])
    assert (await wait_terminal(pool, [first], timeout=45))[first] == "COMPLETE", await failures(pool, [first])
    assert await wait_asset_row(pool, entity_id, url), "the sink did not record the asset in asset_log"

    [again] = await submit(asset_stack, "asset_upload_flow_stories", [asset_request("POST", entity_id, "IMAGE", url)])
    assert (await wait_terminal(pool, [again], timeout=30))[again] == "COMPLETE", await failures(pool, [again])
    newer = cdn.signed_url(f"/v/t51.2885-15/{uuid.uuid4().hex}_n.jpg", stp="dst-jpg")
    [changed] = await submit(asset_stack, "asset_upload_flow", [asset_request("POST", entity_id, "IMAGE", newer)])
    assert (await wait_terminal(pool, [changed], timeout=30))[changed] == "COMPLETE", await failures(pool, [changed])

    done = await results(pool, [first, again, changed])
    key = f"assets/posts/instagram/{entity_id}.jpg"
    assert (done[first]["deduplicated"], done[again]["deduplicated"], done[changed]["deduplicated"]) == (
        False,
        True,
        False,
    )
    assert done[again]["asset_url"] == key and done[again]["events"] == {}
    async with httpx.AsyncClient() as client:
        stats = (await client.get(f"{cdn_sandbox.url}/_sandbox/stats")).json()["paths"]
    assert stats[f"/cdn{cdn_path(url)}"]["accepted"] == 1
    assert stats[f"/cdn{cdn_path(newer)}"]["accepted"] == 1
