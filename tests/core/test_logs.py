"""One log format for every library: JSON lines that parse one by one and carry the request's context,
or text in one shape; each flow logs under its own name."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest

from core.logs import configure_logging, flow_logger, request_context, source_context


@pytest.fixture
def restored() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def test_json_lines_parse_one_by_one_with_the_request_context(restored, capsys):
    # An in-process uvicorn (as a test's loopback provider runs) leaves its logger at its own level, off.
    library = logging.getLogger("uvicorn.error")
    library.setLevel(logging.WARNING)
    library.disabled = True
    configure_logging("INFO", "json", "worker")
    logging.getLogger("uvicorn.error").info("library line")
    with request_context("refresh_profile_basic", "req-1", 2), source_context("rapidapi-jotucker"):
        flow_logger("refresh_profile_basic").warning("about %s", "it")
    try:
        raise ValueError("boom")
    except ValueError:
        logging.getLogger("mode").exception("failed")
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    assert [line["message"] for line in lines] == ["library line", "about it", "failed"]
    assert all(line["role"] == "worker" and line["timestamp"].endswith("+00:00") for line in lines)
    assert "flow" not in lines[0]
    assert lines[1] == {
        **lines[1],
        "level": "WARNING",
        "logger": "beat.flow.refresh_profile_basic",
        "flow": "refresh_profile_basic",
        "request_id": "req-1",
        "attempt": 2,
        "source": "rapidapi-jotucker",
    }
    assert "ValueError: boom" in lines[2]["exception"]


def test_text_is_one_shape_with_the_context_at_the_end(restored, capsys):
    configure_logging("INFO", "text", "sink")
    logging.getLogger("faust.worker").info("plain")
    with request_context("f", "req-2", 1):
        logging.getLogger("providers.crawler").info("inside")
    plain, inside = capsys.readouterr().err.splitlines()
    assert plain.split(" ", 2)[2] == "INFO sink faust.worker: plain"
    assert inside.endswith("INFO sink providers.crawler: inside [flow=f request_id=req-2 attempt=1]")
