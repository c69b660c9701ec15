"""Costs per call, daily budgets reserved before the call (in process and in Redis), and the spend ledger."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime
from urllib.parse import urlsplit

import asyncpg
import pytest
import pytest_asyncio

from core.settings import load_settings
from providers.budgets import (
    Budget,
    BudgetConfigError,
    BudgetGuard,
    BudgetStore,
    MemoryBudgetStore,
    RedisBudgetStore,
    budget_remaining,
    configured_budgets,
)
from providers.costs import NO_FLOW, CostTable, SpendLedger, calls_for, current_flow
from providers.errors import AllSourcesFailed, BudgetExhausted, BudgetWait
from providers.http import Credential
from providers.instagram import jotucker, lama
from providers.operations import FETCH_FOLLOWING
from providers.sandbox.config import SandboxConfig
from providers.sandbox.seeds import SANDBOX_CREDENTIALS
from providers.spending import Spending
from providers.youtube.youtube_data import YouTubeDataClient
from tests.providers.test_crawler import FOLLOWING, sandbox_crawler
from tests.support import REDIS_URL, TcpProxy, redis_test_prefix

YT = "ytapitoken"
FLOW = "refresh_profile_basic"


@pytest.fixture
def key_prefix():
    yield from redis_test_prefix("beat:budget:")


@pytest_asyncio.fixture(params=["memory", "redis"])
async def store(request) -> AsyncIterator[BudgetStore]:
    made: BudgetStore = MemoryBudgetStore() if request.param == "memory" else RedisBudgetStore(REDIS_URL)
    yield made
    await made.aclose()


def test_costs_default_to_zero_but_the_data_api_to_googles_units() -> None:
    table = CostTable({})
    assert table.cost("rocketapi", "/instagram/user/get_info") == 0
    assert table.cost(YT, "/youtube/v3/search") == 100
    assert table.cost(YT, "/youtube/v3/channels") == 1
    assert table.cost("ytapi", "/youtube/v3/videos") == 1
    configured = CostTable({"rocketapi": 0.002, YT: {"search": 50, "*": 2}})
    assert configured.cost("rocketapi", "/anything") == 0.002
    assert (configured.cost(YT, "/youtube/v3/search"), configured.cost(YT, "/youtube/v3/videos")) == (50, 2)


def test_budgets_parse_share_without_redis_and_refuse_a_bad_key() -> None:
    settings = load_settings(budgets={"source:ytapitoken": 10000, "flow:refresh_yt_posts_by_search": 5000})
    assert configured_budgets(settings) == [
        Budget("source", YT, 10000),
        Budget("flow", "refresh_yt_posts_by_search", 5000),
    ]
    halves = configured_budgets(settings.model_copy(update={"rate_limit_processes": 2}))
    assert [b.limit for b in halves] == [5000, 2500]
    shared = configured_budgets(settings.model_copy(update={"rate_limit_processes": 2, "redis_url": REDIS_URL}))
    assert [b.limit for b in shared] == [10000, 5000]
    with pytest.raises(BudgetConfigError, match="expected 'source:<label>' or 'flow:<name>'"):
        configured_budgets(load_settings(budgets={"ytapitoken": 5}))
    with pytest.raises(BudgetConfigError, match="no flow is called 'refresh_profile_basc'"):
        configured_budgets(load_settings(budgets={"flow:refresh_profile_basc": 5}))


def test_the_data_api_day_ends_at_midnight_pacific_others_at_utc_midnight() -> None:
    # 07:30 UTC on 3 December is 23:30 on 2 December in Los Angeles (PST, UTC-8).
    now = datetime(2026, 12, 3, 7, 30, tzinfo=UTC)
    youtube, flow = Budget("source", YT, 1), Budget("flow", "refresh_profile_basic", 1)
    assert (youtube.day(now), youtube.resets_in(now)) == (date(2026, 12, 2), 30 * 60)
    assert (flow.day(now), flow.resets_in(now)) == (date(2026, 12, 3), 16.5 * 3600)


async def test_a_reservation_fits_under_every_budget_or_takes_nothing(store: BudgetStore, key_prefix: str) -> None:
    keys = [f"{key_prefix}a", f"{key_prefix}b"]
    assert await store.reserve(keys, [10, 3], 2, [60, 60]) == -1
    assert await store.reserve(keys, [10, 3], 2, [60, 60]) == 1  # b would reach 4 > 3
    assert await store.spent(keys) == [2, 2]  # nothing was added to a either
    assert await store.reserve(keys, [10, 4], 2, [60, 60]) == -1
    assert await store.spent([*keys, f"{key_prefix}never"]) == [4, 4, 0]


@pytest.mark.parametrize("mode", ["retry", "fail"])
async def test_at_the_limit_the_guard_waits_for_the_reset_or_fails(mode: str, key_prefix: str) -> None:
    settings = load_settings(budgets={f"flow:{FLOW}": 3, f"source:{YT}": 250}, budget_mode=mode, redis_url=REDIS_URL)
    # Two guards on one Redis stand for two processes: they share the one count.
    guards = [BudgetGuard(RedisBudgetStore(REDIS_URL), configured_budgets(settings), mode, key_prefix) for _ in "ab"]
    try:
        await guards[0].reserve("rocketapi", FLOW, 2)
        await guards[1].reserve("rocketapi", FLOW, 1)
        await guards[1].reserve("rocketapi", "other", 50)  # no budget of its own
        expected = BudgetExhausted if mode == "fail" else BudgetWait
        with pytest.raises(expected, match=rf"flow:{FLOW} \(3\) has no room for a call costing 1") as caught:
            await guards[0].reserve("rocketapi", FLOW, 1)
        if mode == "retry":
            # Due when the budget resets: UTC midnight for a flow.
            now = datetime.now(UTC)
            to_midnight = 86400 - (now.hour * 3600 + now.minute * 60 + now.second)
            assert caught.value.ready_in is not None and abs(caught.value.ready_in - to_midnight) < 5
        await guards[0].reserve(YT, "f2", 100)
        await guards[1].reserve(YT, "f2", 100)
        with pytest.raises(expected, match=f"source:{YT}"):
            await guards[0].reserve(YT, "f2", 100)
    finally:
        for guard in guards:
            await guard.aclose()


async def test_budget_remaining_reports_what_is_left_of_each(key_prefix: str) -> None:
    prefix = key_prefix.removeprefix("beat:budget:")
    budgets = {f"flow:{FLOW}": 10, f"source:{YT}": 500}
    settings = load_settings(budgets=budgets, redis_url=REDIS_URL, topic_prefix=prefix)
    guard = BudgetGuard.from_settings(settings)
    store = RedisBudgetStore(REDIS_URL)
    try:
        await guard.reserve(YT, FLOW, 4)
        left = await budget_remaining(settings, store)
    finally:
        await guard.aclose()
        await store.aclose()
    assert [(r.budget, r.limit, r.spent, r.remaining) for r in left] == [
        (f"flow:{FLOW}", 10, 4, 6),
        (f"source:{YT}", 500, 4, 496),
    ]
    assert all(r.resets_at > datetime.now(UTC) for r in left)


async def test_the_http_layer_reserves_data_api_units_and_counts_spend(sandbox_http, pool, key_prefix: str) -> None:
    """Two searches (100 units each) do not fit a 150-unit budget: the second is never sent; the ledger
    writes the one that went out, per source, credential and flow, in one batch."""
    settings = load_settings(budgets={f"source:{YT}": 150}, budget_mode="retry")
    guard = BudgetGuard(RedisBudgetStore(REDIS_URL), configured_budgets(settings), "retry", key_prefix)
    spending = Spending(CostTable({}), guard, SpendLedger(pool))
    client = YouTubeDataClient(sandbox_http(YT, spending=spending), YT)
    credential = Credential(f"c{uuid.uuid4().hex[:8]}", YT, SANDBOX_CREDENTIALS[YT])
    flow = f"test_flow_{uuid.uuid4().hex[:6]}"
    try:
        with calls_for(flow):
            assert current_flow() == flow
            await client.channel_video_ids("UC_sandbox_channel", credential=credential)
            await client.channels(["UC_sandbox_channel"], credential=credential)  # 1 unit: fits
            with pytest.raises(BudgetWait):
                await client.channel_video_ids("UC_sandbox_channel", credential=credential)
        assert current_flow() == NO_FLOW
        await spending.ledger.flush()
        await spending.ledger.flush()  # nothing pending: no second row, no double count
    finally:
        await guard.aclose()
    rows = await pool.fetch("SELECT day, source, credential_id, calls, cost FROM provider_spend WHERE flow = $1", flow)
    assert [tuple(row) for row in rows] == [(datetime.now(UTC).date(), YT, credential.id, 2, 101.0)]


@pytest.mark.parametrize("mode", ["retry", "fail"])
async def test_a_spent_source_budget_passes_to_the_next_source_or_fails(mode: str) -> None:
    """JoTucker's budget fits one call. Retrying, the next fetch skips it (no call, no breaker count) and
    Lama serves; failing, the fetch ends with BudgetExhausted."""
    settings = load_settings(budgets={f"source:{jotucker.SOURCE}": 1}, budget_mode=mode)
    guard = BudgetGuard(MemoryBudgetStore(), configured_budgets(settings), mode)
    spending = Spending(CostTable({jotucker.SOURCE: 1}), guard, SpendLedger(None))

    async def following(only: str | None = None) -> str:
        return (await h.crawler.fetch(FETCH_FOLLOWING, "1000001", None, only=only))[1]

    async with sandbox_crawler(SandboxConfig(), breaker=(1, 60.0), spending=spending) as h:
        assert await following() == jotucker.SOURCE
        if mode == "fail":
            with pytest.raises(BudgetExhausted, match=f"source:{jotucker.SOURCE}"):
                await following()
        else:
            assert await following() == lama.SOURCE
            # One failure would have opened JoTucker's circuit: a budget is no failure of the source, and the
            # verdict is due when the budget resets.
            with pytest.raises(AllSourcesFailed, match="BudgetWait") as waiting:
                await following(jotucker.SOURCE)
            assert "circuit" not in str(waiting.value) and (waiting.value.ready_in or 0) > 0
        assert h.seen(FOLLOWING) == 1


async def test_spend_waits_out_a_postgres_outage_and_is_written_once(database_url, pool) -> None:
    """Spend counted while Postgres is away is kept and added once it answers: no row lost, none doubled."""
    parts = urlsplit(database_url)
    proxy = TcpProxy(parts.hostname or "127.0.0.1", parts.port or 5432).start()
    cut_pool = await asyncpg.create_pool(proxy.url(database_url), min_size=0, max_size=1, timeout=2)
    ledger = SpendLedger(cut_pool)
    flow = f"outage_{uuid.uuid4().hex[:6]}"
    try:
        proxy.cut()
        ledger.spent("rocketapi", "7", flow, 0.25)
        with pytest.raises((OSError, asyncpg.PostgresError, TimeoutError)):
            await ledger.flush()
        ledger.spent("rocketapi", "7", flow, 0.25)
        proxy.restore()
        await ledger.aclose()
    finally:
        await cut_pool.close()
        proxy.stop()
    row = await pool.fetchrow("SELECT calls, cost FROM provider_spend WHERE flow = $1", flow)
    assert tuple(row) == (2, 0.5)
