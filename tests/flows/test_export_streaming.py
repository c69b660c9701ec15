"""Exports are streamed, never held: a 100,000-row export grows the process's memory by under 50 MiB, into a
file and into S3 (moto) by multipart upload alike, and an id list given as a CSV URL is read as a stream.

The exports run in this process (the flow function with the worker's report tools over the real Postgres),
so the memory measured is the export's own; the rows are seeded with COPY, not through the pipeline."""

from __future__ import annotations

import csv
import io
import threading
import uuid
from collections.abc import AsyncIterator, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import aioboto3
import pytest
import pytest_asyncio
from moto.server import ThreadedMotoServer

from agents.flows import exports
from agents.flows.context import FlowContext
from agents.flows.export_io import ReportNotConfigured
from providers.errors import InputRejected
from sinks import s3_store
from sinks.local_store import LocalAssetStore
from sinks.s3_store import S3AssetStore
from tests.export_support import MIB, PeakRss, daily_stats, seed_daily_stats, tools_for
from topics.export_params import VideoIdsParams
from topics.models import ScrapeRequest

CHANNELS, DAYS = 200, 500
REGION = "ap-south-1"


@pytest_asyncio.fixture(scope="module")
async def seeded(pool) -> AsyncIterator[tuple[list[str], str, str]]:
    """200 channels × 500 days of history (within its retention, which a running reconciler applies): 100,000
    rows, streamed in with COPY."""
    tag = uuid.uuid4().hex[:8]
    channels = [f"UCstreamexport{tag}{n:03d}" for n in range(CHANNELS)]
    first, last = await seed_daily_stats(pool, channels, DAYS)
    yield channels, first, last
    await pool.execute("DELETE FROM youtube_account_daily WHERE channel_id = ANY($1)", channels)


def check_rows(text: str, channels: list[str], first: str) -> None:
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == [
        "id",
        "created_at",
        "lifetime_views",
        "lifetime_subscribers",
        "lifetime_uploads",
        "netviewchange",
        "subchange",
        "uploadchange",
    ]
    assert len(rows) == CHANNELS * DAYS + 1
    # The first day of the first channel has no day before it in the range; every later day changes by one step.
    assert rows[1] == [channels[0], first, "0", "1000", "100", "", "", ""]
    assert rows[2][:2] == [channels[0], rows[2][1]] and rows[2][5:] == ["10", "1", "0"]
    assert rows[-1][0] == channels[-1]


async def test_a_100k_row_export_into_a_file_grows_memory_by_under_50_mib(pool, database_url, seeded, tmp_path):
    channels, first, last = seeded
    tools = tools_for(pool, LocalAssetStore(tmp_path), database_url)
    params = {"channel_ids": channels, "start_date": first, "end_date": last}
    await daily_stats(tools, {**params, "channel_ids": channels[:1]})  # warm: imports, statement, connection
    with PeakRss() as memory:
        result = await daily_stats(tools, params)
    path = Path(result["channel_daily_stats_csv"])
    assert path.is_relative_to(tmp_path) and result["rows"] == {path.name: CHANNELS * DAYS}
    assert memory.growth < 50 * MIB, f"RSS grew {memory.growth / MIB:.1f} MiB"
    check_rows(path.read_text(), channels, first)


@pytest.fixture(scope="module")
def moto_url() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


async def test_the_same_export_into_s3_is_a_multipart_upload(pool, database_url, seeded, moto_url, monkeypatch):
    channels, first, last = seeded
    # S3's smallest part, so this report of about 6 MB takes two.
    monkeypatch.setattr(s3_store, "PART_BYTES", 5 * MIB)
    bucket = f"beat-reports-{uuid.uuid4().hex[:10]}"
    keys = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
    async with aioboto3.Session().client("s3", endpoint_url=moto_url, region_name=REGION, **keys) as s3:
        await s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION})
        store = await S3AssetStore.open(
            bucket=bucket,
            endpoint_url=moto_url,
            region=REGION,
            access_key_id="testing",
            secret_access_key="testing",
            timeout=30,
        )
        try:
            result = await daily_stats(
                tools_for(pool, store, database_url), {"channel_ids": channels, "start_date": first, "end_date": last}
            )
        finally:
            await store.aclose()
        location = result["channel_daily_stats_csv"]
        key = location.removeprefix(f"s3://{bucket}/")
        assert key.startswith("Data_request/fetch_channel_daily_stats_csv/") and key.endswith(
            "_channel_daily_stats.csv"
        )
        stored = await s3.get_object(Bucket=bucket, Key=key)
        body = await stored["Body"].read()
        assert stored["ContentType"] == "text/csv"
        # A multipart upload's ETag counts its parts.
        parts = int(stored["ETag"].strip('"').split("-")[1])
        assert len(body) > 5 * MIB and parts == -(-len(body) // (5 * MIB)) == 2
        check_rows(body.decode(), channels, first)
        uploads = await s3.list_multipart_uploads(Bucket=bucket)
        assert not uploads.get("Uploads")


class _Csv(BaseHTTPRequestHandler):
    body = b""

    def do_GET(self) -> None:
        if self.path != "/ids.csv":
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/csv")
        self.end_headers()
        # In pieces, as a large list arrives.
        for start in range(0, len(self.body), 7):
            self.wfile.write(self.body[start : start + 7])

    def log_message(self, *args: object) -> None:
        return None


@pytest.fixture
def csv_server() -> Iterator[tuple[str, type[_Csv]]]:
    handler = type("Handler", (_Csv,), {})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", handler
    server.shutdown()


async def test_ids_given_as_a_csv_url_are_read_from_its_first_column(pool, database_url, seeded, csv_server, tmp_path):
    channels, _, last = seeded
    url, handler = csv_server
    # A header, quoted ids, more columns, a blank line and a repeat.
    handler.body = f'channel_id,name\n"{channels[3]}",three\n{channels[1]},one\n\n{channels[3]},again\n'.encode()
    tools = tools_for(pool, LocalAssetStore(tmp_path), database_url)
    result = await daily_stats(tools, {"channel_ids_path": f"{url}/ids.csv", "start_date": last, "end_date": last})
    rows = list(csv.reader(io.StringIO(Path(result["channel_daily_stats_csv"]).read_text())))
    assert [row[:2] for row in rows[1:]] == [[channels[3], last], [channels[1], last]]
    with pytest.raises(InputRejected, match="404"):
        await daily_stats(tools, {"channel_ids_path": f"{url}/missing.csv", "start_date": last, "end_date": last})


async def test_ad_vs_organic_without_its_url_fails_naming_the_setting(pool, database_url, tmp_path):
    tools = tools_for(pool, LocalAssetStore(tmp_path), database_url)
    request = ScrapeRequest(id=str(uuid.uuid4()), flow="fetch_ad_vs_organic_csv", params={"video_ids": ["v1"]})
    ctx = FlowContext(request=request, crawler=None, reports=tools)
    with pytest.raises(ReportNotConfigured, match="BEAT_AD_VS_ORGANIC_URL"):
        await exports.fetch_ad_vs_organic_csv(ctx, VideoIdsParams(video_ids=["v1"]))
    assert not list(tmp_path.iterdir())
