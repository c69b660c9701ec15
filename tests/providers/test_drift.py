"""Drift alarms: a provider answer with a renamed field is counted, kept with its field names, and opens
the source's circuit once most recent answers drifted; the declared shapes fit the providers' real answers."""

from __future__ import annotations

import json

import asyncpg
import pytest

from core.metrics import PARSER_DRIFT, REGISTRY
from providers.breaker import Breaker, MemoryBreakerStore, State, source_scope
from providers.crawler import AllSourcesFailed, Crawler
from providers.credential_cache import CredentialCache
from providers.credentials import CredentialPolicy, CredentialStore
from providers.drift import FINDINGS, SHAPES, ParseRate, check
from providers.http import ProviderHttp
from providers.operations import FETCH_YT_PROFILES
from providers.sandbox.seeds import SANDBOX_CREDENTIALS, sandbox_base_urls
from providers.sandbox.youtube import DEMO_CHANNEL_ID
from providers.youtube.youtube_data import YouTubeDataClient
from tests.support import PROVIDER_FIXTURES, migrated_database

SOURCE = "ytapitoken"
CHANNELS = f"/{SOURCE}/youtube/v3/channels"


def drift_count(kind: str, operation: str = "fetch_yt_profiles") -> float:
    return (
        REGISTRY.get_sample_value("beat_parser_drift_total", {"source": SOURCE, "operation": operation, "kind": kind})
        or 0.0
    )


@pytest.mark.parametrize(
    ("operation", "fixture"),
    [
        ("fetch_yt_profiles", "channels.json"),
        ("fetch_yt_posts", "videos.json"),
        ("fetch_yt_playlist_items", "playlist_items.json"),
        ("fetch_yt_playlist_items", "playlist_items_last_page.json"),
        ("fetch_yt_activities", "activities.json"),
        ("fetch_yt_subscriptions", "subscriptions.json"),
        ("fetch_yt_comments", "comment_threads.json"),
        ("fetch_yt_search", "search_snippet.json"),
        ("fetch_yt_channel_posts", "search_channel_ids.json"),
    ],
)
def test_the_declared_shapes_fit_the_real_answers(operation: str, fixture: str) -> None:
    answer = json.loads((PROVIDER_FIXTURES / "youtube_data" / fixture).read_text())
    assert check(SHAPES[SOURCE, operation], answer) == (set(), set())


def test_a_renamed_field_is_missing_under_its_old_name_and_unknown_under_its_new() -> None:
    answer = json.loads((PROVIDER_FIXTURES / "youtube_data" / "channels.json").read_text())
    for item in answer["items"]:
        item["stats"] = item.pop("statistics")
    assert check(SHAPES[SOURCE, "fetch_yt_profiles"], answer) == ({"statistics"}, {"stats"})


async def test_a_sandbox_answer_with_a_renamed_field_raises_the_alarm_and_opens_the_circuit(knobs) -> None:
    knobs.set(rename_fields={CHANNELS: {"statistics": "stats"}})
    FINDINGS.clear()
    missing, unknown = drift_count("missing"), drift_count("unknown")
    with migrated_database() as url:
        pool = await asyncpg.create_pool(url, min_size=1, max_size=2)
        http = ProviderHttp(base_urls=sandbox_base_urls(knobs.url), timeout=5.0)
        await CredentialStore(pool).add(SOURCE, SANDBOX_CREDENTIALS[SOURCE])
        cache = await CredentialCache.open(pool, url, refresh_interval=30.0, max_age=300.0)
        breaker = Breaker(MemoryBreakerStore(), failures=5, cooldown=60.0)
        try:
            crawler = Crawler(
                cache,
                CredentialPolicy(cache, {}, 900.0, 5.0),
                {SOURCE: YouTubeDataClient(http)},
                breaker=breaker,
                parse_rate=ParseRate(0.5, 4),
            )
            # The answers still parse (the counts read as absent): no consecutive failure ever opens the circuit.
            for _ in range(2):
                [profile], source = await crawler.fetch(FETCH_YT_PROFILES, [DEMO_CHANNEL_ID])
                assert (profile.profile_id, source) == (DEMO_CHANNEL_ID, SOURCE)
            assert drift_count("missing") == missing + 2
            assert drift_count("unknown") == unknown + 2
            [finding] = [f for f in FINDINGS.snapshot() if f["source"] == SOURCE]
            assert finding["operation"] == "fetch_yt_profiles"
            assert finding["missing"] == {"statistics": 2} and finding["unknown"] == {"stats": 2}
            # Both of the last answers drifted, over the 0.5 rate: the circuit is open and the next fetch costs no call.
            arrivals = knobs.stats()["total"]["arrivals"]
            with pytest.raises(AllSourcesFailed, match="circuit open"):
                await crawler.fetch(FETCH_YT_PROFILES, [DEMO_CHANNEL_ID])
            assert knobs.stats()["total"]["arrivals"] == arrivals
            assert REGISTRY.get_sample_value("beat_breaker_state", {"source": SOURCE}) == 2
            admission = await breaker.admit(source_scope(SOURCE))
            assert not admission.allowed
        finally:
            await http.aclose()
            await cache.aclose()
            await breaker.aclose()
            await pool.close()
    # Field names stay out of the metric's labels.
    labels = {sample.labels.get("kind") for metric in PARSER_DRIFT.collect() for sample in metric.samples}
    assert labels <= {"missing", "unknown"}
    assert State.OPEN.value == "open"
