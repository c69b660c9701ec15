"""The command line: help and version, exit codes, one-line messages for ordinary mistakes, machine-readable
output (masked config, the flow list, schemas, status as JSON), progress on standard error."""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import sys
import uuid
from importlib.metadata import version
from pathlib import Path
from urllib.parse import urlsplit

import psycopg
import pytest
from typer.main import get_command

from app.cli import app
from core.topic_admin import ensure_topics
from tests.support import ROOT, TcpProxy, beat_env, run_beat, unique
from topics import names, registry


def beat(*args: str, extra_env: dict[str, str] | None = None, **settings: str) -> subprocess.CompletedProcess:
    return run_beat({**beat_env(**settings), **(extra_env or {})}, *args, timeout=60)


def one_line(result: subprocess.CompletedProcess) -> str:
    """The whole of standard error, which must be one plain line: no traceback, no colour off a terminal."""
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr and "\x1b" not in result.stderr, result.stderr
    return lines[0]


def closed_port() -> int:
    """A loopback port nothing listens on (it was just free)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# Help, version, exit codes.


def test_version_is_the_package_version():
    result = beat("--version")
    assert result.returncode == 0 and result.stdout == f"beat {version('beat')}\n", result.stderr


def test_every_option_and_argument_has_help():
    undocumented = []

    def walk(command, path: str) -> None:
        undocumented.extend(
            f"{path} {param.name}" for param in command.params if not getattr(param, "hidden", False) and not param.help
        )
        for name, sub in getattr(command, "commands", {}).items():
            walk(sub, f"{path} {name}")

    walk(get_command(app), "beat")
    assert not undocumented


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("credentials", "disable", "abc"), "beat credentials disable: Invalid value for 'ID'"),
        (("status",), "beat status: Missing argument 'ID'"),
        (("dlq", "list", "--since", "yesterday"), "beat dlq list: Invalid value for '--since'"),
        (("submit", "refresh_profile_basic", "handle"), "beat submit: expected key=value, got 'handle'"),
        (("bogus",), "beat: No such command 'bogus'"),
    ],
)
def test_usage_errors_exit_2_with_one_line(tmp_path, args, expected):
    result = beat(*args, data_dir=str(tmp_path))
    assert result.returncode == 2 and not result.stdout
    assert one_line(result).startswith(expected)


def test_messages_are_coloured_on_a_terminal_only(tmp_path):
    terminal = beat("status", data_dir=str(tmp_path), extra_env={"TTY_COMPATIBLE": "1", "TERM": "xterm"})
    assert terminal.returncode == 2 and "\x1b[" in terminal.stderr
    assert "\x1b[" not in beat("status", data_dir=str(tmp_path)).stderr


def test_invalid_setting_stops_startup_naming_it():
    result = beat("config", kafka_url="not a url", broker_session_timeout="2")
    assert result.returncode == 1
    line = one_line(result)
    assert "BEAT_KAFKA_URL" in line and "BEAT_BROKER_SESSION_TIMEOUT" in line


def test_a_setting_that_is_not_json_is_named():
    result = beat("flows", flow_concurrency='{"refresh_profile_basic": ')
    assert result.returncode == 1 and not result.stdout
    assert "BEAT_FLOW_CONCURRENCY: not valid JSON" in one_line(result)


def test_a_closed_pipe_ends_the_command_quietly():
    proc = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "flows"],
        env=beat_env(),
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    proc.stdout.close()  # the reader is gone before the first line is written
    err = proc.stderr.read()
    assert proc.wait(60) == 1 and err == b"", err.decode()

    # And as a person types it.
    # shell=True: the pipe is the case.
    piped = subprocess.run(  # noqa: S602
        f"{sys.executable} -m app.cli flows | head -1",
        shell=True,
        env=beat_env(),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert piped.stdout.startswith("refresh_profile_by_handle ") and len(piped.stdout.splitlines()) == 1
    assert piped.stderr == ""


# Output that scripts read.


def test_config_masks_secrets():
    result = beat("config", database_url="postgresql://beat:s3cret@db:5432/beat", amqp_url="amqp://u:pw@mq/")
    assert result.returncode == 0, result.stderr
    config = json.loads(result.stdout)
    assert "s3cret" not in result.stdout and "pw@" not in result.stdout
    assert config["database_url"] == "postgresql://beat:***@db:5432/beat"
    assert config["amqp_url"] == "***"


def test_flows_lists_every_legacy_flow():
    result = beat("flows")
    lines = result.stdout.splitlines()
    # The 47 legacy flows, and the three legacy listeners run as flows (sentiment, the collection reports).
    assert len(lines) == 50
    # Every legacy flow runs.
    assert not [line for line in lines if " disabled " in line]


def test_worker_refuses_a_glob_that_matches_nothing():
    result = beat(
        "worker", "--flows", "refresh_nothing_*", kafka_url="127.0.0.1:1", database_url="postgresql://x@127.0.0.1:1/x"
    )
    assert result.returncode == 2 and "matches no flow" in result.stderr
    # Several globs follow one --flows, as they always have: the second one is read too.
    several = beat(
        "worker",
        "--flows",
        "refresh_profile_basic",
        "refresh_nada_*",
        kafka_url="127.0.0.1:1",
        database_url="postgresql://x@127.0.0.1:1/x",
    )
    assert several.returncode == 2 and "'refresh_nada_*' matches no flow" in one_line(several)


def test_schemas_are_written_one_file_per_topic(tmp_path):
    result = beat("schemas", "--out", str(tmp_path))
    assert result.returncode == 0, result.stderr
    written = {p.name for p in tmp_path.iterdir()}
    assert written == {spec.schema_file for spec in registry.TOPICS}
    assert {f"{topic}.json" for topic in (*names.LOG_TOPICS, names.STATUS, names.DEAD_LETTER, names.TRACE_LOG)} | {
        "beat.scrape.json"
    } == written
    assert result.stdout.splitlines() == [str(tmp_path / spec.schema_file) for spec in registry.TOPICS]
    profile = json.loads((tmp_path / "profile_log.json").read_text())
    assert "schema_version" in profile["properties"] and "event_id" in profile["required"]
    assert profile["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert profile["$id"] == "urn:beat:topic:profile_log:v1" and profile["title"] == "profile_log"
    assert "Record key: PLATFORM:profile_id" in profile["description"]
    assert profile["properties"]["kind"]["examples"] == ["profile", "profile_insights", "gpt_enrichment"]
    assert profile["properties"]["event_id"]["description"]
    # A consumer validating with this schema accepts an event that gained a field.
    assert "additionalProperties" not in profile
    orders = json.loads((tmp_path / "order_log.json").read_text())
    assert orders["properties"]["kind"]["examples"] == ["order"]


def test_schemas_take_the_directory_as_an_argument(tmp_path):
    result = beat("schemas", str(tmp_path / "out"))
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "out" / "yt_profile_relationship_log.json").exists()
    both = beat("schemas", str(tmp_path / "a"), "--out", str(tmp_path / "b"))
    assert both.returncode == 2 and "two directories given" in one_line(both)


def _completed_request(database_url: str, params: dict, result: dict) -> str:
    request_id = str(uuid.uuid4())
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO scrape_request_log (id, flow, params, status, result) "
            "VALUES (%s, 'refresh_profile_basic', %s::jsonb, 'COMPLETE', %s::jsonb)",
            (request_id, json.dumps(params), json.dumps(result)),
        )
    return request_id


def _status_json(stdout: str) -> dict:
    """The JSON document `beat status` prints before its `stored:` line."""
    document = stdout[: stdout.index("\nstored: ")]
    return json.loads(document)


def test_status_prints_params_and_result_as_json_objects(database_url, tmp_path):
    params, result = {"handle": unique("status")}, {"announced": 0, "dropped_metrics": ["plays"]}
    request_id = _completed_request(database_url, params, result)
    shown = beat("status", request_id, database_url=database_url, kafka_url="127.0.0.1:9", data_dir=str(tmp_path))
    assert shown.returncode == 0, shown.stderr
    row = _status_json(shown.stdout)
    assert row["id"] == request_id and row["params"] == params and row["result"] == result


# Services that do not answer.


def test_an_unreachable_database_is_one_line_naming_it(database_url, tmp_path):
    request_id = _completed_request(database_url, {"handle": unique("cut")}, {"announced": 0})
    target = urlsplit(database_url)
    proxy = TcpProxy(target.hostname or "127.0.0.1", target.port or 5432).start()
    try:
        settings = {"database_url": proxy.url(database_url), "kafka_url": "127.0.0.1:9", "data_dir": str(tmp_path)}
        assert beat("status", request_id, **settings).returncode == 0  # the way through the proxy works
        proxy.cut()
        for args in (
            ("status", request_id),
            ("sources",),
            ("dlq", "list"),
            ("credentials", "list"),
            ("retry", "--dry-run"),
        ):
            result = beat(*args, **settings)
            assert result.returncode == 1 and not result.stdout, (args, result.stderr)
            assert f"Postgres at {proxy.url(database_url)} does not answer" in one_line(result), args
    finally:
        proxy.stop()


def test_a_refused_port_and_a_missing_database_are_one_line(tmp_path):
    port = closed_port()
    result = beat(
        "status",
        "x",
        database_url=f"postgresql://beat@127.0.0.1:{port}/beat",
        kafka_url="127.0.0.1:9",
        data_dir=str(tmp_path),
    )
    assert result.returncode == 1 and "does not answer (ConnectionRefusedError" in one_line(result)
    missing = beat(
        "status",
        "x",
        database_url=f"postgresql://postgres@127.0.0.1:5432/{unique('nodb')}",
        kafka_url="127.0.0.1:9",
        data_dir=str(tmp_path),
    )
    assert missing.returncode == 1 and "refused: InvalidCatalogNameError" in one_line(missing)


def test_a_stale_endpoints_file_reads_as_a_stopped_beat_up(tmp_path, broker, database_url):
    endpoints = tmp_path / "endpoints.json"
    endpoints.write_text(
        json.dumps(
            {
                "kafka": f"127.0.0.1:{closed_port()}",
                "api": "http://127.0.0.1:1",
                "database": f"postgresql://beat@127.0.0.1:{closed_port()}/beat",
            }
        )
    )
    for args in (("status", "x"), ("submit", "refresh_profile_basic", "handle=x")):
        result = beat(*args, data_dir=str(tmp_path))
        assert result.returncode == 1 and not result.stdout
        line = one_line(result)
        assert f"{endpoints} names a `beat up` that is not running (the broker and Postgres do not answer)" in line

    # The same file naming services that answer is used as before.
    endpoints.write_text(json.dumps({"kafka": broker, "database": database_url, "api": "http://127.0.0.1:1"}))
    result = beat("status", "no-such-request", data_dir=str(tmp_path))
    assert result.returncode == 1 and one_line(result) == "beat status: no request no-such-request"


# Submitting.


def test_submit_checks_the_flow_and_params_before_looking_for_a_stack(tmp_path):
    no_stack = {"data_dir": str(tmp_path)}  # no URLs and no endpoints.json
    typo = beat("submit", "refresh_profil_basic", "handle=x", **no_stack)
    assert typo.returncode == 2 and "unknown flow 'refresh_profil_basic'; enabled flows: " in one_line(typo)
    assert "beat up" not in typo.stderr
    no_params = beat("submit", "refresh_profile_basic", **no_stack)
    assert no_params.returncode == 2 and "profile_id or handle is required" in one_line(no_params)
    # A valid request gets as far as looking for the stack.
    valid = beat("submit", "refresh_profile_basic", "handle=x", **no_stack)
    assert valid.returncode == 1 and "no running `beat up` found" in one_line(valid)


@pytest.fixture
def submit_env(broker, database_url, tmp_path) -> dict[str, str]:
    """Settings of a real broker and database, with the topics `beat submit` produces to."""
    prefix = f"cli{uuid.uuid4().hex[:6]}."
    topics = {f"{prefix}{names.scrape_topic('refresh_profile_basic')}": 1, f"{prefix}{names.STATUS}": 1}
    asyncio.run(ensure_topics(broker, topics))
    return {"kafka_url": broker, "database_url": database_url, "topic_prefix": prefix, "data_dir": str(tmp_path)}


def _rows(database_url: str, tag: str) -> list[tuple]:
    with psycopg.connect(database_url) as conn:
        return conn.execute(
            "SELECT id, status, enqueued FROM scrape_request_log WHERE params->>'handle' LIKE %s "
            "ORDER BY params->>'handle'",
            (f"{tag}%",),
        ).fetchall()


def test_a_bad_line_in_the_file_is_named_and_nothing_is_written(submit_env, database_url, tmp_path):
    tag = unique("badline")
    good = json.dumps({"flow": "refresh_profile_basic", "params": {"handle": f"{tag}_1"}})
    cases = {
        "not JSON": ([good, "", '{"flow": "refresh_profile_basic", '], ":3: not JSON"),
        "unknown flow": ([good, json.dumps({"flow": "refresh_profil", "params": {}})], ":2: unknown flow"),
        "bad params": (
            [good, json.dumps({"flow": "refresh_profile_basic", "params": {"handle": 7}})],
            ":2: params.handle",
        ),
    }
    for what, (lines, named) in cases.items():
        path = tmp_path / f"{what.replace(' ', '_')}.jsonl"
        path.write_text("\n".join(lines) + "\n")
        result = beat("submit", "--file", str(path), **submit_env)
        assert result.returncode == 2 and not result.stdout, (what, result.stderr)
        assert one_line(result).startswith(f"beat submit: {path}{named}"), what
    assert _rows(database_url, tag) == []


def test_submit_file_prints_ids_on_stdout_and_progress_on_stderr(submit_env, database_url, tmp_path):
    tag = unique("file")
    path = Path(tmp_path / "requests.jsonl")
    path.write_text(
        "".join(
            json.dumps({"flow": "refresh_profile_basic", "params": {"handle": f"{tag}_{n}"}}) + "\n" for n in range(3)
        )
    )
    # TTY_COMPATIBLE makes rich treat standard error as the terminal a person would have.
    result = beat("submit", "--file", str(path), extra_env={"TTY_COMPATIBLE": "1"}, **submit_env)
    assert result.returncode == 0, result.stderr
    ids = result.stdout.splitlines()
    assert len(ids) == 3 and all(uuid.UUID(request_id) for request_id in ids)
    assert "submitting requests.jsonl" in result.stderr and "3/3" in result.stderr
    assert _rows(database_url, tag) == [(request_id, "PENDING", True) for request_id in ids]
