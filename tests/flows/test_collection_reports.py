"""The keyword and sentiment collection reports (legacy §11.2): rows Beat stored in, Parquet at the legacy paths
out (read back with pyarrow, column by column), and a ``report_log`` completion carrying the paths."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pyarrow.parquet as pq
import pytest
import pytest_asyncio

from agents.flows.assets import AssetRuntime
from agents.flows.context import FlowContext, FlowTools
from agents.flows.reports import NO_SHORTCODES, fetch_keyword_collection, reach_estimate
from core.queries import StoredData
from core.report_queries import keyword_pattern
from providers.sandbox import ray as sandbox_ray
from sinks.local_store import LocalAssetStore
from tests.support import EventCollector, failures, wait_terminal
from topics import names
from topics.models import ScrapeRequest
from topics.params import KeywordCollectionParams

TODAY = datetime.now(UTC).date()
IN_WINDOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
WINDOW = {"start_date": "2026-03-01", "end_date": "2026-03-31"}


def _folder(prefix: str) -> str:
    return f"{prefix}/{TODAY.year}/{TODAY.month}/{TODAY.day}"


def _read(stack, key: str) -> list[dict]:
    path = Path(stack.session_dir) / "stack" / "assets" / key
    return pq.read_table(path).to_pylist()


def _columns(stack, key: str) -> list[str]:
    return pq.read_table(Path(stack.session_dir) / "stack" / "assets" / key).column_names


@pytest_asyncio.fixture
async def reports(stack):
    collector = EventCollector(stack.bootstrap, [stack.topic(names.REPORT_LOG)])
    await collector.start()
    yield collector
    await collector.stop()


async def _submit(stack, pool, flow: str, params: dict) -> tuple[str, str]:
    async with httpx.AsyncClient(base_url=stack.api_url) as client:
        response = await client.post("/requests", json={"flow": flow, "params": params})
        assert response.status_code == 202, response.text
    request_id = response.json()["id"]
    statuses = await wait_terminal(pool, [request_id], timeout=120)
    return request_id, statuses[request_id]


async def _result(pool, request_id: str) -> dict:
    return json.loads(await pool.fetchval("SELECT result FROM scrape_request_log WHERE id = $1", request_id))


def test_keywords_are_escaped_and_bounded_as_postgres_spells_it():
    assert keyword_pattern("k.pop") == r"\y\S*?k\.pop\y"
    assert keyword_pattern(" a+b (live) ") == r"\y\S*?a\+b \(live\)\y"
    assert keyword_pattern("fitness") == r"\y\S*?fitness\y"


@pytest.mark.parametrize(
    ("caption", "matches"),
    [
        ("Loving k.pop dance tonight", True),
        ("LOVING K.POP DANCE", True),  # case-insensitive, as the legacy (?i)
        ("#k.pop is back", True),  # the legacy \b(\S*?) lets a tag prefix the keyword
        ("superk.pop", True),
        ("kxpop dance", False),  # the dot is the keyword's, not any character
        ("k.popular", False),  # a word boundary after the keyword
    ],
)
async def test_the_caption_regex_runs_in_postgres(pool, caption, matches):
    assert await pool.fetchval("SELECT $1 ~* $2", caption, keyword_pattern("k.pop")) is matches


def test_reach_estimates_are_legacy_section_9():
    assert reach_estimate("reels", 10_000, 50, 1024) == int(10_000 * (0.94 - 10 * 0.001))
    assert reach_estimate("reels", 0, 50, 1024) == 0 and reach_estimate("reels", 10, 5, 0) == 0
    assert reach_estimate("static", 0, 100, 0) == int((7.6 - 2 * 0.7) * 0.85 * 100)
    assert reach_estimate("static", 0, 0, 100) == 0


async def _instagram_world(pool, tag: str) -> dict:
    """Two accounts (one with audience insights) and posts whose captions test the keyword match."""
    rich, bare = f"rich{tag}", f"bare{tag}"
    keyword = f"k.pop{tag}"
    await pool.executemany(
        "INSERT INTO instagram_account (profile_id, handle, followers) VALUES ($1, $2, $3)",
        [(f"p{rich}", rich, 1000), (f"p{bare}", bare, 0)],
    )
    await pool.execute(
        "INSERT INTO instagram_profile_insights (profile_id, handle, audience_gender_age) VALUES ($1, $2, $3::jsonb)",
        f"p{rich}",
        rich,
        json.dumps({"male": {"18-24": 30, "25-34": 10}, "female": {"18-24": 60}}),
    )
    posts = [
        # shortcode, owner, caption, post_type, likes, comments, plays, reach, publish_time
        (f"A{tag}", rich, f"Loving {keyword} recipe night", "reels", 120, 30, 9000, None, IN_WINDOW),
        (f"B{tag}", bare, f"#{keyword.upper()} food", "image", 80, 4, None, 500, IN_WINDOW),
        (f"C{tag}", rich, f"kxpop{tag} is not it", "image", 10, 1, None, None, IN_WINDOW),
        (
            f"D{tag}",
            rich,
            f"{keyword} but out of the window",
            "image",
            10,
            1,
            None,
            None,
            datetime(2026, 5, 1, tzinfo=UTC),
        ),
    ]
    await pool.executemany(
        "INSERT INTO instagram_post (shortcode, profile_id, handle, caption, post_type, likes, comments, plays, reach, "
        "publish_time) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        [(sc, f"p{owner}", owner, cap, kind, lk, cm, pl, rc, at) for sc, owner, cap, kind, lk, cm, pl, rc, at in posts],
    )
    return {"keyword": keyword, "rich": rich, "bare": bare}


async def test_instagram_keyword_collection(stack, pool, reports):
    tag = uuid.uuid4().hex[:8]
    world = await _instagram_world(pool, tag)
    job_id = f"test_KC_{tag}"
    params = {"job_id": job_id, "keywords": [world["keyword"]], "platform": "INSTAGRAM", **WINDOW}
    request_id, status = await _submit(stack, pool, "fetch_keyword_collection", params)
    assert status == "COMPLETE", await failures(pool, [request_id])
    result = await _result(pool, request_id)
    folder = _folder("keyword_collections")
    assert result["report_path"] == f"{folder}/{job_id}.parquet"
    assert result["demographic_report_path"] == f"{folder}/{job_id}_demographic.parquet"
    assert result["categorization"] == "done" and result["rows"] == 2

    assert _columns(stack, result["report_path"]) == [
        "keyword", "shortcode", "handle", "profile_id", "caption", "publish_time", "post_class",
        "likes", "comments", "plays", "followers", "er", "reach", "category", "category_score",
    ]  # fmt: skip
    rows = _read(stack, result["report_path"])
    reel_caption = f"Loving {world['keyword']} recipe night"
    reel_category = sandbox_ray.categorize(reel_caption)
    static_category = sandbox_ray.categorize(f"#{world['keyword'].upper()} food")
    assert rows == [
        {
            "keyword": world["keyword"],
            "shortcode": f"A{tag}",
            "handle": world["rich"],
            "profile_id": f"p{world['rich']}",
            "caption": reel_caption,
            "publish_time": IN_WINDOW,
            "post_class": "reels",
            "likes": 120,
            "comments": 30,
            "plays": 9000,
            "followers": 1000,
            "er": 0.15,  # (120 + 30) / 1000, a fraction with 2 decimals
            "reach": reach_estimate("reels", 9000, 120, 1000),
            "category": reel_category["label"],
            "category_score": reel_category["score"],
        },
        {
            "keyword": world["keyword"],
            "shortcode": f"B{tag}",
            "handle": world["bare"],
            "profile_id": f"p{world['bare']}",
            "caption": f"#{world['keyword'].upper()} food",
            "publish_time": IN_WINDOW,
            "post_class": "static",
            "likes": 80,
            "comments": 4,
            "plays": None,
            "followers": 0,
            "er": 0.0,
            "reach": 500,  # stored reach wins over the estimate
            "category": static_category["label"],
            "category_score": static_category["score"],
        },
    ]

    demographic = _read(stack, result["demographic_report_path"])
    assert _columns(stack, result["demographic_report_path"]) == [
        "category", "accounts", "accounts_without_insights", "gender", "age_group", "share",
    ]  # fmt: skip
    by_category: dict[str, list[dict]] = {}
    for row in demographic:
        by_category.setdefault(row["category"], []).append(row)
    if reel_category["label"] == static_category["label"]:
        [cells] = by_category.values()
        assert {(c["accounts"], c["accounts_without_insights"]) for c in cells} == {(2, 1)}
    else:
        cells = by_category[reel_category["label"]]
        assert {(c["accounts"], c["accounts_without_insights"]) for c in cells} == {(1, 0)}
        assert by_category[static_category["label"]] == [
            {
                "category": static_category["label"],
                "accounts": 1,
                "accounts_without_insights": 1,
                "gender": None,
                "age_group": None,
                "share": None,
            }
        ]
    shares = {(c["gender"], c["age_group"]): c["share"] for c in cells}
    assert shares == {("female", "18-24"): 0.6, ("male", "18-24"): 0.3, ("male", "25-34"): 0.1}

    [done] = await reports.events(request_id, stack.topic(names.REPORT_LOG))
    assert done["report"] == "keyword_collection" and done["job_id"] == job_id and done["bucket"] is None
    assert done["paths"] == {"report": result["report_path"], "demographic": result["demographic_report_path"]}


async def test_youtube_keyword_collection(stack, pool, reports):
    tag = uuid.uuid4().hex[:8]
    keyword = f"chai+{tag}"
    channel = f"UC{tag}"
    await pool.execute("INSERT INTO youtube_account (channel_id, title, subscribers) VALUES ($1, 'c', 2000)", channel)
    await pool.executemany(
        "INSERT INTO youtube_post (shortcode, channel_id, title, views, likes, comments, published_at) "
        "VALUES ($1, $2, $3, $4, $5, $6, $7)",
        [
            (f"v1{tag}", channel, f"Masala {keyword} at home", 5000, 300, 100, IN_WINDOW),
            (f"v2{tag}", channel, f"Masala chai{tag} at home", 7000, 1, 1, IN_WINDOW),  # the + is the keyword's
        ],
    )
    job_id = f"test_KC_{tag}"
    params = {"job_id": job_id, "keywords": [keyword], "platform": "YOUTUBE", **WINDOW}
    request_id, status = await _submit(stack, pool, "fetch_keyword_collection", params)
    assert status == "COMPLETE", await failures(pool, [request_id])
    result = await _result(pool, request_id)
    assert _columns(stack, result["report_path"]) == [
        "video_id", "channel_id", "title", "views", "likes", "comments", "subscribers", "er", "post_reach",
        "category", "category_score",
    ]  # fmt: skip
    category = sandbox_ray.categorize(f"Masala {keyword} at home")
    assert _read(stack, result["report_path"]) == [
        {
            "video_id": f"v1{tag}",
            "channel_id": channel,
            "title": f"Masala {keyword} at home",
            "views": 5000,
            "likes": 300,
            "comments": 100,
            "subscribers": 2000,
            "er": 0.2,
            "post_reach": 5000,
            "category": category["label"],
            "category_score": category["score"],
        }
    ]
    demographic = _read(stack, result["demographic_report_path"])
    assert [(r["category"], r["accounts"], r["accounts_without_insights"]) for r in demographic] == [
        (category["label"], 1, 1)
    ]


async def test_sentiment_collection_report(stack, pool, reports):
    tag = uuid.uuid4().hex[:8]
    posts = [f"S1{tag}", f"S2{tag}"]
    comments = [
        (posts[0], f"c1{tag}", "love it", "POSITIVE", 0.9),
        (posts[0], f"c2{tag}", "worst", "NEGATIVE", 0.7),
        (posts[0], f"c3{tag}", "ok", "NEUTRAL", 0.5),
        (posts[1], f"c4{tag}", "great", "POSITIVE", 0.8),
        (f"other{tag}", f"c5{tag}", "not in the collection", "NEUTRAL", 0.6),
    ]
    await pool.executemany(
        "INSERT INTO sentiment_log (platform, platform_post_id, comment_id, comment, sentiment, score, source) "
        "VALUES ('INSTAGRAM', $1, $2, $3, $4, $5, 'beat')",
        comments,
    )
    params = {"collectionType": "campaign", "collectionId": tag, "shortcodes": posts}
    request_id, status = await _submit(stack, pool, "fetch_sentiment_report", params)
    assert status == "COMPLETE", await failures(pool, [request_id])
    result = await _result(pool, request_id)
    folder = _folder("sentiment_report/local")
    assert result["sentiment_report_path"] == f"{folder}/campaign_{tag}.parquet"
    assert _columns(stack, result["sentiment_report_path"]) == [
        "shortcode",
        "comment_id",
        "comment",
        "sentiment",
        "score",
    ]
    assert _read(stack, result["sentiment_report_path"]) == [
        {"shortcode": s, "comment_id": c, "comment": t, "sentiment": v, "score": x} for s, c, t, v, x in comments[:4]
    ]
    summary = _read(stack, result["summary_path"])
    assert summary == [
        {
            "shortcode": posts[0],
            "comments": 3,
            "positive": 1,
            "negative": 1,
            "neutral": 1,
            "mean_score": pytest.approx(0.7),
        },
        {"shortcode": posts[1], "comments": 1, "positive": 1, "negative": 0, "neutral": 0, "mean_score": 0.8},
    ]
    [done] = await reports.events(request_id, stack.topic(names.REPORT_LOG))
    assert done["report"] == "sentiment_collection"
    assert (done["collection_type"], done["collection_id"]) == ("campaign", tag)
    assert done["paths"]["report"] == result["sentiment_report_path"]


async def test_a_sentiment_report_without_shortcodes_fails_saying_so(stack, pool):
    params = {"collectionType": "campaign", "collectionId": uuid.uuid4().hex[:8]}
    request_id, status = await _submit(stack, pool, "fetch_sentiment_report", params)
    assert status == "FAILED"
    row = await pool.fetchrow(
        "SELECT error_type, error_message, attempt FROM scrape_request_log WHERE id = $1", request_id
    )
    # Definitive: the first attempt fails, no retry could find the collection's posts.
    assert row["error_type"] == "CollectionUnknown" and NO_SHORTCODES in row["error_message"]
    assert row["attempt"] == 1


async def test_without_a_ray_url_the_keyword_collection_is_written_uncategorised(pool, tmp_path):
    """In process, with a worker's reads and a local asset store but no RAY: the rows keep empty categories,
    the demographic file has no category to give, and the result says "skipped"."""
    tag = uuid.uuid4().hex[:8]
    world = await _instagram_world(pool, tag)
    request = ScrapeRequest(id=f"r{tag}", flow="fetch_keyword_collection", params={})
    assets = AssetRuntime(LocalAssetStore(tmp_path), None, 0.0)  # type: ignore[arg-type]  # no download here
    ctx = FlowContext(request, None, StoredData(pool), assets=assets, tools=FlowTools())  # type: ignore[arg-type]
    params = KeywordCollectionParams(
        job_id=f"j{tag}",
        keywords=[world["keyword"]],
        platform="INSTAGRAM",
        start_date="2026-03-01",
        end_date="2026-03-31",
    )
    result = await fetch_keyword_collection(ctx, params)
    assert result["categorization"] == "skipped: BEAT_RAY_URL is not set" and result["rows"] == 2
    rows = pq.read_table(tmp_path / result["report_path"]).to_pylist()
    assert [(r["shortcode"], r["category"], r["category_score"]) for r in rows] == [
        (f"A{tag}", None, None),
        (f"B{tag}", None, None),
    ]
    assert pq.read_table(tmp_path / result["demographic_report_path"]).num_rows == 0
    [done] = [event for _, _, event in ctx.events]
    assert done.paths == {"report": result["report_path"], "demographic": result["demographic_report_path"]}
