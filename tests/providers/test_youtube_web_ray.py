"""The shorts probe (youtube-web) and RAY: pure decisions, then the clients against their sandboxes over loopback."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import pytest_asyncio

from providers.errors import BadResponse, PostMissing, ProviderUnavailable
from providers.http import ProviderHttp
from providers.sandbox import SandboxServer
from providers.sandbox.ray import CATEGORIES, categorize, sentiment
from providers.sandbox.seeds import sandbox_service_settings
from providers.sandbox.youtube import (
    DEMO_CHANNEL_ID,
    FOUR_MINUTE_VIDEO_ID,
    LIVE_VIDEO_ID,
    LONG_VIDEO_ID,
    LONGER_SHORT_VIDEO_ID,
    MISSING_VIDEO_ID,
    SHORT_VIDEO_ID,
    WIDE_VIDEO_ID,
    YouTubeWorld,
    channel_id_for,
)
from providers.youtube.ray import MODEL, RayClient, parse_category, parse_sentiments
from providers.youtube.youtube_web import SOURCE, YouTubeWebClient, post_type_by_length, post_type_of
from tests.support import SandboxKnobs
from topics.models import TraceLog

LABELS = {label for label, _ in CATEGORIES}


# Pure decisions


@pytest.mark.parametrize(
    ("status", "expected"),
    [(200, "short"), (301, "video"), (302, "video"), (303, "video"), (307, "video"), (308, "video")],
)
def test_post_type_from_the_status(status: int, expected: str) -> None:
    assert post_type_of(status, "abc") == expected


@pytest.mark.parametrize(
    ("status", "error"),
    [(404, PostMissing), (204, BadResponse), (304, BadResponse), (403, BadResponse), (410, BadResponse)],
)
def test_other_statuses_are_errors(status: int, error: type[Exception]) -> None:
    with pytest.raises(error, match=f"answered {status}"):
        post_type_of(status, "abc")


@pytest.mark.parametrize(
    ("seconds", "expected"),
    [
        (None, None),
        (0, None),
        (45, None),
        (61, None),
        (150, None),
        (180, None),
        (181, "video"),
        (240, "video"),
        (3723, "video"),
    ],
)
def test_only_uploads_over_three_minutes_are_videos_by_length(seconds: int | None, expected: str | None) -> None:
    assert post_type_by_length(seconds) == expected


def test_parse_category() -> None:
    assert parse_category({"label": " Food ", "score": 0.93}) == {"label": "Food", "score": 0.93}
    assert parse_category({"label": "Music", "score": 1, "extra": []}) == {"label": "Music", "score": 1.0}
    assert parse_category({"label": "Music", "score": "0.5"}) == {"label": "Music", "score": 0.5}
    for bad, message in (
        ({"score": 0.5}, "no label"),
        ({"label": "", "score": 0.5}, "no label"),
        ({"label": 3, "score": 0.5}, "label is not text"),
        ({"label": "Food"}, "no score"),
        ({"label": "Food", "score": True}, "score is not a number"),
        ({"label": "Food", "score": "high"}, "score is not a number"),
        ([], "JSON object"),
    ):
        with pytest.raises(BadResponse, match=message):
            parse_category(bad)


def test_sandbox_categories_follow_keywords_and_are_stable() -> None:
    assert categorize("Easy dal recipe from my kitchen")["label"] == "Food"
    assert categorize("Cricket highlights: the last over")["label"] == "Sports"
    assert categorize("Lofi music to study to")["label"] == "Music"
    assert categorize("A song about exam stress")["label"] == "Music"  # a tie goes to the earlier category
    assert categorize("Exam stress, explained")["label"] == "Education"
    plain = categorize("Xyz qwerty")
    assert plain == categorize("Xyz qwerty") and plain["label"] in LABELS
    texts = [f"{word} number {n}" for n in range(200) for word in ("recipe", "vlog", "zzz")]
    scores = [categorize(text)["score"] for text in texts]
    assert all(0.5 <= score < 1 for score in scores) and len(set(scores)) > 100
    # A keyword hit is a surer verdict than a guess.
    assert min(categorize(f"recipe {n}")["score"] for n in range(100)) >= 0.7
    assert max(categorize(f"zzz {n}")["score"] for n in range(100)) < 0.7


class ScriptedHttp:
    """Stands in for ProviderHttp: plays ``script`` (responses or errors) in order, recording calls in flight."""

    def __init__(self, script: list[Any], delay: float = 0.0) -> None:
        self.script = script
        self.delay = delay
        self.calls: list[tuple[str, str, str, dict[str, Any]]] = []
        self.at: list[float] = []
        self.in_flight = 0
        self.most_in_flight = 0

    async def request(self, source: str, method: str, path: str, **kwargs: Any) -> httpx.Response:
        self.calls.append((source, method, path, kwargs))
        self.at.append(time.monotonic())
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            await asyncio.sleep(self.delay)
        finally:
            self.in_flight -= 1
        step = self.script.pop(0) if len(self.script) > 1 else self.script[0]
        if isinstance(step, Exception):
            raise step
        return httpx.Response(200, content=json.dumps(step).encode())


async def test_ray_retries_once_after_the_wait() -> None:
    http = ScriptedHttp([ProviderUnavailable("POST answered 503", source="ray"), {"label": "Food", "score": 0.8}])
    ray = RayClient(http, retry_wait=0.2)  # type: ignore[arg-type]
    assert await ray.categorize([("v1", "dal recipe")], request_id="r9") == {"v1": {"label": "Food", "score": 0.8}}
    assert [(c[0], c[1], c[2], c[3]["json"], c[3]["request_id"]) for c in http.calls] == [
        ("ray", "POST", "", {"model": MODEL, "input": {"text": "dal recipe"}}, "r9")
    ] * 2
    assert http.at[1] - http.at[0] >= 0.2


async def test_ray_concurrency_is_bounded() -> None:
    http = ScriptedHttp([{"label": "Music", "score": 0.6}], delay=0.02)
    ray = RayClient(http, max_concurrency=3)  # type: ignore[arg-type]
    labels = await ray.categorize([(f"v{n}", f"song {n}") for n in range(10)])
    assert len(labels) == 10 and http.most_in_flight == 3


# Over loopback HTTP


@pytest_asyncio.fixture
async def traced(
    sandbox_server: SandboxServer, knobs: SandboxKnobs
) -> AsyncIterator[tuple[ProviderHttp, list[TraceLog]]]:
    traces: list[TraceLog] = []

    async def keep(record: TraceLog) -> None:
        traces.append(record)

    # The worker hands RAY's one URL over as the base URL of the label "ray"; the sandbox serves it at /ray.
    ray_url = sandbox_service_settings(sandbox_server.url)["ray_url"]
    http = ProviderHttp(
        base_urls={SOURCE: f"{sandbox_server.url}/{SOURCE}", "ray": ray_url}, timeout=5.0, trace_sink=keep
    )
    yield http, traces
    await http.aclose()


async def test_shorts_probe(traced: tuple[ProviderHttp, list[TraceLog]], world: YouTubeWorld) -> None:
    http, traces = traced
    web = YouTubeWebClient(http)
    assert await web.post_type(SHORT_VIDEO_ID, request_id="r1") == "short"
    # The long video and the live answer 303 to www.youtube.com: not followed, the status decides.
    assert await web.post_type(LONG_VIDEO_ID) == "video"
    assert await web.post_type(LIVE_VIDEO_ID) == "video"
    with pytest.raises(PostMissing, match="404"):
        await web.post_type(MISSING_VIDEO_ID)
    assert [(t.source, t.method, t.path, t.status, t.credential_id) for t in traces] == [
        (SOURCE, "GET", f"/youtube-web/shorts/{video_id}", status, None)
        for video_id, status in (
            (SHORT_VIDEO_ID, 200),
            (LONG_VIDEO_ID, 303),
            (LIVE_VIDEO_ID, 303),
            (MISSING_VIDEO_ID, 404),
        )
    ]
    assert traces[0].request_id == "r1"
    # Every upload of the world is one or the other, as the world says.
    uploads = world.uploads(DEMO_CHANNEL_ID, 0, 30)
    assert [await web.post_type(v.video_id) for v in uploads] == ["short" if v.is_short else "video" for v in uploads]
    assert sum(v.is_short for v in uploads) > 1


async def test_shorts_of_up_to_three_minutes(traced: tuple[ProviderHttp, list[TraceLog]], world: YouTubeWorld) -> None:
    """Since 2024-10-15 a square or tall upload of up to 3 minutes is a Short: the probe answers 200 for a
    2:30 Short, and 303 for a 2:30 wide video and a 4-minute one."""
    http, traces = traced
    web = YouTubeWebClient(http)
    lengths = {
        video_id: world.video(video_id).duration_seconds  # type: ignore[union-attr]
        for video_id in (LONGER_SHORT_VIDEO_ID, WIDE_VIDEO_ID, FOUR_MINUTE_VIDEO_ID)
    }
    assert lengths == {LONGER_SHORT_VIDEO_ID: 150, WIDE_VIDEO_ID: 150, FOUR_MINUTE_VIDEO_ID: 240}
    assert [await web.post_type(video_id) for video_id in lengths] == ["short", "video", "video"]
    assert [t.status for t in traces] == [200, 303, 303]
    # Across the world, Shorts of 61-180 s answer 200 too, and none is longer.
    crowd = [v for n in range(5000, 5040) for v in world.uploads(channel_id_for(n))]
    longer = [v for v in crowd if v.is_short and v.duration_seconds > 60][:5]
    assert longer and all(v.duration_seconds <= 180 for v in crowd if v.is_short)
    assert [await web.post_type(v.video_id) for v in longer] == ["short"] * len(longer)


async def test_an_odd_id_stays_inside_the_shorts_path(traced: tuple[ProviderHttp, list[TraceLog]]) -> None:
    http, traces = traced
    with pytest.raises(PostMissing):
        await YouTubeWebClient(http).post_type("../watch?v=x")
    # Sent quoted, the whole id is one path step: "?" stayed in the path rather than starting a query.
    assert (traces[-1].path, traces[-1].status) == ("/youtube-web/shorts/../watch?v=x", 404)


async def test_ray_categorises_over_http(
    traced: tuple[ProviderHttp, list[TraceLog]], knobs: SandboxKnobs, caplog: pytest.LogCaptureFixture
) -> None:
    http, traces = traced
    texts = [("v1", "Easy dal recipe"), ("v2", "Cricket highlights"), ("v3", "   "), ("v4", "Setup tour 2024")]
    with caplog.at_level(logging.WARNING, logger="providers.youtube.ray"):
        labels = await RayClient(http, retry_wait=0).categorize(texts, request_id="r2")
    # The blank text is refused (422), definitively: left out, not retried, and counted.
    assert labels == {post_id: categorize(text) for post_id, text in texts if text.strip()}
    assert labels["v1"]["label"] == "Food" and labels["v2"]["label"] == "Sports"
    assert knobs.stats()["paths"]["/ray"]["arrivals"] == 4
    assert "left 1 of 4 texts uncategorised" in caplog.text
    assert {(t.source, t.method, t.path, t.request_id) for t in traces} == {("ray", "POST", "/ray", "r2")}


async def test_ray_down_leaves_every_text_out_after_one_retry(
    traced: tuple[ProviderHttp, list[TraceLog]], knobs: SandboxKnobs
) -> None:
    http, _ = traced
    knobs.set(fail_paths={"/ray": 500})
    started = time.monotonic()
    labels = await RayClient(http, retry_wait=0.3).categorize([("v1", "dal recipe"), ("v2", "lofi song")])
    assert labels == {}
    assert knobs.stats()["paths"]["/ray"]["errors"] == 4  # two texts, each tried twice
    assert time.monotonic() - started >= 0.3

    knobs.set(fail_paths={"/ray": 429})
    assert await RayClient(http, retry_wait=0).categorize([("v1", "dal recipe")]) == {}
    assert knobs.stats()["paths"]["/ray"]["rate_limited"] == 2


async def test_ray_judges_a_page_of_comments_in_one_call(
    traced: tuple[ProviderHttp, list[TraceLog]], knobs: SandboxKnobs
) -> None:
    http, traces = traced
    comments = [
        {"text": "love it, amazing", "id": "c1"},
        {"text": "worst ever", "id": "c2"},
        {"text": "ok", "id": "c3"},
    ]
    verdicts = await RayClient(http, retry_wait=0).sentiments(comments, request_id="r3")
    assert verdicts == {c["id"]: sentiment(c["text"]) for c in comments}
    assert [verdicts[c]["sentiment"] for c in ("c1", "c2", "c3")] == ["POSITIVE", "NEGATIVE", "NEUTRAL"]
    assert knobs.stats()["paths"]["/ray"]["arrivals"] == 1
    assert [(t.path, t.request_id) for t in traces] == [("/ray", "r3")]


async def test_ray_sentiment_is_retried_once_then_its_failure_is_the_callers(
    traced: tuple[ProviderHttp, list[TraceLog]], knobs: SandboxKnobs
) -> None:
    http, _ = traced
    knobs.set(fail_paths={"/ray": 500})
    with pytest.raises(ProviderUnavailable):
        await RayClient(http, retry_wait=0).sentiments([{"text": "nice", "id": "c1"}])
    assert knobs.stats()["paths"]["/ray"]["errors"] == 2


def test_a_sentiment_answer_without_a_score_does_not_parse_and_unasked_ids_are_dropped() -> None:
    assert parse_sentiments({"c1": {"sentiment": "POSITIVE", "score": 0.9}, "zz": {}}, {"c1"}) == {
        "c1": {"sentiment": "POSITIVE", "score": 0.9}
    }
    with pytest.raises(BadResponse, match="c1"):
        parse_sentiments({"c1": {"sentiment": "POSITIVE"}}, {"c1"})
