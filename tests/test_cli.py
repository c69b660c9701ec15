"""The command line: configuration errors, masking, the flow list and schemas."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.support import ROOT, beat_env


def beat(*args: str, **settings: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "app.cli", *args], env=beat_env(**settings), cwd=ROOT,
                          capture_output=True, text=True, timeout=60)


def test_invalid_setting_stops_startup_naming_it():
    result = beat("config", kafka_url="not a url", broker_session_timeout="2")
    assert result.returncode == 2
    assert "BEAT_KAFKA_URL" in result.stderr and "BEAT_BROKER_SESSION_TIMEOUT" in result.stderr


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
    assert len(lines) == 47
    disabled = {line.split()[0] for line in lines if " disabled " in line}
    # Every flow but the eleven YouTube CSV exports, which arrive with the Reports issue.
    assert len(disabled) == 11 and all(name.endswith("_csv") for name in disabled)
    assert all("not built yet" in line for line in lines if " disabled " in line)


def test_worker_refuses_a_glob_that_matches_nothing():
    result = beat("worker", "--flows", "refresh_nothing_*", kafka_url="127.0.0.1:1",
                  database_url="postgresql://x@127.0.0.1:1/x")
    assert result.returncode == 2 and "matches no flow" in result.stderr


def test_schemas_are_written(tmp_path):
    result = beat("schemas", "--out", str(tmp_path))
    assert result.returncode == 0, result.stderr
    written = {p.name for p in tmp_path.iterdir()}
    assert {"ScrapeRequest.schema.json", "RequestStatus.schema.json", "ProfileLog.schema.json",
            "PostLog.schema.json"} <= written
    profile = json.loads((tmp_path / "ProfileLog.schema.json").read_text())
    assert "schema_version" in profile["properties"] and "event_id" in profile["required"]
