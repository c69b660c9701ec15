"""``beat up --sandbox`` on a bare data directory: endpoints, a request through the CLI, clean stop, restart."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import httpx
import psutil

from tests.support import ROOT, beat_env


def _beat(env, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "app.cli", *args], env=env, cwd=ROOT, capture_output=True, text=True, timeout=120
    )


def _up(env, log_path):
    with open(log_path, "ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "app.cli", "up", "--sandbox"],
            env=env,
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def _wait_for_endpoints(path, proc, log_path, timeout=120.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, log_path.read_text()[-3000:]
        if path.exists():
            return json.loads(path.read_text())
        time.sleep(0.2)
    raise AssertionError("beat up never wrote endpoints.json:\n" + log_path.read_text()[-3000:])


def _wait_status(env, request_id: str, wanted: str, timeout: float = 90.0) -> str:
    deadline = time.monotonic() + timeout
    output = ""
    while time.monotonic() < deadline:
        output = _beat(env, "status", request_id).stdout
        if f'"status": "{wanted}"' in output:
            return output
        time.sleep(0.5)
    raise AssertionError(f"{request_id} never reached {wanted}:\n{output}")


def _stop(proc) -> list[psutil.Process]:
    children = psutil.Process(proc.pid).children(recursive=True)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(120) == 0
    _gone, alive = psutil.wait_procs(children, timeout=10)
    return alive


def test_up_runs_everything_and_restarts_on_the_same_data(tmp_path):
    data_dir = tmp_path / "beat"
    # Two worker processes: `beat up` runs the worker with the setting's count, and its SIGTERM reaches them.
    env = beat_env(
        data_dir=str(data_dir), api_port="0", broker_session_timeout="6", log_level="INFO", worker_processes="2"
    )
    log_path = tmp_path / "up.log"
    endpoints_file = data_dir / "endpoints.json"

    proc = _up(env, log_path)
    try:
        endpoints = _wait_for_endpoints(endpoints_file, proc, log_path)
        assert set(endpoints) == {"kafka", "database", "api", "sandbox", "api_key"}
        # The stack's key has every scope, and its facade needs it: the file is its owner's alone.
        assert endpoints_file.stat().st_mode & 0o777 == 0o600
        assert httpx.get(f"{endpoints['api']}/flows/refresh_profile_basic").status_code == 401
        key = {"Authorization": f"Bearer {endpoints['api_key']}"}
        assert httpx.get(f"{endpoints['api']}/flows/refresh_profile_basic", headers=key).status_code == 200
        assert httpx.put(f"{endpoints['api']}/heartbeat?beat=true", headers=key).status_code == 200
        assert endpoints["api_key"] not in log_path.read_text()
        worker = next(
            c for c in psutil.Process(proc.pid).children() if c.cmdline()[-3:] == ["worker", "--processes", "2"]
        )
        # The supervisor starts its children after beat up has written its endpoints.
        deadline = time.monotonic() + 60
        while len(worker.children()) < 2 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert len(worker.children()) == 2
        submitted = _beat(env, "submit", "refresh_profile_basic", "handle=up_test")
        assert submitted.returncode == 0, submitted.stderr
        request_id = submitted.stdout.strip()
        _wait_status(env, request_id, "COMPLETE")
    finally:
        left = _stop(proc)
    assert not left, f"children still running after beat up stopped: {left}"
    assert "Beat is up." in log_path.read_text()
    assert "workers  2 processes" in log_path.read_text()

    # A second `beat up` on the same directory keeps the Postgres data (and its URL).
    endpoints_file.unlink()
    proc = _up(env, log_path)
    try:
        again = _wait_for_endpoints(endpoints_file, proc, log_path)
        assert again["database"] == endpoints["database"]
        # A restart replaces the stack's key: the last one is revoked, not piled up.
        assert again["api_key"] != endpoints["api_key"]
        stale = {"x-api-key": endpoints["api_key"]}
        assert httpx.get(f"{again['api']}/flows/refresh_profile_basic", headers=stale).status_code == 401
        assert '"status": "COMPLETE"' in _beat(env, "status", request_id).stdout
    finally:
        assert not _stop(proc)
