"""Provider answers holding values the store cannot hold (counts past int64, NaN, infinity, instants past
the calendar) are refused where they are read, naming the field and the source; a flow that would emit one
anyway fails its request; and over real loopback HTTP such an answer ends the request FAILED, never COMPLETE."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from agents.flows.context import FlowContext
from providers.errors import BadResponse
from providers.http import retry_after_seconds
from providers.instagram import arraybobo
from providers.instagram.graphapi import retry_after_from_usage
from providers.parsing import MAX_WAIT_SECONDS, Values
from providers.sandbox.config import SandboxConfig
from providers.youtube import youtube_data
from tests.conftest import isolated
from tests.support import load_fixture, produce_requests, unique, wait_terminal
from topics import names
from topics.models import Platform, Profile, Relationship, ScrapeRequest

TOO_BIG = 10**20


# The parsers, on the providers' real shapes


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (TOO_BIG, "100000000000000000000 is outside"),
        (float("nan"), "nan is not a finite number"),
        (float("inf"), "inf is not a finite number"),
        (1e20, "100000000000000000000 is outside"),
        ("100000000000000000000", "100000000000000000000 is outside"),
        ("Infinity", "is not a count: 'Infinity'"),
        ("NaN", "is not a count: 'NaN'"),
    ],
)
def test_an_instagram_count_the_store_cannot_hold_is_a_bad_response(value: Any, reason: str) -> None:
    payload = load_fixture("arraybobo", "info_username.json")
    payload["user"]["follower_count"] = value
    with pytest.raises(BadResponse) as refused:
        arraybobo.parse_profile(payload, handle="tara_reads")
    assert refused.value.source == arraybobo.SOURCE
    assert "user.follower_count" in refused.value.message and reason in refused.value.message


def test_the_largest_storable_count_still_reads() -> None:
    payload = load_fixture("arraybobo", "info_username.json")
    payload["user"]["follower_count"] = 2**63 - 1
    assert arraybobo.parse_profile(payload, handle="tara_reads").metrics["followers"] == 2**63 - 1


@pytest.mark.parametrize("value", ["NaN", "Infinity", "-Infinity", float("nan"), 10**400])
def test_a_number_that_is_not_finite_is_a_bad_response(value: Any) -> None:
    payload = load_fixture("arraybobo", "info_username.json")
    payload["user"]["latitude"] = value
    with pytest.raises(BadResponse, match=r"user\.latitude: .*(not a finite number|too large)"):
        arraybobo.parse_profile(payload, handle="tara_reads")


def test_youtube_statistics_past_int64_name_their_field() -> None:
    payload = load_fixture("youtube_data", "channels.json")
    payload["items"][0]["statistics"]["subscriberCount"] = str(TOO_BIG)
    with pytest.raises(BadResponse, match=r"statistics\.subscriberCount: 100000000000000000000 is outside") as refused:
        youtube_data.parse_channels(payload)
    assert refused.value.source == youtube_data.EVENT_SOURCE


@pytest.mark.parametrize("published", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:30:00-05:00"])
def test_an_instant_outside_the_utc_calendar_is_a_bad_response(published: str) -> None:
    payload = load_fixture("youtube_data", "channels.json")
    payload["items"][0]["snippet"]["publishedAt"] = published
    with pytest.raises(BadResponse, match=r"snippet\.publishedAt: .* is not an instant between the years 1 and 9999"):
        youtube_data.parse_channels(payload)


def test_an_epoch_no_datetime_holds_is_a_bad_response() -> None:
    values = Values("somewhere")
    with pytest.raises(BadResponse, match=r"taken_at: 1000000000000000 is not an instant"):
        values.timestamp(10**15, "taken_at")
    assert values.timestamp(1714557600, "taken_at") == (1714557600, datetime(2024, 5, 1, 10, 0, tzinfo=UTC))


def test_a_video_duration_no_clock_counts_is_a_bad_response_not_a_crash() -> None:
    payload = load_fixture("youtube_data", "videos.json")
    payload["items"][0]["contentDetails"]["duration"] = "P" + "9" * 400 + "W"
    with pytest.raises(BadResponse, match=r"contentDetails\.duration is not an ISO-8601 duration"):
        youtube_data.parse_videos(payload)


@pytest.mark.parametrize(
    ("header", "wait"),
    [
        ("inf", None),
        ("nan", None),
        ("1e30", MAX_WAIT_SECONDS),
        ("-5", 0.0),
        ("30", 30.0),
    ],
)
def test_a_retry_after_header_is_a_finite_bounded_wait(header: str, wait: float | None) -> None:
    assert retry_after_seconds(httpx.Headers({"retry-after": header})) == wait


def test_graph_usage_headers_with_infinite_or_huge_waits_are_bounded() -> None:
    usage = '{"1": [{"type": "instagram", "estimated_time_to_regain_access": %s}]}'
    assert retry_after_from_usage({"x-business-use-case-usage": usage % "Infinity"}) is None
    assert retry_after_from_usage({"x-business-use-case-usage": usage % ("9" * 400)}) is None
    assert retry_after_from_usage({"x-business-use-case-usage": usage % "1e12"}) == MAX_WAIT_SECONDS
    assert retry_after_from_usage({"x-business-use-case-usage": usage % "5"}) == 300.0


# The flow's last check before an event is kept


def _context() -> FlowContext:
    request = ScrapeRequest(id=unique("net"), flow="refresh_profile_basic", params={"handle": "tara_reads"})
    return FlowContext(request=request, crawler=None)  # type: ignore[arg-type]  # emitting never calls a provider


def test_an_event_holding_an_unstorable_value_is_refused_naming_its_path_and_source() -> None:
    ctx = _context()
    profile = Profile(
        platform=Platform.INSTAGRAM,
        source="lama",
        profile_id="1",
        handle="tara_reads",
        metrics={"followers": 5},
        dimensions={"bio": "ok", "tags": [1, {"n": 2}]},
    )
    ctx.emit(profile)
    with pytest.raises(BadResponse) as refused:
        ctx.emit(
            Profile(
                platform=Platform.INSTAGRAM,
                source="lama",
                profile_id="1",
                handle="tara_reads",
                metrics={"followers": TOO_BIG},
            )
        )
    assert (refused.value.source, refused.value.message) == (
        "lama",
        "metrics.followers: 100000000000000000000 is outside [-9223372036854775808, 9223372036854775807]",
    )
    with pytest.raises(BadResponse, match=r"^rocketapi: target_dimensions\.stats\[0\]: nan is not a finite number$"):
        ctx.emit(
            Relationship(
                platform=Platform.INSTAGRAM,
                source="rocketapi",
                source_profile_id="2",
                target_profile_id="1",
                target_dimensions={"stats": [float("nan")]},
            )
        )
    assert [event.metrics for _, _, event in ctx.events] == [{"followers": 5}]


def test_text_the_store_cannot_hold_is_cleaned_not_refused() -> None:
    ctx = _context()
    kept = ctx.emit(
        Profile(
            platform=Platform.INSTAGRAM,
            source="lama",
            profile_id="1",
            handle="tara_reads",
            dimensions={"bio": "a\x00b\ud800", "tags": ["x\x00"]},
        )
    )
    assert kept.dimensions == {"bio": "ab\ufffd", "tags": ["x"]}
    assert [event for _, _, event in ctx.events] == [kept]
    kept.to_bytes()  # and it serializes, which a lone surrogate would not


# Over real loopback HTTP: a provider answering a follower count past int64


class _ArrayBoboAnswers(BaseHTTPRequestHandler):
    """ArrayBobo's ``/ig/info_username/``, answered from the recorded fixture for whatever user is asked,
    with a follower count no bigint holds."""

    def do_GET(self) -> None:  # http.server's name
        url = httpx.URL(self.path)
        if url.path != "/ig/info_username/":
            self.send_error(404)
            return
        payload = load_fixture("arraybobo", "info_username.json")
        payload["user"].update(username=url.params["user"], follower_count=TOO_BIG)
        body = json.dumps(payload).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def arraybobo_server() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _ArrayBoboAnswers)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


async def test_a_count_past_int64_over_http_fails_the_request_naming_the_field(
    broker, database_url, session_dir, pool, arraybobo_server
):
    flow = "refresh_profile_basic"
    async with isolated(
        broker,
        database_url,
        session_dir,
        SandboxConfig(),
        "unstorable",
        provider_base_urls={arraybobo.SOURCE: arraybobo_server},
        source_priorities={"fetch_profile_by_handle": [arraybobo.SOURCE]},
        # An answer that does not parse is transient: retried, then FAILED once the attempts are spent.
        retry_schedule=[0.2],
        retry_max_attempts="2",
        retry_tiers={"1s": 1},
    ) as (prefix, spawn, _):
        worker = spawn("worker", "--flows", flow)
        [rid] = await produce_requests(
            broker, f"{prefix}{names.scrape_topic(flow)}", [{"params": {"handle": unique("huge")}}], key_field="handle"
        )
        statuses = await wait_terminal(pool, [rid], timeout=60)
        assert statuses == {rid: "FAILED"}, worker.log_tail()
        row = await pool.fetchrow("SELECT error_type, error_message, source FROM scrape_request_log WHERE id = $1", rid)
        assert "gave up after 2 attempts" in row["error_message"], row["error_message"]
        assert (
            f"{arraybobo.SOURCE}: BadResponse: user.follower_count: 100000000000000000000 is outside "
            "[-9223372036854775808, 9223372036854775807]"
        ) in row["error_message"], row["error_message"]
        # No COMPLETE, ever, for any attempt.
        assert (
            await pool.fetchval(
                "SELECT count(*) FROM scrape_request_event WHERE request_id = $1 AND status = 'COMPLETE'", rid
            )
            == 0
        )
