"""One log format for every process and library: text by default, JSON lines with ``BEAT_LOG_FORMAT=json``.

The root logger gets one handler on standard error; faust/mode and uvicorn are told not to install their
own (``loghandlers=[]``, ``log_config=None``), so their records pass through it too. Each record carries
the process's role and, while a request is being worked, its flow, request id, attempt and source, read
from context variables the worker sets (``request_context``): a line from deep inside a provider client
still says which request it was for. A JSON line is one object:
``{"timestamp", "level", "role", "logger", "message", "flow", "request_id", "attempt", "source"}``
(the last four only when known), plus ``exception`` with the traceback when there is one.
"""

from __future__ import annotations

import contextvars
import json
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

FLOW: contextvars.ContextVar[str | None] = contextvars.ContextVar("beat_flow", default=None)
REQUEST_ID: contextvars.ContextVar[str | None] = contextvars.ContextVar("beat_request_id", default=None)
ATTEMPT: contextvars.ContextVar[int | None] = contextvars.ContextVar("beat_attempt", default=None)
SOURCE: contextvars.ContextVar[str | None] = contextvars.ContextVar("beat_source", default=None)

_CONTEXT = (("flow", FLOW), ("request_id", REQUEST_ID), ("attempt", ATTEMPT), ("source", SOURCE))
TEXT_FORMAT = "%(asctime)s %(levelname)s %(role)s %(name)s: %(message)s%(context)s"


@contextmanager
def request_context(flow: str, request_id: str | None, attempt: int | None) -> Iterator[None]:
    """Every record logged inside (in this task and the tasks it starts) names the request."""
    flow_token, id_token, attempt_token = FLOW.set(flow), REQUEST_ID.set(request_id), ATTEMPT.set(attempt)
    try:
        yield
    finally:
        ATTEMPT.reset(attempt_token)
        REQUEST_ID.reset(id_token)
        FLOW.reset(flow_token)


@contextmanager
def source_context(source: str) -> Iterator[None]:
    """Records logged while one provider source is being called name it."""
    token = SOURCE.set(source)
    try:
        yield
    finally:
        SOURCE.reset(token)


class _Context(logging.Filter):
    """Stamps the role and the request context on every record, for both formats."""

    def __init__(self, role: str) -> None:
        super().__init__()
        self.role = role

    def filter(self, record: logging.LogRecord) -> bool:
        record.role = self.role
        found = {name: var.get() for name, var in _CONTEXT}
        context = {name: value for name, value in found.items() if value is not None}
        record.beat_context = context
        record.context = " [" + " ".join(f"{name}={value}" for name, value in context.items()) + "]" if context else ""
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        body: dict[str, Any] = {
            "timestamp": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "role": getattr(record, "role", None),
            "logger": record.name,
            "message": record.getMessage(),
            **getattr(record, "beat_context", {}),
        }
        if record.exc_info:
            body["exception"] = self.formatException(record.exc_info)
        return json.dumps(body, default=str, ensure_ascii=False)


def configure_logging(level: str, log_format: str, role: str) -> None:
    """Send every logger's records to standard error in the chosen format, stamped with ``role``."""
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(_Context(role))
    handler.setFormatter(JsonFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    # uvicorn and faust/mode name their own loggers; they keep no handler of their own, so they reach this one.
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "faust", "mode"):
        named = logging.getLogger(name)
        named.handlers.clear()
        named.propagate = True
        # A library configuring logging in this process (dictConfig, an in-process uvicorn's log_level) may
        # have switched it off or raised its level; Beat's level is the root's.
        named.disabled = False
        named.setLevel(logging.NOTSET)


def flow_logger(flow: str) -> logging.Logger:
    """The logger a flow's agent logs under: ``beat.flow.<flow>``, so each flow's lines can be told apart."""
    return logging.getLogger(f"beat.flow.{flow}")
