"""``beat legacy import`` from a database built with the legacy DDL (legacy §11.7) and seeded with
legacy-shaped rows: duplicates, nulls, ``image/jpg``, expired credentials, a bigint request log with
unfinished rows. Every count is checked; an import killed mid-table resumes with the same counts, and a
second run writes nothing. Also the credential moves (JSON lines, secrets masked)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import psycopg
import pytest

from core.status_reads import read_status
from sinks.legacy_import import DERIVED
from tests.support import ADMIN_URL, FIXTURES, ROOT, beat_env, migrated_database, run_beat

POSTS = 3000  # generated instagram_post rows, besides the hand-made ones
FIRST_REQUEST = 5_000_000_000  # past int32: the legacy ids are bigint

SEED = f"""
INSERT INTO credential (idempotency_key, source, credentials, handle, created_at, updated_at, disabled_till,
                        enabled, data_access_expired) VALUES
 ('graphapi:111', 'graphapi', '{{"token": "EAAGalicetoken", "user_id": "111"}}', 'alice',
  '2024-01-01 10:00', '2024-02-01 10:00', NULL, true, false),
 ('graphapi:222', 'graphapi', '{{"token": "EAAGbobtoken99", "user_id": "222"}}', 'bob',
  '2024-01-01 10:00', '2024-03-01 10:00', NULL, true, true),
 (NULL, 'rapidapi-arraybobo', '{{"x-rapidapi-key": "rapidsecret123"}}', NULL,
  '2024-01-01 10:00', NULL, '2024-01-02 10:00', NULL, NULL),
 ('lama:x', 'lama', NULL, NULL, '2024-01-01 10:00', NULL, NULL, true, false),
 ('yt:k', NULL, '{{"key": "ytkeysecret"}}', NULL, '2024-01-01 10:00', NULL, NULL, true, false);

INSERT INTO instagram_account (profile_id, handle, full_name, followers, following, is_private, on_gcc,
                               is_in_gcc_collection, created_at, updated_at) VALUES
 ('lg_p1', 'alice', 'Alice', 1000, 10, false, true, false, '2024-01-01', '2024-05-01'),
 ('lg_p2', 'bob', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
 (NULL, 'nobody', 'No Id', 5, 5, false, false, false, '2024-01-01', '2024-01-01');

INSERT INTO instagram_post (shortcode, profile_id, handle, post_type, caption, likes, comments, views, plays,
                            engagement, story_links, created_at, updated_at, publish_time)
SELECT 'lg' || lpad(n::text, 6, '0'), CASE WHEN n % 2 = 0 THEN 'lg_p1' ELSE 'lg_p2' END, 'alice',
       CASE WHEN n % 3 = 0 THEN 'reels' ELSE 'image' END, 'caption ' || n, n, n % 7, NULL, n * 3,
       0.5, NULL, '2024-01-01', '2024-06-01', timestamp '2024-01-01' + n * interval '1 hour'
FROM generate_series(1, {POSTS}) AS n;
INSERT INTO instagram_post (shortcode, profile_id, caption, likes, story_links, updated_at) VALUES
 ('known1', 'lg_p1', NULL, 10, NULL, '2024-06-01'),
 ('known2', 'lg_p1', 'legacy caption', 1, NULL, '2024-06-01'),
 ('story1', 'lg_p1', 'a story', 3, ARRAY['https://a.example/1', 'https://b.example/2'], '2024-06-01'),
 (NULL, 'lg_p1', 'no shortcode', 1, NULL, '2024-06-01'),
 -- Beat indexes profile_id and the legacy did not: this one is too large for Beat's index.
 ('poison1', (SELECT string_agg(md5(random()::text), '') FROM generate_series(1, 600)), 'x', 1, NULL, '2024-06-01');

INSERT INTO instagram_profile_insights (profile_id, handle, audience_country, updated_at) VALUES
 ('lg_p1', 'alice', '{{"IN": 0.6, "US": 0.4}}', '2024-05-01');

INSERT INTO youtube_account (channel_id, title, description, subscribers, gplsuid, er12p, updated_at) VALUES
 ('UCdup', 'old title', 'old description', 10, 'g1', 1.5, '2024-01-01'),
 ('UCdup', 'new title', NULL, 20, NULL, NULL, '2024-03-01'),
 ('UCdup', 'middle title', NULL, 15, NULL, NULL, '2024-02-01'),
 ('UCone', 'one', NULL, NULL, NULL, NULL, NULL);

INSERT INTO youtube_post (shortcode, channel_id, title, playlist_id, views, comments, post_type, updated_at) VALUES
 ('yt1', 'UCdup', 'video one', 'PL1', 100, 3, 'video', '2024-03-01'),
 ('yt2', 'UCdup', 'video two', NULL, 50, NULL, 'short', '2024-03-01');

INSERT INTO youtube_profile_insights (channel_id, country, updated_at) VALUES
 ('UCdup', '{{"IN": 1.0}}', '2024-03-01');

INSERT INTO asset_log (entity_id, entity_type, platform, asset_type, asset_url, original_url, updated_at) VALUES
 ('lg_p1', 'PROFILE', 'INSTAGRAM', 'IMAGE', 'assets/profiles/instagram/lg_p1.jpg', 'https://cdn/x.jpg', '2024-01-01'),
 ('lg000001', 'POST', 'INSTAGRAM', 'image/jpg', 'assets/posts/instagram/lg000001.jpg', 'https://cdn/y', '2024-01-01'),
 ('lg000002', 'POST', 'INSTAGRAM', 'VIDEO', 'assets/posts/instagram/lg000002.mp4', 'https://cdn/z', '2024-01-01'),
 (NULL, 'POST', 'INSTAGRAM', 'IMAGE', 'assets/posts/instagram/none.jpg', 'https://cdn/n', '2024-01-01');

INSERT INTO "order" (platform_order_id, status, name, store, platform, order_data, utm_params, updated_at) VALUES
 ('gid://shopify/Order/1', 'paid', '#1001', 'shop.example', 'SHOPIFY', '{{"total": "12.50"}}',
  '{{"utm_source": "ig"}}', '2024-04-01'),
 ('gid://shopify/Order/2', NULL, '#1002', 'shop.example', 'SHOPIFY', NULL, NULL, '2024-04-02');

SELECT setval('scrape_request_log_id_seq', {FIRST_REQUEST - 1});
INSERT INTO scrape_request_log (source, platform, data, flow, idempotency_key, status, params, priority,
                                scraped_at, created_at, expires_at, account_id, picked_at, retry_count) VALUES
 ('graphapi', 'INSTAGRAM', 'None', 'refresh_profile_by_handle', 'k-complete', 'COMPLETE',
  '{{"handle": "alice"}}', 1, '2024-01-01 10:05', '2024-01-01 10:00', '2024-01-01 11:00', 'acct1',
  '2024-01-01 10:01', 1),
 (NULL, 'INSTAGRAM', 'Missing Flow - x', 'refresh_profile_by_handle', NULL, 'FAILED', '{{"handle": "bob"}}', 1,
  '2024-01-01 10:06', '2024-01-01 10:00', NULL, NULL, NULL, 1),
 (NULL, 'INSTAGRAM', NULL, 'refresh_profile_by_handle', 'k-pending', 'PENDING', '{{"handle": "carol"}}', 2,
  NULL, '2024-01-01 10:00', NULL, NULL, NULL, 1),
 (NULL, 'YOUTUBE', NULL, 'refresh_yt_profiles', NULL, 'PROCESSING', '{{"channel_ids": ["UCdup"]}}', 1,
  NULL, '2024-01-01 10:00', NULL, NULL, '2024-01-01 10:02', 1),
 (NULL, 'YOUTUBE', '{{''csv'': ''s3://bucket/x.csv''}}', 'yt_csv_export', NULL, 'COMPLETE', NULL, 1,
  '2024-01-01 12:00', '2024-01-01 10:00', NULL, NULL, NULL, 2),
 (NULL, 'INSTAGRAM', NULL, 'refresh_profile_by_handle', NULL, 'WEIRD', '{{}}', 1,
  NULL, '2024-01-01 10:00', NULL, NULL, NULL, 1);
"""

# What a first import reports, per table: read, written, merged, refused (by reason).
FIRST_RUN = {
    "credential": (5, 3, 0, {"credentials is not a JSON object": 1, "Value error, source is empty": 1}),
    "instagram_account": (3, 2, 0, {"no profile_id": 1}),
    "instagram_post": (POSTS + 5, POSTS + 3, 0, {"no shortcode": 1, "ProgramLimitExceededError": 1}),
    "instagram_profile_insights": (1, 1, 0, {}),
    "youtube_account": (4, 2, 2, {}),
    "youtube_post": (2, 2, 0, {}),
    "youtube_profile_insights": (1, 1, 0, {}),
    "asset_log": (4, 3, 0, {"no entity_id": 1}),
    "order": (2, 2, 0, {}),
    "scrape_request_log": (6, 5, 0, {"unknown status 'WEIRD'": 1}),
    # The derived columns, recomputed once the accounts and posts are in: the accounts read and changed.
    DERIVED: (2, 2, 0, {}),
}


@pytest.fixture(scope="module")
def legacy_url() -> Iterator[str]:
    """A legacy database for this session: the §11.7 DDL, seeded, dropped afterwards."""
    name = f"legacy_test_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(ADMIN_URL, autocommit=True, connect_timeout=3) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    try:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute((FIXTURES / "legacy_schema.sql").read_text())
            conn.execute(SEED)
        yield url
    finally:
        with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def beat_url() -> Iterator[str]:
    with migrated_database("beat_legacy") as url:
        yield url


def beat(beat_url: str, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    result = run_beat(beat_env(database_url=beat_url), *args, stdin=stdin)
    assert result.returncode == 0, result.stderr
    return result


def summaries(result: subprocess.CompletedProcess[str]) -> dict[str, dict]:
    return {line["table"]: line for line in map(json.loads, result.stdout.splitlines())}


def counts(summary: dict[str, dict]) -> dict[str, tuple]:
    """Each table's counts, with Postgres' refusals by their error type (the message quotes sizes)."""
    return {
        table: (line["read"], line["written"], line["merged"], by_type(line["refused_reasons"]))
        for table, line in summary.items()
    }


def by_type(reasons: dict[str, int]) -> dict[str, int]:
    typed: dict[str, int] = {}
    for reason, count in reasons.items():
        name = reason.split(":")[0] if reason.split(":")[0].endswith("Error") else reason
        typed[name] = typed.get(name, 0) + count
    return typed


def query(url: str, sql: str, *params: object) -> list[tuple]:
    with psycopg.connect(url) as conn:
        return conn.execute(sql, params or None).fetchall()


def test_dry_run_reports_the_import_and_writes_nothing(legacy_url, beat_url):
    result = beat(beat_url, "legacy", "import", "--from", legacy_url, "--dry-run")
    reported = summaries(result)
    assert counts(reported) == FIRST_RUN
    assert all(line["dry_run"] for line in reported.values())
    for table in ("credential", "instagram_post", "youtube_account", "scrape_request_log", "legacy_import"):
        assert query(beat_url, f"SELECT count(*) FROM {table}") == [(0,)], table


def test_import_carries_every_table_then_a_second_run_writes_nothing(legacy_url, beat_url):
    # What Beat already holds: a row the legacy has a newer observation of (whose null caption must not
    # overwrite), and one Beat observed after the legacy did (which the legacy only fills in).
    query(
        beat_url,
        "INSERT INTO instagram_post (shortcode, caption, likes, observed_at) VALUES "
        "('known1', 'beat caption', 5, '2024-01-01Z'), ('known2', NULL, 99, '2030-01-01Z') RETURNING id",
    )
    first = summaries(beat(beat_url, "legacy", "import", "--from", legacy_url, "--timezone", "Asia/Kolkata"))
    assert counts(first) == FIRST_RUN
    assert {table: line["unchanged"] for table, line in first.items()} == {
        "credential": 0,
        "instagram_account": 0,
        "instagram_post": 0,
        "instagram_profile_insights": 0,
        "youtube_account": 0,
        "youtube_post": 0,
        "youtube_profile_insights": 0,
        "asset_log": 0,
        "order": 0,
        "scrape_request_log": 0,
        DERIVED: 0,
    }

    # Credentials: state carried; a null enabled is off; the key a legacy row lacked is derived.
    assert query(
        beat_url,
        "SELECT idempotency_key, source, handle, enabled, data_access_expired, disabled_till IS NOT NULL, "
        "credentials FROM credential ORDER BY idempotency_key",
    ) == [
        ("graphapi:111", "graphapi", "alice", True, False, False, {"token": "EAAGalicetoken", "user_id": "111"}),
        ("graphapi:222", "graphapi", "bob", True, True, False, {"token": "EAAGbobtoken99", "user_id": "222"}),
        (
            query(beat_url, "SELECT idempotency_key FROM credential WHERE source = 'rapidapi-arraybobo'")[0][0],
            "rapidapi-arraybobo",
            None,
            False,
            False,
            True,
            {"x-rapidapi-key": "rapidsecret123"},
        ),
    ]
    assert query(beat_url, "SELECT count(*) FROM credential WHERE idempotency_key LIKE 'rapidapi-arraybobo:%'") == [
        (1,)
    ]

    # Accounts, with the legacy-only columns, and derived columns recomputed from the imported posts.
    assert query(
        beat_url,
        "SELECT profile_id, full_name, followers, on_gcc, is_in_gcc_collection, avg_likes IS NOT NULL, "
        "created_at = '2024-01-01 00:00+05:30' FROM instagram_account ORDER BY profile_id",
    ) == [("lg_p1", "Alice", 1000, True, False, True, True), ("lg_p2", None, None, None, None, True, False)]

    # Posts: naive legacy times read in the legacy's zone; nulls never overwrite; newer wins.
    assert query(beat_url, "SELECT count(*) FROM instagram_post") == [(POSTS + 3,)]
    assert query(
        beat_url,
        "SELECT shortcode, caption, likes, story_links FROM instagram_post "
        "WHERE shortcode IN ('known1', 'known2', 'story1') ORDER BY shortcode",
    ) == [
        ("known1", "beat caption", 10, None),
        ("known2", "legacy caption", 99, None),
        ("story1", "a story", 3, ["https://a.example/1", "https://b.example/2"]),
    ]
    assert query(
        beat_url, "SELECT publish_time = '2024-01-01 01:00+05:30' FROM instagram_post WHERE shortcode = 'lg000001'"
    ) == [(True,)]
    assert query(beat_url, "SELECT audience_country FROM instagram_profile_insights") == [({"IN": 0.6, "US": 0.4},)]

    # youtube_account's duplicates merged newer-wins, a null never overwriting.
    assert query(
        beat_url, "SELECT channel_id, title, description, subscribers, gplsuid, er12p FROM youtube_account ORDER BY 1"
    ) == [("UCdup", "new title", "old description", 20, "g1", 1.5), ("UCone", "one", None, None, None, None)]
    assert query(beat_url, "SELECT shortcode, playlist_id, comments, post_type FROM youtube_post ORDER BY 1") == [
        ("yt1", "PL1", 3, "video"),
        ("yt2", None, None, "short"),
    ]
    assert query(beat_url, "SELECT channel_id, country FROM youtube_profile_insights") == [("UCdup", {"IN": 1.0})]

    # Assets: the standard content type, never image/jpg.
    assert query(beat_url, "SELECT entity_id, asset_type, content_type FROM asset_log ORDER BY 1") == [
        ("lg000001", "IMAGE", "image/jpeg"),
        ("lg000002", "VIDEO", "video/mp4"),
        ("lg_p1", "IMAGE", "image/jpeg"),
    ]
    assert query(beat_url, 'SELECT platform_order_id, status, order_data FROM "order" ORDER BY 1') == [
        ("gid://shopify/Order/1", "paid", {"total": "12.50"}),
        ("gid://shopify/Order/2", None, None),
    ]

    # Requests: bigint ids as text, unfinished ones FAILED "not migrated", the attempt from retry_count.
    ids = [str(FIRST_REQUEST + n) for n in range(6)]
    rows = query(
        beat_url,
        "SELECT id, status, attempt, error_type, error_message, result, idempotency_key, picked_at IS NOT NULL, "
        "account_id FROM scrape_request_log ORDER BY id",
    )
    assert rows == [
        (ids[0], "COMPLETE", 1, None, None, None, "k-complete", True, "acct1"),
        (ids[1], "FAILED", 1, "LegacyFailure", "Missing Flow - x", None, None, False, None),
        (ids[2], "FAILED", 1, "NotMigrated", "not migrated; re-submit", None, "k-pending", False, None),
        (ids[3], "FAILED", 1, "NotMigrated", "not migrated; re-submit", None, None, True, None),
        (ids[4], "COMPLETE", 2, None, None, {"legacy_data": "{'csv': 's3://bucket/x.csv'}"}, None, False, None),
    ]
    assert query(beat_url, "SELECT count(*) FROM scrape_request_event") == [(5,)]
    # What GET /scrape_request_log/flow/{id} reads, for the legacy id.
    view = asyncio.run(status_of(beat_url, ids[2]))
    assert view is not None and (view["id"], view["status"], view["flow"]) == (
        ids[2],
        "FAILED",
        "refresh_profile_by_handle",
    )
    assert view["error"] == {"type": "NotMigrated", "message": "not migrated; re-submit"}

    # Again: everything read, nothing written.
    second = summaries(beat(beat_url, "legacy", "import", "--from", legacy_url, "--timezone", "Asia/Kolkata"))
    expected = {table: (read, 0, merged, refused) for table, (read, _, merged, refused) in FIRST_RUN.items()}
    assert counts(second) == {**expected, DERIVED: (0, 0, 0, {})}
    assert second[DERIVED]["note"] == "no account or post changed"
    assert query(beat_url, "SELECT count(*) FROM instagram_post") == [(POSTS + 3,)]


async def status_of(beat_url: str, request_id: str) -> dict | None:
    conn = await asyncpg.connect(beat_url)
    try:
        return await read_status(conn, request_id)
    finally:
        await conn.close()


def _progress(beat_url: str) -> tuple[int, bool] | None:
    rows = query(beat_url, "SELECT rows_read, done FROM legacy_import WHERE table_name = 'instagram_post'")
    return rows[0] if rows else None


def test_a_killed_import_resumes_with_the_same_counts(legacy_url, beat_url):
    args = [sys.executable, "-m", "app.cli", "legacy", "import", "--from", legacy_url]
    args += ["--table", "instagram_post", "--batch-size", "50"]
    process = subprocess.Popen(
        args, env=beat_env(database_url=beat_url), cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        deadline = time.monotonic() + 60
        while (progress := _progress(beat_url)) is None or progress[0] < 500:
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline, "the import never got under way"
            time.sleep(0.01)
        os.kill(process.pid, signal.SIGKILL)
        process.wait(10)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)
    read, done = _progress(beat_url) or (0, True)
    assert not done and 500 <= read < POSTS, "killed mid-table"

    resumed = summaries(beat(beat_url, *args[3:]))
    line = resumed["instagram_post"]
    assert line["note"].startswith("resumed after legacy id")
    read, written, merged, reasons = FIRST_RUN["instagram_post"]
    assert (line["read"], line["written"], line["merged"], by_type(line["refused_reasons"])) == (
        read,
        written,
        merged,
        reasons,
    )
    assert query(beat_url, "SELECT count(*) FROM instagram_post") == [(POSTS + 3,)]

    again = summaries(beat(beat_url, *args[3:]))["instagram_post"]
    assert (again["read"], again["written"], again["refused"]) == (read, 0, 2)


def test_credentials_move_as_json_lines_with_secrets_masked(legacy_url, beat_url, tmp_path: Path):
    exported = tmp_path / "keys.jsonl"
    shown = beat(beat_url, "legacy", "export-credentials", str(exported), "--from", legacy_url)
    assert exported.stat().st_mode & 0o777 == 0o600
    lines = [json.loads(line) for line in exported.read_text().splitlines()]
    assert {line["credentials"].get("token") for line in lines} >= {"EAAGalicetoken", "EAAGbobtoken99"}
    for secret in ("EAAGalicetoken", "EAAGbobtoken99", "rapidsecret123", "ytkeysecret"):
        assert secret not in shown.stdout + shown.stderr

    assert len(lines) == 3 and "2 credentials without secrets or a source left out" in shown.stderr

    # A bad line is refused before anything is written, naming the line and never quoting it.
    usable = exported.read_text()
    bad = usable + '{"source": "ytapitoken", "credentials": "ytkeysecret"}\n'
    refused = subprocess.run(
        [sys.executable, "-m", "app.cli", "legacy", "import-credentials", "-"],
        env=beat_env(database_url=beat_url),
        cwd=ROOT,
        capture_output=True,
        text=True,
        input=bad,
        timeout=60,
        check=False,
    )
    assert refused.returncode == 2 and "line 4: credentials" in refused.stderr, refused.stderr
    assert "ytkeysecret" not in refused.stderr
    assert query(beat_url, "SELECT count(*) FROM credential") == [(0,)]

    imported = beat(beat_url, "legacy", "import-credentials", "-", stdin=usable)
    printed = [json.loads(line) for line in imported.stdout.splitlines()]
    assert [(line["idempotency_key"], line["changed"]) for line in printed][:2] == [
        ("graphapi:111", True),
        ("graphapi:222", True),
    ]
    assert printed[0]["secrets"] == {"token": "…ken", "user_id": "***"}
    for secret in ("EAAGalicetoken", "EAAGbobtoken99", "rapidsecret123", "ytkeysecret"):
        assert secret not in imported.stdout + imported.stderr
    assert query(beat_url, "SELECT credentials FROM credential WHERE idempotency_key = 'graphapi:222'") == [
        ({"token": "EAAGbobtoken99", "user_id": "222"},)
    ]

    # Moving the same file again changes nothing.
    again = beat(beat_url, "legacy", "import-credentials", "-", stdin=usable)
    assert not any(json.loads(line)["changed"] for line in again.stdout.splitlines())


def test_an_older_legacy_schema_is_imported_with_what_it_has(beat_url):
    # schema.sql without the ORM's columns, and without a table at all.
    name = f"legacy_old_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(ADMIN_URL, autocommit=True, connect_timeout=3) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    try:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(
                "CREATE TABLE youtube_post (id bigserial PRIMARY KEY, shortcode text UNIQUE, title text, "
                "views bigint, updated_at timestamp);"
                "INSERT INTO youtube_post (shortcode, title, views, updated_at) VALUES ('old1', 't', 7, '2024-01-01')"
            )
        tables = ("--table", "youtube_post", "--table", "order")
        reported = summaries(beat(beat_url, "legacy", "import", "--from", url, *tables))
        # Finished, so the next run reads the table again rather than resume.
        again = summaries(beat(beat_url, "legacy", "import", "--from", url, *tables))["youtube_post"]
    finally:
        with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    assert (reported["youtube_post"]["read"], reported["youtube_post"]["written"]) == (1, 1)
    missing = set(reported["youtube_post"]["missing_legacy_columns"])
    assert {"comments", "post_type", "channel_id", "created_at"} <= missing
    assert reported["order"]["note"] == "no such table (or no id column) in the legacy database"
    assert (again["read"], again["written"], again.get("note")) == (1, 0, None)
    assert query(beat_url, "SELECT shortcode, title, views, created_at = observed_at FROM youtube_post") == [
        ("old1", "t", 7, True)
    ]
