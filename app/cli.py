"""The ``beat`` command line (typer, with rich help, progress and messages).

Standard output carries the data (ids, JSON, tables); standard error everything for a person: progress
(``app/progress.py``) and, when something is wrong, one line naming the command and why. Exit codes: 0 on
success, 2 when the command line or the input it names is wrong (nothing was attempted), 1 for any other
failure. The dead-letter and credential commands live in ``app/cli_redrive.py`` and
``app/cli_credentials.py``; what every command shares in ``app/cli_support.py``.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Callable
from importlib.metadata import version
from pathlib import Path
from typing import Annotated, Any

import typer

from app.cli_costs import costs
from app.cli_credentials import credentials_app
from app.cli_keys import keys_app
from app.cli_legacy import legacy_app
from app.cli_redrive import dlq_app, retry
from app.cli_support import (
    Failure,
    Usage,
    command_settings,
    complain,
    connected,
    require_embedded,
    run_against_services,
)
from app.cli_topics import require_role_topics, topics_app
from app.progress import tracked
from core.settings import Settings, dump_json, mask_url

app = typer.Typer(
    name="beat",
    help="Beat: scrape requests in, normalized events out.",
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
app.add_typer(credentials_app, name="credentials")
app.add_typer(dlq_app, name="dlq")
app.add_typer(keys_app, name="keys")
app.add_typer(topics_app, name="topics")
app.add_typer(legacy_app, name="legacy")
app.command()(costs)


def _show_version(wanted: bool) -> None:
    if wanted:
        print(f"beat {version('beat')}")
        raise typer.Exit()


@app.callback()
def _beat(
    _version: Annotated[
        bool, typer.Option("--version", callback=_show_version, is_eager=True, help="print Beat's version and exit")
    ] = False,
) -> None:
    """Beat: scrape requests in, normalized events out."""


# The processes.

MetricsPort = Annotated[
    int | None,
    typer.Option(
        "--metrics-port",
        metavar="PORT",
        min=0,
        max=65535,
        help="port of /metrics, /healthz and /readyz (default: BEAT_METRICS_PORT, else the role's own; 0: a free one)",
    ),
]


def _role_settings(role: str, metrics_port: int | None) -> Settings:
    """A process's settings, logging stamped with its role, and ``--metrics-port`` over BEAT_METRICS_PORT."""
    from core.tracing import configure_tracing

    settings = command_settings(role)
    configure_tracing(settings.otel_endpoint, role)
    return settings if metrics_port is None else settings.model_copy(update={"metrics_port": metrics_port})


@app.command()
def up(
    sandbox: Annotated[bool, typer.Option("--sandbox", help="point providers at the built-in sandbox")] = False,
) -> int:
    """Embedded stack + worker + sink + api as child processes."""
    require_embedded()
    from app.stack import run_up
    from providers.ratelimit import RateLimitConfigError

    try:
        return run_up(command_settings(), sandbox=sandbox)
    except RateLimitConfigError as exc:
        raise Failure(str(exc)) from None


@app.command()
def worker(
    flows: Annotated[
        list[str] | None,
        typer.Option(
            "--flows",
            metavar="GLOB",
            help="flow name globs, several after one --flows (default: every enabled flow); !GLOB leaves flows out",
        ),
    ] = None,
    more_flows: Annotated[list[str] | None, typer.Argument(metavar="GLOB", hidden=True)] = None,
    processes: Annotated[
        int | None,
        typer.Option(
            "--processes",
            metavar="N",
            min=1,
            help="worker processes in the one consumer group, supervised (default: BEAT_WORKER_PROCESSES, "
            "else the usable CPU count)",
        ),
    ] = None,
    metrics_port: MetricsPort = None,
) -> int:
    """Request agents for the selected flows."""
    from agents.observing import WORKER_CHECKS
    from agents.worker import DrainingWorker, build_worker_app
    from app.worker_processes import check_shares, process_count, run_worker_processes
    from core.health import serve_metrics
    from providers.ratelimit import RateLimitConfigError
    from topics.flows import UnknownFlow, select_flows

    if more_flows and not flows:
        raise Usage(f"unexpected argument {more_flows[0]!r}: flow globs follow --flows")
    globs = [*(flows or []), *(more_flows or [])]
    settings = _role_settings("worker", metrics_port)
    try:
        selection = select_flows(globs or None, settings.disabled_flows)
    except UnknownFlow as exc:
        raise Usage(str(exc)) from None
    settings = connected(settings)
    try:
        count = process_count(settings, processes)
        check_shares(settings, count)
        require_role_topics(settings, [flow.name for flow in selection.enabled])
        if count > 1:
            return run_worker_processes(settings, globs, selection.enabled, count)
    except RateLimitConfigError as exc:
        raise Failure(str(exc)) from None
    worker_app, runtime = build_worker_app(settings, selection)
    _server, health = serve_metrics("worker", settings, WORKER_CHECKS)
    runtime.observe(health)
    DrainingWorker(
        worker_app,
        runtime,
        loglevel=settings.log_level.lower().replace("warning", "warn"),
        quiet=True,
        redirect_stdouts=False,
    ).execute_from_commandline()
    return 0


@app.command()
def sink(metrics_port: MetricsPort = None) -> int:
    """Postgres sink and reconciler."""
    from sqlalchemy.exc import OperationalError

    from core.health import serve_metrics
    from sinks.runner import run_sink
    from sinks.schema import migrate

    settings = connected(_role_settings("sink", metrics_port))
    assert settings.database_url, "connected() fills it or fails"
    # No topic check here: the sink's reconciler is what keeps the topics (core.topic_admin.TopicKeeper), and
    # creates those an in-memory broker lost, with the configured replication and configs.
    try:
        migrate(settings.database_url)
    except OperationalError as exc:
        raise Failure(f"Postgres at {mask_url(settings.database_url or '')} does not answer ({exc.orig})") from None
    _server, health = serve_metrics("sink", settings, ("postgres", "broker", "assigned"))
    return run_sink(settings, health)


@app.command()
def migrate() -> int:
    """Bring the Postgres schema up to date (a deployment's one-shot step before the roles start)."""
    from sqlalchemy.exc import OperationalError

    from sinks.schema import migrate as migrate_schema

    settings = command_settings()
    if not settings.database_url:
        raise Failure("BEAT_DATABASE_URL is not set; `beat migrate` migrates the database it names")
    try:
        migrate_schema(settings.database_url)
    except OperationalError as exc:
        raise Failure(f"Postgres at {mask_url(settings.database_url)} does not answer ({exc.orig})") from None
    typer.echo("the schema is up to date")
    return 0


@app.command()
def mirror(metrics_port: MetricsPort = None) -> int:
    """Legacy RabbitMQ events (needs BEAT_AMQP_URL)."""
    from core.health import serve_metrics
    from sinks.mirror import run_mirror

    settings = _role_settings("mirror", metrics_port)
    if settings.amqp_url is None or not settings.amqp_url.get_secret_value():
        raise Failure(
            "BEAT_AMQP_URL is not set; the mirror needs the RabbitMQ it publishes the legacy events to "
            "(e.g. amqp://guest:guest@127.0.0.1:5672/)"
        )
    # The mirror needs only the broker: no database URL required when the Kafka URL is given.
    _server, health = serve_metrics("mirror", settings, ("amqp", "broker", "assigned"))
    return run_mirror(settings if settings.kafka_url else connected(settings), health)


@app.command()
def listen(metrics_port: MetricsPort = None) -> int:
    """The five legacy inbound RabbitMQ queues (needs BEAT_AMQP_URL)."""
    from core.health import serve_metrics
    from sinks.listener import run_listener

    settings = _role_settings("listener", metrics_port)
    if settings.amqp_url is None or not settings.amqp_url.get_secret_value():
        raise Failure("BEAT_AMQP_URL is not set; the listener needs the RabbitMQ whose legacy queues it reads")
    # Liveness and /metrics; its readiness has no check of its own yet (sinks/listener.py can set "amqp").
    serve_metrics("listener", settings)
    return run_listener(connected(settings))


@app.command()
def api(metrics_port: MetricsPort = None) -> int:
    """HTTP facade."""
    import uvicorn

    from app.api import create_api
    from app.api_metrics import observe_api
    from app.cli_keys import exposure_check

    settings = connected(_role_settings("api", metrics_port))
    require_role_topics(settings)
    exposure_check(settings)
    facade = create_api(settings)
    observe_api(facade, settings)
    uvicorn.run(
        facade,
        host=settings.api_host,
        port=settings.api_port,
        log_level=settings.log_level.lower(),
        access_log=False,
        # Its records go through Beat's one handler and format (core/logs.py).
        log_config=None,
    )
    return 0


@app.command("sandbox")
def sandbox_server(
    port: Annotated[int, typer.Option("--port", metavar="PORT", help="port to listen on, on 127.0.0.1")] = 8900,
) -> int:
    """The provider sandbox HTTP server."""
    from providers.sandbox.config import SandboxConfig
    from providers.sandbox.server import run

    command_settings()
    run("127.0.0.1", port, SandboxConfig.from_env())
    return 0


# Requests.


def _parse_params(pairs: list[str]) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep:
            raise Usage(f"expected key=value, got {pair!r}")
        try:
            params[key] = json.loads(raw)
        except json.JSONDecodeError:
            params[key] = raw
    return params


def _read_requests(path: Path) -> list[tuple[str, str, dict[str, Any]]]:
    """(where, flow, params) of each line of a JSON-lines file, ``where`` being ``path:line``; Usage naming
    the first bad line."""
    requests = []
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise Usage(f"cannot read {path}: {exc}") from None
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            body = json.loads(line)
        except (ValueError, RecursionError) as exc:
            raise Usage(f"{path}:{number}: not JSON ({exc})") from None
        if (
            not isinstance(body, dict)
            or not isinstance(body.get("flow"), str)
            or not isinstance(body.get("params", {}), dict)
        ):
            raise Usage(f'{path}:{number}: expected {{"flow": "…", "params": {{…}}}}')
        requests.append((f"{path}:{number}", body["flow"], body.get("params", {})))
    return requests


def _prepared(settings: Settings, requests: list[tuple[str, str, dict[str, Any]]]) -> list[Any]:
    """Every request checked before the first is written, so a refused batch leaves no rows behind."""
    from pydantic import ValidationError

    from core.requests import check_fits, prepare
    from topics.flows import FlowRefused

    prepared = []
    for where, flow, params in requests:
        try:
            request = prepare(flow, params, disabled=settings.disabled_flows)
            check_fits(request, settings.max_message_bytes)
        except (FlowRefused, ValidationError, ValueError) as exc:  # core.requests.Refused is a ValueError
            raise Usage(f"{where}: {exc}" if where else str(exc)) from None
        prepared.append(request)
    return prepared


async def _submit_all(settings: Settings, prepared: list[Any], submitted: Callable[[], None]) -> list[str]:
    import asyncpg

    from core.kafka import start_producer
    from core.requests import submit

    # No connection up front: with Postgres down, submit() decides (a durable broker takes the requests alone).
    pool = await asyncpg.create_pool(settings.database_url, min_size=0, max_size=4)
    try:
        producer = await start_producer(settings)
        try:
            ids = []
            for request in prepared:
                ids.append(await submit(pool, producer, settings, request))
                submitted()
            return ids
        finally:
            await producer.stop()
    finally:
        await pool.close()


@app.command("submit")
def submit_requests(
    flow: Annotated[str | None, typer.Argument(metavar="FLOW", help="the flow to run (see `beat flows`)")] = None,
    params: Annotated[
        list[str] | None,
        typer.Argument(metavar="KEY=VALUE", help="the flow's params; a value that parses as JSON is taken as JSON"),
    ] = None,
    file: Annotated[
        Path | None,
        typer.Option(
            "--file",
            metavar="FILE",
            dir_okay=False,
            help='JSON lines, each {"flow": …, "params": {…}}, instead of FLOW',
        ),
    ] = None,
) -> int:
    """Submit requests (recorded PENDING, then produced); prints each request's id."""
    if file is not None and flow is not None:
        raise Usage("give FLOW key=value … or --file requests.jsonl, not both")
    if file is None and flow is None:
        raise Usage("give FLOW key=value … or --file requests.jsonl")
    settings = command_settings()
    requests = _read_requests(file) if file is not None else [("", flow or "", _parse_params(params or []))]
    prepared = _prepared(settings, requests)
    settings = connected(settings)
    if file is None:
        ids = run_against_services(settings, _submit_all(settings, prepared, lambda: None))
    else:
        with tracked(f"submitting {file.name}", len(prepared)) as bar:
            ids = run_against_services(settings, _submit_all(settings, prepared, bar.advance))
    for request_id in ids:
        print(request_id)
    return 0


async def _request_with_events(settings: Settings, request_id: str) -> tuple[Any, list[Any]]:
    import asyncpg

    from core.status_reads import read_status, read_timeline

    conn = await asyncpg.connect(settings.database_url)
    try:
        return await read_status(conn, request_id), await read_timeline(conn, request_id)
    finally:
        await conn.close()


@app.command()
def status(request_id: Annotated[str, typer.Argument(metavar="ID", help="the request's id")]) -> int:
    """A request's status and timeline."""
    settings = connected(command_settings())
    row, events = run_against_services(settings, _request_with_events(settings, request_id))
    if row is None:
        raise Failure(f"no request {request_id}")
    print(dump_json(row))
    if row["status"] != "COMPLETE":
        print(f"stored: no, the request is {row['status']}")
    else:
        announced = "?" if row["events_announced"] is None else row["events_announced"]
        print(
            f"stored: {'yes' if row['stored'] else 'no'}, {row['events_written'] or 0} of {announced} announced "
            f"events written, {row['events_refused'] or 0} refused"
            + (f" ({row['refused_reason']})" if row["refused_reason"] else "")
        )
    for event in events:
        print(
            f"  {event['at']:%Y-%m-%d %H:%M:%S.%f} attempt {event['attempt']} {event['status']}"
            + (f" via {event['source']}" if event["source"] else "")
            + (f" error {event['error']}" if event["error"] else "")
        )
    return 0


app.command()(retry)


# Circuits and configuration.


async def _circuits(settings: Settings) -> list[Any]:
    import asyncpg

    from providers.breaker import recorded_states

    conn = await asyncpg.connect(settings.database_url)
    try:
        return await recorded_states(conn)
    finally:
        await conn.close()


@app.command()
def sources(
    worker_metrics: Annotated[
        list[str] | None,
        typer.Option(
            "--worker-metrics",
            metavar="URL",
            help="a worker's metrics port to ask for drift findings, repeatable (default: this host's worker port)",
        ),
    ] = None,
) -> int:
    """Each source's circuit: state, failures, next probe; then the drift the workers' parsers found."""
    from app.cli_drift import drift_lines
    from core.health import metrics_port

    settings = connected(command_settings())
    rows = run_against_services(settings, _circuits(settings))
    _print_circuits(rows)
    print()
    port = metrics_port(settings, "worker")
    if worker_metrics or port:
        print("\n".join(drift_lines(worker_metrics or [f"http://{settings.metrics_host}:{port}"])))
    else:
        print("drift: the workers serve their metrics on free ports (BEAT_METRICS_PORT=0); name them: --worker-metrics")
    return 0


def _print_circuits(rows: list[Any]) -> None:
    if not rows:
        print("no circuit has opened: every source is closed")
        return
    print(f"{'scope':<40} {'state':<9} {'failures':>8}  {'next probe':<28} last error")
    for row in rows:
        if row["next_probe_at"] is None:
            probe = "-"
        else:
            seconds = row["probe_in"].total_seconds()
            probe = f"{row['next_probe_at']:%Y-%m-%d %H:%M:%S}Z ({f'in {seconds:.0f}s' if seconds > 0 else 'due'})"
        print(f"{row['scope']:<40} {row['state']:<9} {row['failures']:>8}  {probe:<28} {row['last_error'] or ''}")


@app.command()
def flows() -> int:
    """Every flow, enabled or not."""
    from topics.flows import FLOWS

    settings = command_settings()
    width = max(map(len, FLOWS))
    for spec in FLOWS.values():
        enabled = spec.enabled and spec.name not in settings.disabled_flows
        state = "enabled " if enabled else "disabled"
        concurrency = settings.concurrency_of(spec)
        note = "" if enabled else f"  {spec.pending or 'disabled by BEAT_DISABLED_FLOWS'}"
        print(f"{spec.name:<{width}}  {spec.platform.value:<9}  {state}  concurrency {concurrency:>3}{note}")
    return 0


@app.command()
def config() -> int:
    """Effective configuration, secrets masked."""
    print(dump_json(command_settings().masked()))
    return 0


@app.command()
def schemas(
    directory: Annotated[
        Path | None,
        typer.Argument(metavar="DIR", file_okay=False, help="directory to write them to (default: schemas)"),
    ] = None,
    out: Annotated[Path | None, typer.Option("--out", metavar="DIR", file_okay=False, help="the same as DIR")] = None,
) -> int:
    """Write the JSON Schema of every topic's records, one file per topic (profile_log.json, …)."""
    from topics.registry import TOPICS
    from topics.schemas import topic_schema

    if directory is not None and out is not None and directory != out:
        raise Usage(f"two directories given: {directory} and --out {out}")
    target = directory or out or Path("schemas")
    command_settings()
    try:
        target.mkdir(parents=True, exist_ok=True)
        for spec in TOPICS:
            path = target / spec.schema_file
            path.write_text(json.dumps(topic_schema(spec), indent=2) + "\n")
            print(path)
    except OSError as exc:
        raise Failure(f"cannot write {target}: {exc}") from None
    return 0


@app.command()
def demo(
    requests: Annotated[int, typer.Option("--requests", metavar="N", min=1, help="how many requests to submit")] = 500,
) -> int:
    """Run the embedded stack against the sandbox with a batch of requests."""
    settings = command_settings()
    # The demo shows its own progress, so library chatter (even while its modules import) stays out of
    # it; warnings and errors still show.
    logging.getLogger().setLevel(max(logging.WARNING, logging.getLevelName(settings.log_level)))
    require_embedded()
    from app.demo import run_demo

    return run_demo(settings, total=requests)


# The entry point.


def _command_path(argv: list[str]) -> str:
    """``beat`` and the (sub)command words of argv, to name where a message comes from."""
    words, group = ["beat"], typer.main.get_command(app)
    for arg in argv:
        command = getattr(group, "commands", {}).get(arg)
        if command is None:
            break
        words.append(arg)
        group = command
    return " ".join(words)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    try:
        result = typer.main.get_command(app).main(args, prog_name="beat", standalone_mode=False)
        # Flushed here, so a reader that went away is noticed now and not in the interpreter's shutdown.
        sys.stdout.flush()
    except BrokenPipeError:
        # `beat flows | head`: the reader has all it wanted and nobody is left to tell; stdout goes to
        # /dev/null so the interpreter's last flush finds no closed pipe either.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except Failure as exc:
        complain(_command_path(args), str(exc))
        return exc.exit_code
    except typer.TyperException as exc:
        context = getattr(exc, "ctx", None)
        where = context.command_path if context is not None else _command_path(args)
        hint = f" (see `{where} --help`)" if exc.exit_code == 2 else ""
        complain(where, exc.format_message() + hint)
        return exc.exit_code
    except (KeyboardInterrupt, typer.Abort):
        return 130
    return result if isinstance(result, int) else 0


if __name__ == "__main__":
    sys.exit(main())
