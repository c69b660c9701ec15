"""The flow catalogue is contract (topics/flows.py); the worker's handler map must match it exactly."""

from __future__ import annotations

import dataclasses
import subprocess
import sys

import pytest

from agents.flows.registry import HANDLERS, HandlersMismatch, check_handlers
from topics.flows import FLOWS

_LOADED = """
import sys
import app.api, sinks.runner
print(" ".join(sorted(m for m in sys.modules if m == "openai" or m.startswith(("openai.", "agents.flows")))))
"""


def test_the_api_and_the_sink_load_no_flow_code():
    loaded = subprocess.run([sys.executable, "-c", _LOADED], capture_output=True, text=True, check=True)
    assert loaded.stdout.split() == []


def test_every_built_flow_has_a_handler_and_every_handler_a_flow():
    check_handlers()
    assert set(HANDLERS) == {name for name, spec in FLOWS.items() if spec.enabled}


def test_a_built_flow_without_a_handler_stops_the_check():
    handlers = {name: handler for name, handler in HANDLERS.items() if name != "refresh_yt_posts"}
    with pytest.raises(HandlersMismatch, match="flows without a handler: refresh_yt_posts;"):
        check_handlers(FLOWS, handlers)


def test_a_handler_for_a_pending_flow_stops_the_check():
    flows = {**FLOWS, "fetch_post_likes": dataclasses.replace(FLOWS["fetch_post_likes"], pending="not built")}
    with pytest.raises(HandlersMismatch, match=r"handlers without a built flow: fetch_post_likes$"):
        check_handlers(flows, HANDLERS)
