"""``beat topics plan|create|check`` against the session's broker, and a role that finds its topics missing
naming them instead of failing obscurely."""

from __future__ import annotations

import subprocess
import uuid

import psycopg
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from core.settings import Settings
from core.topic_admin import all_topics
from tests.support import ADMIN_URL, beat_env, run_beat, unique
from topics import names
from topics.flows import FLOWS


def beat(*args: str, **settings: object) -> subprocess.CompletedProcess:
    return run_beat(beat_env(**settings), *args)


def test_plan_lists_every_topic_with_the_configured_replication_and_retention():
    prefix = unique("plan")
    result = beat(
        "topics",
        "plan",
        topic_prefix=prefix,
        topic_replication="3",
        topic_min_insync_replicas="2",
        topic_retention_ms={"logs": 604_800_000, "dead_letter": 2_592_000_000},
    )
    assert result.returncode == 0, result.stderr
    lines = {line.split()[0]: line for line in result.stdout.splitlines()}
    assert set(lines) == set(all_topics(Settings(topic_prefix=prefix), FLOWS))
    assert all("replication=3" in line and "min.insync.replicas=2" in line for line in lines.values())
    assert "retention.ms=604800000" in lines[f"{prefix}{names.POST_LOG}"]
    assert "retention.ms=2592000000" in lines[f"{prefix}{names.DEAD_LETTER}"]
    assert "retention.ms" not in lines[f"{prefix}{names.scrape_topic('refresh_profile_basic')}"]


async def test_create_is_idempotent_and_check_names_what_differs(broker):
    prefix = unique("topics")
    settings = {"kafka_url": broker, "topic_prefix": prefix, "topic_retention_ms": {"logs": 3_600_000}}
    # One topic made by hand beforehand, with a partition count and retention the plan does not have.
    odd = f"{prefix}{names.PROFILE_LOG}"
    admin = AIOKafkaAdminClient(bootstrap_servers=broker)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(odd, 1, 1, topic_configs={"retention.ms": "60000"})])
    finally:
        await admin.close()

    planned = all_topics(Settings(topic_prefix=prefix), FLOWS)
    first = beat("topics", "create", **settings)
    assert first.returncode == 1, first.stderr  # created the rest, and reports the odd one
    created = [line.split()[1] for line in first.stdout.splitlines() if line.startswith("created ")]
    assert set(created) == set(planned) - {odd}
    assert f"differs  {odd}: partitions is 1, planned {planned[odd]}" in first.stdout
    assert f"differs  {odd}: retention.ms is 60000, planned 3600000" in first.stdout

    second = beat("topics", "create", **settings)
    assert "0 created" in second.stdout and second.returncode == 1

    check = beat("topics", "check", **settings)
    differing = {line.split()[1].rstrip(":") for line in check.stdout.splitlines() if line.startswith("differs")}
    assert check.returncode == 1 and differing == {odd}


def test_check_on_a_clean_plan_passes(broker):
    prefix = unique("clean")
    assert beat("topics", "create", kafka_url=broker, topic_prefix=prefix).returncode == 0
    check = beat("topics", "check", kafka_url=broker, topic_prefix=prefix)
    assert check.returncode == 0 and check.stdout.startswith("all "), check.stdout + check.stderr


def test_a_role_started_without_its_topics_names_them(broker, database_url):
    prefix = unique("bare")
    result = beat("worker", "--flows", "refresh_profile_basic", kafka_url=broker, database_url=database_url,
                  topic_prefix=prefix)  # fmt: skip
    assert result.returncode != 0
    assert f"{prefix}{names.scrape_topic('refresh_profile_basic')}" in result.stderr
    assert "beat topics create" in result.stderr
    assert "Traceback" not in result.stderr


def test_migrate_brings_an_empty_database_up_to_date():
    name = f"beat_migrate_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    try:
        first, second = beat("migrate", database_url=url), beat("migrate", database_url=url)
        assert first.returncode == 0 and second.returncode == 0, first.stderr + second.stderr
        with psycopg.connect(url) as conn:
            assert conn.execute("SELECT to_regclass('scrape_request_log') IS NOT NULL").fetchone() == (True,)
    finally:
        with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
