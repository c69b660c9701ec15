"""The sandbox over real loopback HTTP, called through ProviderHttp and the ArrayBobo client."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
import pytest_asyncio

from providers.errors import PostMissing, ProfileMissing, ProviderTimeout, ProviderUnavailable, QuotaExceeded
from providers.http import Credential, ProviderHttp
from providers.instagram.arraybobo import SOURCE, ArrayBoboClient
from providers.sandbox import RateLimit, SandboxConfig, SandboxServer
from tests.support import SandboxKnobs
from topics.models import Post

HOST = "instagram-scraper-2022.p.rapidapi.com"
K1 = Credential(id="cred-1", source=SOURCE, secrets={"x-rapidapi-key": "k1", "x-rapidapi-host": HOST})
K2 = Credential(id="cred-2", source=SOURCE, secrets={"x-rapidapi-key": "k2", "x-rapidapi-host": HOST})
DAY = timedelta(days=1)


def provider_http(server: SandboxServer, timeout: float = 5.0) -> ProviderHttp:
    return ProviderHttp(base_urls={SOURCE: f"{server.url}/{SOURCE}"}, timeout=timeout, max_connections=400)


@pytest_asyncio.fixture
async def bobo(sandbox_server: SandboxServer) -> AsyncIterator[ArrayBoboClient]:
    http = provider_http(sandbox_server)
    yield ArrayBoboClient(http)
    await http.aclose()


async def whole_timeline(bobo: ArrayBoboClient, profile_id: str) -> list[list[Post]]:
    pages, cursor = [], None
    while True:
        page = await bobo.posts_by_id(profile_id, cursor, credential=K1)
        pages.append(page.items)
        if page.next_cursor is None:
            return pages
        cursor = page.next_cursor


# Data


async def test_profile_by_handle(bobo: ArrayBoboClient) -> None:
    profile = await bobo.profile_by_handle("lena.travels", credential=K1, request_id="r1")

    assert profile.source == SOURCE
    assert profile.handle == profile.dimensions["handle"] == "lena.travels"
    assert profile.profile_id.isdigit() and profile.dimensions["profile_id"] == profile.profile_id
    assert profile.dimensions["full_name"] == "Lena Travels"
    assert profile.dimensions["profile_type"] in {"personal", "business", "creator"}
    assert profile.dimensions["is_private"] is False
    assert all(type(value) is int and value > 0 for value in profile.metrics.values())
    assert 20 <= profile.metrics["media_count"] <= 80


async def test_profile_by_id_is_the_profile_by_handle(bobo: ArrayBoboClient) -> None:
    by_handle = await bobo.profile_by_handle("Meera.Makeup", credential=K1)
    by_id = await bobo.profile_by_id(by_handle.profile_id, credential=K1)
    assert by_id == by_handle


async def test_answers_are_deterministic_across_servers(bobo: ArrayBoboClient) -> None:
    profile = await bobo.profile_by_handle("rohan.clicks", credential=K1)
    page = await bobo.posts_by_id(profile.profile_id, credential=K1)
    reels = await bobo.reels(profile.profile_id, credential=K1)
    post = await bobo.post_by_shortcode(page.items[3].shortcode, credential=K1)

    with SandboxServer() as other:
        http = provider_http(other)
        try:
            again = ArrayBoboClient(http)
            assert await again.profile_by_handle("rohan.clicks", credential=K1) == profile
            assert await again.posts_by_id(profile.profile_id, credential=K1) == page
            assert await again.reels(profile.profile_id, credential=K1) == reels
            assert await again.post_by_shortcode(post.shortcode, credential=K1) == post
        finally:
            await http.aclose()


async def test_an_id_never_seen_gets_a_stand_in_handle_that_maps_back(bobo: ArrayBoboClient) -> None:
    by_id = await bobo.profile_by_id("4821937", credential=K1)
    assert by_id.handle == "user_4821937"
    assert await bobo.profile_by_handle("user_4821937", credential=K1) == by_id


async def test_timeline_pages_newest_first_to_the_end(bobo: ArrayBoboClient) -> None:
    profile = await bobo.profile_by_handle("sana.eats", credential=K1)
    pages = await whole_timeline(bobo, profile.profile_id)

    posts = [post for page in pages for post in page]
    assert len(posts) == profile.metrics["media_count"]
    assert all(len(page) == 12 for page in pages[:-1]) and 1 <= len(pages[-1]) <= 12
    assert len({post.shortcode for post in posts}) == len(posts)
    assert {post.profile_id for post in posts} == {profile.profile_id}
    times = [post.publish_time for post in posts]
    assert all(2 * DAY <= newer - older <= 4 * DAY for newer, older in itertools.pairwise(times))
    assert datetime.now(UTC) - times[0] <= 3 * DAY


async def test_the_thirty_day_rule_stops_within_three_pages(bobo: ArrayBoboClient) -> None:
    """refresh_profile_by_handle pages until a page's oldest post is over 30 days old or 50 posts are in."""
    horizon = datetime.now(UTC) - 30 * DAY
    for number in range(15):
        profile = await bobo.profile_by_handle(f"creator{number}.studio", credential=K1)
        pages, cursor, collected = 0, None, 0
        while True:
            page = await bobo.posts_by_id(profile.profile_id, cursor, credential=K1)
            pages, collected = pages + 1, collected + len(page.items)
            if page.next_cursor is None or page.items[-1].publish_time < horizon or collected > 50:
                break
            cursor = page.next_cursor
        assert 1 <= pages <= 3, profile.handle


async def test_post_by_shortcode_is_the_timeline_post(bobo: ArrayBoboClient) -> None:
    profile = await bobo.profile_by_handle("neel.beats", credential=K1)
    page = await bobo.posts_by_id(profile.profile_id, credential=K1)

    for listed in page.items:
        post = await bobo.post_by_shortcode(listed.shortcode, credential=K1)
        assert (post.shortcode, post.profile_id, post.handle, post.publish_time) == (
            listed.shortcode,
            listed.profile_id,
            listed.handle,
            listed.publish_time,
        )
        for key in ("comments", "likes", "view_count"):
            assert post.metrics[key] == listed.metrics[key], key
        for key in ("post_type", "caption", "user_tags", "user_sponsors", "is_sponsor", "taken_at_timestamp"):
            assert post.dimensions[key] == listed.dimensions[key], key
        if post.dimensions["post_type"] == "reels":
            assert post.metrics["play_count"] > post.metrics["view_count"] > 0
            assert post.metrics["video_duration"] > 0
        else:
            assert post.metrics["play_count"] is None and post.metrics["video_duration"] is None


async def test_reels_page_through_the_timeline_videos(bobo: ArrayBoboClient) -> None:
    profile = await bobo.profile_by_handle("kabir.fit", credential=K1)
    timeline = [post for page in await whole_timeline(bobo, profile.profile_id) for post in page]
    videos = [post.shortcode for post in timeline if post.dimensions["post_type"] == "reels"]

    reels, cursor, pages = [], None, 0
    while True:
        page = await bobo.reels(profile.profile_id, cursor, credential=K1)
        reels.extend(page.items)
        pages += 1
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert pages > 1
    assert [reel.shortcode for reel in reels] == videos
    reel = reels[0]
    post = await bobo.post_by_shortcode(reel.shortcode, credential=K1)
    assert (post.metrics["likes"], post.metrics["play_count"], post.publish_time) == (
        reel.metrics["likes"],
        reel.metrics["play_count"],
        reel.publish_time,
    )


async def test_any_valid_shortcode_is_a_stable_post(bobo: ArrayBoboClient) -> None:
    first = await bobo.post_by_shortcode("CxYz123abcD", credential=K1)
    assert first == await bobo.post_by_shortcode("CxYz123abcD", credential=K1)
    owner = await bobo.profile_by_id(first.profile_id, credential=K1)
    assert owner.handle == first.handle


async def test_missing_profiles_and_posts(bobo: ArrayBoboClient) -> None:
    with pytest.raises(ProfileMissing):
        await bobo.profile_by_handle("missing_person", credential=K1)
    with pytest.raises(ProfileMissing):
        await bobo.profile_by_id("not-a-number", credential=K1)
    with pytest.raises(ProfileMissing):
        await bobo.posts_by_id("not-a-number", credential=K1)
    with pytest.raises(ProfileMissing):
        await bobo.reels("not-a-number", credential=K1)
    with pytest.raises(PostMissing):
        await bobo.post_by_shortcode("missingPost1", credential=K1)


async def test_a_private_account_shows_no_posts(bobo: ArrayBoboClient) -> None:
    profile = await bobo.profile_by_handle("private.diya", credential=K1)
    assert profile.dimensions["is_private"] is True
    page = await bobo.posts_by_id(profile.profile_id, credential=K1)
    assert (page.items, page.next_cursor) == ([], None)


# Knobs


async def test_rate_limit_per_credential(knobs: SandboxKnobs, bobo: ArrayBoboClient) -> None:
    knobs.set(rate_limits={"k1": "3/30"})
    for _ in range(3):
        await bobo.profile_by_handle("tara_reads", credential=K1)
    with pytest.raises(QuotaExceeded) as limited:
        await bobo.profile_by_handle("tara_reads", credential=K1)
    assert 29.0 < limited.value.retry_after <= 30.0
    await bobo.profile_by_handle("tara_reads", credential=K2)

    counts = knobs.stats()
    assert counts["credentials"]["k1"] == {"arrivals": 4, "accepted": 3, "rate_limited": 1, "errors": 0, "abandoned": 0}
    assert counts["credentials"]["k2"]["accepted"] == 1
    assert counts["paths"]["/rapidapi-arraybobo/ig/info_username/"]["rate_limited"] == 1
    assert counts["over_limit"] == {"rapidapi-arraybobo": {"k1": 1}}


async def test_rate_limit_window_slides(knobs: SandboxKnobs, bobo: ArrayBoboClient) -> None:
    knobs.set(rate_limits={"*": {"limit": 2, "window": 0.6}})
    await bobo.profile_by_handle("tara_reads", credential=K1)
    await asyncio.sleep(0.3)
    await bobo.profile_by_handle("tara_reads", credential=K1)
    with pytest.raises(QuotaExceeded) as limited:
        await bobo.profile_by_handle("tara_reads", credential=K1)
    # The first arrival leaves the window first, about 0.3 s from now, not a whole window later.
    assert 0.0 < limited.value.retry_after <= 0.35
    await asyncio.sleep(limited.value.retry_after)
    await bobo.profile_by_handle("tara_reads", credential=K1)
    with pytest.raises(QuotaExceeded):
        await bobo.profile_by_handle("tara_reads", credential=K1)


async def test_error_rate(knobs: SandboxKnobs, bobo: ArrayBoboClient) -> None:
    knobs.set(error_rate=1.0)
    with pytest.raises(ProviderUnavailable, match="500"):
        await bobo.profile_by_handle("tara_reads", credential=K1)
    assert knobs.stats()["total"]["errors"] == 1


async def test_error_rate_is_repeatable(
    sandbox_server: SandboxServer, knobs: SandboxKnobs, bobo: ArrayBoboClient
) -> None:
    async def outcomes() -> list[bool]:
        results = []
        for _ in range(20):
            try:
                await bobo.profile_by_handle("tara_reads", credential=K1)
                results.append(True)
            except ProviderUnavailable:
                results.append(False)
        return results

    knobs.set(error_rate=0.5, seed=7)
    first = await outcomes()
    httpx.post(f"{sandbox_server.url}/_sandbox/reset").raise_for_status()
    assert await outcomes() == first
    assert 0 < first.count(False) < 20


async def test_a_hanging_path_does_not_hold_up_the_others(sandbox_server: SandboxServer, knobs: SandboxKnobs) -> None:
    knobs.set(hang_paths=["/rapidapi-arraybobo/ig/post_info/"])
    http = provider_http(sandbox_server, timeout=1.0)
    try:
        bobo = ArrayBoboClient(http)

        async def fast() -> float:
            started = time.perf_counter()
            await bobo.profile_by_handle("tara_reads", credential=K1)
            return time.perf_counter() - started

        hanging = asyncio.create_task(bobo.post_by_shortcode("CxYz123abcD", credential=K1))
        await asyncio.sleep(0.1)
        assert await fast() < 0.5
        with pytest.raises(ProviderTimeout):
            await hanging
    finally:
        await http.aclose()
    # The client gave up, so the hang ends instead of holding a task for an hour.
    for _ in range(50):
        if knobs.stats()["paths"]["/rapidapi-arraybobo/ig/post_info/"]["abandoned"] == 1:
            break
        await asyncio.sleep(0.05)
    assert knobs.stats()["paths"]["/rapidapi-arraybobo/ig/post_info/"] == {
        "arrivals": 1,
        "accepted": 0,
        "rate_limited": 0,
        "errors": 0,
        "abandoned": 1,
    }


async def test_hundreds_of_concurrent_requests_wait_their_latency_together(
    sandbox_server: SandboxServer, knobs: SandboxKnobs
) -> None:
    # Plain sockets rather than httpx: httpx's pool bookkeeping grows with the number of open
    # connections (encode/httpcore#1035), which would time the client instead of the sandbox.
    knobs.set(latency=0.5)
    host, port = sandbox_server.url.removeprefix("http://").split(":")

    async def get(number: int) -> bytes:
        reader, writer = await asyncio.open_connection(host, int(port))
        writer.write(
            f"GET /rapidapi-arraybobo/ig/info_username/?user=fan{number} HTTP/1.1\r\n"
            f"Host: {host}\r\nx-rapidapi-key: k1\r\nConnection: close\r\n\r\n".encode()
        )
        answer = await reader.read()
        writer.close()
        return answer

    started = time.perf_counter()
    answers = await asyncio.gather(*(get(number) for number in range(300)))
    elapsed = time.perf_counter() - started
    assert all(answer.startswith(b"HTTP/1.1 200 ") for answer in answers)
    assert all(f'"username":"fan{number}"'.encode() in answer for number, answer in enumerate(answers))
    assert 0.5 <= elapsed < 2.5
    assert knobs.stats()["credentials"]["k1"]["accepted"] == 300


# Admin API and configuration


def test_admin_config_round_trip_and_validation(sandbox_server: SandboxServer, knobs: SandboxKnobs) -> None:
    knobs.set(latency=0.01, rate_limits={"k1": "100/30"}, hang_paths=["/rapidapi-arraybobo/ig/posts/"], hang_seconds=5)
    assert httpx.get(f"{sandbox_server.url}/_sandbox/config").json() == {
        "latency": 0.01,
        "error_rate": 0.0,
        "seed": 0,
        "rate_limits": {"k1": {"limit": 100, "window": 30.0}},
        "hang_paths": ["/rapidapi-arraybobo/ig/posts/"],
        "hang_seconds": 5.0,
        "fail_paths": {},
        "fail_retry_after": None,
        "graph_refused_metrics": [],
        "rename_fields": {},
    }
    bad = httpx.put(f"{sandbox_server.url}/_sandbox/config", json={"error_rate": 2})
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["error_rate"]
    assert httpx.put(f"{sandbox_server.url}/_sandbox/config", content=b"{").status_code == 400
    assert httpx.put(f"{sandbox_server.url}/_sandbox/config", json={"latncy": 1}).status_code == 422
    assert httpx.get(f"{sandbox_server.url}/_sandbox/config").json()["latency"] == 0.01
    assert httpx.get(f"{sandbox_server.url}/healthz").json() == {"status": "ok"}


def test_admin_routes_are_not_metered(sandbox_server: SandboxServer, knobs: SandboxKnobs) -> None:
    knobs.set(rate_limits={"*": "1/30"}, error_rate=1.0)
    for _ in range(3):
        assert httpx.get(f"{sandbox_server.url}/healthz").status_code == 200
    assert knobs.stats()["total"]["arrivals"] == 0


def test_anonymous_callers_share_one_limit(sandbox_server: SandboxServer, knobs: SandboxKnobs) -> None:
    knobs.set(rate_limits={"anonymous": "1/30"})
    url = f"{sandbox_server.url}/rapidapi-arraybobo/ig/info_username/"
    assert httpx.get(url, params={"user": "tara_reads"}).status_code == 200
    limited = httpx.get(url, params={"user": "tara_reads"})
    assert limited.status_code == 429 and float(limited.headers["retry-after"]) > 29
    assert httpx.get(url, params={"user": "tara_reads"}, headers={"x-rapidapi-key": "k9"}).status_code == 200
    assert knobs.stats()["credentials"]["anonymous"]["rate_limited"] == 1


def test_config_from_env() -> None:
    config = SandboxConfig.from_env(
        {
            "BEAT_SANDBOX_LATENCY": "0.25",
            "BEAT_SANDBOX_ERROR_RATE": "0.1",
            "BEAT_SANDBOX_RATE_LIMITS": '{"*": "100/30", "k1": {"limit": 5, "window": 1}}',
            "BEAT_SANDBOX_HANG_PATHS": "/rapidapi-arraybobo/ig/post_info/, /rapidapi-arraybobo/ig/posts/",
            "BEAT_SANDBOX_PORT": "8900",
        }
    )
    assert config.latency == 0.25 and config.error_rate == 0.1 and config.hang_seconds == 3600
    assert config.rate_limit("k1") == RateLimit(limit=5, window=1)
    assert config.rate_limit("anyone") == RateLimit(limit=100, window=30)
    assert config.hang_paths == ["/rapidapi-arraybobo/ig/post_info/", "/rapidapi-arraybobo/ig/posts/"]
    assert SandboxConfig.from_env({"BEAT_SANDBOX_HANG_PATHS": '["/a/"]'}).hang_paths == ["/a/"]
    with pytest.raises(ValueError, match='expected "N/W"'):
        SandboxConfig.from_env({"BEAT_SANDBOX_RATE_LIMITS": '{"k1": "100 per 30"}'})


def test_fail_paths_answer_their_status(sandbox_server: SandboxServer, knobs: SandboxKnobs) -> None:
    knobs.set(
        fail_paths={"/rapidapi-arraybobo/ig/info_username/": 429, "/rapidapi-arraybobo/ig/post_info/": 503},
        fail_retry_after=120,
    )
    limited = httpx.get(f"{sandbox_server.url}/rapidapi-arraybobo/ig/info_username/", params={"user": "tara_reads"})
    assert limited.status_code == 429 and limited.headers["retry-after"] == "120"
    assert (
        httpx.get(f"{sandbox_server.url}/rapidapi-arraybobo/ig/post_info/", params={"shortcode": "Cx"}).status_code
        == 503
    )
    assert httpx.get(f"{sandbox_server.url}/rapidapi-arraybobo/ig/info/", params={"id_user": "1"}).status_code == 200
    # Injected 429s are faults, not calls beyond a limit.
    assert knobs.stats()["over_limit"] == {}
