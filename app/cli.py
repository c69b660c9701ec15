"""The ``beat`` command line."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from app.settings import Settings, SettingsError, dump_json, load_settings


def _logging(settings: Settings) -> None:
    logging.basicConfig(level=settings.log_level, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # One line per provider call would drown everything else; calls are in trace_log. (Keys in query
    # strings are kept out of httpx's records by providers/http.py whatever the level.) Alembic announces
    # its plugins on import and its dialect on every start, which tells an operator nothing.
    for name in ("httpx", "httpcore", "openai", "alembic"):
        logging.getLogger(name).setLevel(max(logging.WARNING, logging.getLevelName(settings.log_level)))


def connected(settings: Settings) -> Settings:
    """Settings with service URLs filled from a running ``beat up`` (its endpoints.json) when not configured."""
    if settings.kafka_url and settings.database_url:
        return settings
    endpoints_file = settings.data_dir / "endpoints.json"
    if not endpoints_file.exists():
        missing = [name for name, value in (("BEAT_KAFKA_URL", settings.kafka_url),
                                            ("BEAT_DATABASE_URL", settings.database_url)) if not value]
        raise SettingsError(f"{' and '.join(missing)} not set, and no running `beat up` found "
                            f"({endpoints_file} does not exist)")
    endpoints = json.loads(endpoints_file.read_text())
    return settings.model_copy(update={
        "kafka_url": settings.kafka_url or endpoints["kafka"],
        "database_url": settings.database_url or endpoints["database"],
    })


def cmd_up(settings: Settings, args: argparse.Namespace) -> int:
    from app.stack import run_up

    return run_up(settings, sandbox=args.sandbox)


def cmd_worker(settings: Settings, args: argparse.Namespace) -> int:
    from agents.flows.registry import UnknownFlow, select_flows
    from agents.worker import DrainingWorker, build_worker_app

    settings = connected(settings)
    try:
        selection = select_flows(args.flows, settings.disabled_flows)
    except UnknownFlow as exc:
        print(f"beat worker: {exc}", file=sys.stderr)
        return 2
    app, runtime = build_worker_app(settings, selection)
    worker = DrainingWorker(app, runtime, loglevel=settings.log_level.lower().replace("warning", "warn"),
                            quiet=True, redirect_stdouts=False)
    worker.execute_from_commandline()
    return 0


def cmd_sink(settings: Settings, args: argparse.Namespace) -> int:  # noqa: ARG001
    from sinks.runner import run_sink
    from sinks.schema import migrate

    settings = connected(settings)
    migrate(settings.database_url)
    return run_sink(settings)


def cmd_mirror(settings: Settings, args: argparse.Namespace) -> int:
    from sinks.mirror import run_mirror

    if settings.amqp_url is None or not settings.amqp_url.get_secret_value():
        print("beat mirror: BEAT_AMQP_URL is not set; the mirror needs the RabbitMQ it publishes the legacy "
              "events to (e.g. amqp://guest:guest@127.0.0.1:5672/)", file=sys.stderr)
        return 2
    # The mirror needs only the broker: no database URL required when the Kafka URL is given.
    return run_mirror(settings if settings.kafka_url else connected(settings))


def cmd_api(settings: Settings, args: argparse.Namespace) -> int:  # noqa: ARG001
    import uvicorn

    from app.api import create_api

    settings = connected(settings)
    uvicorn.run(create_api(settings), host=settings.api_host, port=settings.api_port,
                log_level=settings.log_level.lower(), access_log=False)
    return 0


def cmd_sandbox(settings: Settings, args: argparse.Namespace) -> int:  # noqa: ARG001
    from providers.sandbox.config import SandboxConfig
    from providers.sandbox.server import run

    run("127.0.0.1", args.port, SandboxConfig.from_env())
    return 0


def _parse_params(pairs: list[str]) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep:
            raise SystemExit(f"beat submit: expected key=value, got {pair!r}")
        try:
            params[key] = json.loads(raw)
        except json.JSONDecodeError:
            params[key] = raw
    return params


async def _submit_all(settings: Settings, requests: list[tuple[str, dict[str, Any]]]) -> list[str]:
    import asyncpg

    from app.kafka import start_producer
    from sinks.requests import check_fits, prepare, submit

    # Every request is checked before the first is written, so a refused batch leaves no rows behind.
    prepared = [prepare(flow, params, disabled=settings.disabled_flows) for flow, params in requests]
    for request in prepared:
        check_fits(request, settings.max_message_bytes)
    # No connection up front: with Postgres down, submit() decides (a durable broker takes the requests alone).
    pool = await asyncpg.create_pool(settings.database_url, min_size=0, max_size=4)
    producer = await start_producer(settings)
    try:
        return [await submit(pool, producer, settings, request) for request in prepared]
    finally:
        await producer.stop()
        await pool.close()


def _read_requests(path: str) -> list[tuple[str, dict[str, Any]]]:
    """(flow, params) of each line of a JSON-lines file; ValueError naming the first bad line."""
    requests = []
    for number, line in enumerate(Path(path).read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            body = json.loads(line)
        except (ValueError, RecursionError) as exc:
            raise ValueError(f"{path}:{number}: not JSON ({exc})") from None
        if not isinstance(body, dict) or not isinstance(body.get("flow"), str) \
                or not isinstance(body.get("params", {}), dict):
            raise ValueError(f'{path}:{number}: expected {{"flow": "…", "params": {{…}}}}')
        requests.append((body["flow"], body.get("params", {})))
    return requests


def cmd_submit(settings: Settings, args: argparse.Namespace) -> int:
    from pydantic import ValidationError

    from agents.flows.registry import FlowRefused
    from providers.outage import DependencyDown
    from sinks.requests import NotHandedOver

    settings = connected(settings)
    try:
        if args.file:
            requests = _read_requests(args.file)
        elif args.flow:
            requests = [(args.flow, _parse_params(args.params))]
        else:
            print("beat submit: give FLOW key=value … or --file requests.jsonl", file=sys.stderr)
            return 2
        ids = asyncio.run(_submit_all(settings, requests))
    except (FlowRefused, ValidationError, ValueError, OSError) as exc:  # sinks.requests.Refused is a ValueError
        print(f"beat submit: {exc}", file=sys.stderr)
        return 2
    except DependencyDown as exc:
        recorded = (f"; request {exc.request_id} is recorded and is produced once the broker is back"
                    if isinstance(exc, NotHandedOver) else "")
        print(f"beat submit: {exc}{recorded}; try again later", file=sys.stderr)
        return 1
    for request_id in ids:
        print(request_id)
    return 0


def cmd_status(settings: Settings, args: argparse.Namespace) -> int:
    import asyncpg

    settings = connected(settings)

    async def fetch() -> tuple[Any, list[Any]]:
        conn = await asyncpg.connect(settings.database_url)
        try:
            row = await conn.fetchrow("SELECT * FROM scrape_request_log WHERE id = $1", args.id)
            events = await conn.fetch("SELECT status, attempt, at, source, error FROM scrape_request_event "
                                      "WHERE request_id = $1 ORDER BY at, id", args.id)
            return row, events
        finally:
            await conn.close()

    row, events = asyncio.run(fetch())
    if row is None:
        print(f"beat status: no request {args.id}", file=sys.stderr)
        return 1
    print(dump_json(dict(row)))
    if row["status"] != "COMPLETE":
        print(f"stored: no, the request is {row['status']}")
    else:
        announced = "?" if row["events_announced"] is None else row["events_announced"]
        print(f"stored: {'yes' if row['stored'] else 'no'}, {row['events_written'] or 0} of {announced} announced "
              f"events written, {row['events_refused'] or 0} refused"
              + (f" ({row['refused_reason']})" if row["refused_reason"] else ""))
    for event in events:
        print(f"  {event['at']:%Y-%m-%d %H:%M:%S.%f} attempt {event['attempt']} {event['status']}"
              + (f" via {event['source']}" if event["source"] else "")
              + (f" error {event['error']}" if event["error"] else ""))
    return 0


def _moment(text: str) -> datetime:
    """``--since``/``--until``: an ISO-8601 time (UTC unless it says otherwise) or an age such as 90s, 30m, 2h, 7d."""
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    if text[-1:] in units and text[:-1].isdigit():
        return datetime.now(timezone.utc) - timedelta(seconds=int(text[:-1]) * units[text[-1]])
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an ISO-8601 time or an age like 30m, 2h, 7d: {text!r}") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def _filters(args: argparse.Namespace):
    from sinks.redrive import Filters

    return Filters(flow=args.flow, error_type=args.error, source=getattr(args, "source", None), since=args.since,
                   until=args.until, request_id=args.id)


def _cut(text: str | None, limit: int) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= limit else text[:limit - 1] + "…"


def _letter_line(row: Any) -> str:
    redriven = (f"redriven {row['redriven_at']:%Y-%m-%d %H:%M:%S} as {row['redriven_as'] or '?'}"
                if row["redriven_at"] else "not redriven" + (" (truncated: cannot be)" if row["truncated"] else ""))
    return (f"{row['last_failure_at']:%Y-%m-%d %H:%M:%S}  {row['flow'] or '-'}  {row['error_type']}  "
            f"{_cut(row['error_message'], 60)!r}  request {row['request_id'] or '-'}  "
            f"{row['original_topic']}[{row['original_partition']}]@{row['original_offset']}  {redriven}")


async def _with_services(settings: Settings, work, *, produce: bool) -> Any:
    """Run ``work(pool, producer)``; the producer is None when ``produce`` is false (a dry run, a listing)."""
    import asyncpg

    from app.kafka import start_producer

    pool = await asyncpg.create_pool(settings.database_url, min_size=1, max_size=2)
    producer = await start_producer(settings) if produce else None
    try:
        return await work(pool, producer)
    finally:
        if producer is not None:
            await producer.stop()
        await pool.close()


def _report(outcomes: list[Any], dry_run: bool) -> int:
    verb = "would re-drive" if dry_run else "re-driven"
    for outcome in outcomes:
        print(f"{verb if outcome.done else 'skipped'}: {outcome.subject}: {outcome.detail}")
    done = sum(1 for outcome in outcomes if outcome.done)
    print(f"{done} {verb}, {len(outcomes) - done} skipped" + (" (dry run: nothing changed)" if dry_run else ""))
    return 0


def cmd_dlq(settings: Settings, args: argparse.Namespace) -> int:
    from sinks.redrive import list_letters, redrive_letters

    settings = connected(settings)
    filters = _filters(args)
    if args.action == "list":
        rows = asyncio.run(_with_services(settings, lambda pool, _: list_letters(pool, filters, args.limit),
                                          produce=False))
        for row in rows:
            print(_letter_line(row))
        return 0
    outcomes = asyncio.run(_with_services(
        settings, lambda pool, producer: redrive_letters(pool, producer, settings, filters), produce=not args.dry_run))
    return _report(outcomes, args.dry_run)


def cmd_retry(settings: Settings, args: argparse.Namespace) -> int:
    from sinks.redrive import retry_failed

    settings = connected(settings)
    filters = _filters(args)
    outcomes = asyncio.run(_with_services(
        settings, lambda pool, producer: retry_failed(pool, producer, settings, filters), produce=not args.dry_run))
    return _report(outcomes, args.dry_run)


def _add_filters(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument("--flow", help=f"only {what} of this flow")
    parser.add_argument("--error", metavar="TYPE", help=f"only {what} with this error class, e.g. ProfileMissing")
    parser.add_argument("--source", help=f"only {what} that involved this source")
    parser.add_argument("--since", type=_moment, help="failed at or after: ISO-8601 or an age (30m, 2h, 7d)")
    parser.add_argument("--until", type=_moment, help="failed before: ISO-8601 or an age (30m, 2h, 7d)")
    parser.add_argument("--id", metavar="REQUEST_ID", help=f"only {what} of this request")


def cmd_credentials(settings: Settings, args: argparse.Namespace) -> int:
    import asyncpg

    from providers.credentials import CredentialStore

    settings = connected(settings)

    async def run() -> int:
        pool = await asyncpg.create_pool(settings.database_url, min_size=1, max_size=1)
        try:
            store = CredentialStore(pool)
            if args.action == "add":
                # "-" reads them from standard input, so they stay out of shell history and process lists.
                secrets = json.loads(sys.stdin.read() if args.secrets == "-" else args.secrets)
                if not isinstance(secrets, dict):
                    print("beat credentials add: SECRETS must be a JSON object", file=sys.stderr)
                    return 2
                print(await store.add(args.source, secrets, handle=args.handle))
            elif args.action == "list":
                for entry in await store.list(args.source):
                    print(dump_json(entry))
            elif not await store.set_enabled(args.id, args.action == "enable"):
                print(f"beat credentials {args.action}: no credential {args.id}", file=sys.stderr)
                return 1
            return 0
        finally:
            await pool.close()

    return asyncio.run(run())


def cmd_sources(settings: Settings, args: argparse.Namespace) -> int:  # noqa: ARG001
    import asyncpg

    from providers.breaker import recorded_states

    settings = connected(settings)

    async def run() -> list[Any]:
        conn = await asyncpg.connect(settings.database_url)
        try:
            return await recorded_states(conn)
        finally:
            await conn.close()

    rows = asyncio.run(run())
    if not rows:
        print("no circuit has opened: every source is closed")
        return 0
    print(f"{'scope':<40} {'state':<9} {'failures':>8}  {'next probe':<28} last error")
    for row in rows:
        if row["next_probe_at"] is None:
            probe = "-"
        else:
            seconds = row["probe_in"].total_seconds()
            probe = f"{row['next_probe_at']:%Y-%m-%d %H:%M:%S}Z ({f'in {seconds:.0f}s' if seconds > 0 else 'due'})"
        print(f"{row['scope']:<40} {row['state']:<9} {row['failures']:>8}  {probe:<28} {row['last_error'] or ''}")
    return 0


def cmd_flows(settings: Settings, args: argparse.Namespace) -> int:  # noqa: ARG001
    from agents.flows.registry import FLOWS

    width = max(map(len, FLOWS))
    for spec in FLOWS.values():
        enabled = spec.enabled and spec.name not in settings.disabled_flows
        state = "enabled " if enabled else "disabled"
        concurrency = settings.flow_concurrency.get(spec.name, spec.concurrency)
        note = "" if enabled else f"  {spec.pending or 'disabled by BEAT_DISABLED_FLOWS'}"
        print(f"{spec.name:<{width}}  {spec.platform.value:<9}  {state}  concurrency {concurrency:>3}{note}")
    return 0


def cmd_config(settings: Settings, args: argparse.Namespace) -> int:  # noqa: ARG001
    print(dump_json(settings.masked()))
    return 0


def cmd_schemas(settings: Settings, args: argparse.Namespace) -> int:  # noqa: ARG001
    from topics.models import EVENT_MODELS

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for name, model in EVENT_MODELS.items():
        path = out / f"{name}.schema.json"
        path.write_text(json.dumps(model.model_json_schema(), indent=2) + "\n")
        print(path)
    return 0


def cmd_demo(settings: Settings, args: argparse.Namespace) -> int:
    # The demo prints its own progress, so library chatter (even while its modules import) stays out of
    # it; warnings and errors still show.
    logging.getLogger().setLevel(max(logging.WARNING, logging.getLevelName(settings.log_level)))
    from app.demo import run_demo

    return run_demo(settings, total=args.requests)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="beat", description="Beat: scrape requests in, normalized events out.")
    sub = parser.add_subparsers(dest="command", required=True)

    up = sub.add_parser("up", help="embedded stack + worker + sink + api as child processes")
    up.add_argument("--sandbox", action="store_true", help="point providers at the built-in sandbox")
    up.set_defaults(func=cmd_up)

    worker = sub.add_parser("worker", help="request agents for the selected flows")
    worker.add_argument("--flows", nargs="+", metavar="GLOB", help="flow name globs (default: every enabled flow)")
    worker.set_defaults(func=cmd_worker)

    sub.add_parser("sink", help="Postgres sink and reconciler").set_defaults(func=cmd_sink)
    sub.add_parser("mirror", help="legacy RabbitMQ events (needs BEAT_AMQP_URL)").set_defaults(func=cmd_mirror)
    sub.add_parser("api", help="HTTP facade").set_defaults(func=cmd_api)

    sandbox = sub.add_parser("sandbox", help="the provider sandbox HTTP server")
    sandbox.add_argument("--port", type=int, default=8900)
    sandbox.set_defaults(func=cmd_sandbox)

    submit = sub.add_parser("submit", help="submit requests (recorded PENDING, then produced)")
    submit.add_argument("flow", nargs="?")
    submit.add_argument("params", nargs="*", metavar="key=value")
    submit.add_argument("--file", help="JSON lines, each {\"flow\": …, \"params\": {…}}")
    submit.set_defaults(func=cmd_submit)

    status = sub.add_parser("status", help="a request's status and timeline")
    status.add_argument("id")
    status.set_defaults(func=cmd_status)

    sub.add_parser("flows", help="every flow, enabled or not").set_defaults(func=cmd_flows)
    sub.add_parser("sources", help="each source's circuit: state, failures, next probe").set_defaults(
        func=cmd_sources)

    credentials = sub.add_parser("credentials", help="provider credentials (secrets are never printed)")
    actions = credentials.add_subparsers(dest="action", required=True)
    add = actions.add_parser("add", help="add or refresh a credential (re-enables it)")
    add.add_argument("source", help="source label, e.g. rapidapi-arraybobo or graphapi")
    add.add_argument("secrets", help='JSON object, e.g. \'{"x-rapidapi-key": "…"}\' or \'{"token": "…", '
                                     '"user_id": "…"}\'; "-" reads it from standard input')
    add.add_argument("--handle", help="the account a per-account credential belongs to: a Graph handle, a "
                                      "YouTube channel id (ytapi), a Shopify store domain")
    listing = actions.add_parser("list", help="credentials with their state, secrets masked")
    listing.add_argument("source", nargs="?")
    for action in ("disable", "enable"):
        actions.add_parser(action).add_argument("id")
    credentials.set_defaults(func=cmd_credentials)

    dlq = sub.add_parser("dlq", help="dead letters: list them, re-drive them")
    dlq_actions = dlq.add_subparsers(dest="action", required=True)
    dlq_list = dlq_actions.add_parser("list", help="dead letters, newest first, one line each")
    _add_filters(dlq_list, "dead letters")
    dlq_list.add_argument("--limit", type=int, default=100)
    dlq_redrive = dlq_actions.add_parser("redrive", help="re-drive dead letters (each at most once): re-open "
                                                         "their DEAD_LETTERED request, or produce their original again")
    _add_filters(dlq_redrive, "dead letters")
    dlq_redrive.add_argument("--dry-run", action="store_true", help="say what would be re-driven; change nothing")
    dlq.set_defaults(func=cmd_dlq)

    retry = sub.add_parser("retry", help="re-open FAILED requests as their next attempt (e.g. after an outage)")
    _add_filters(retry, "requests")
    retry.add_argument("--dry-run", action="store_true", help="say what would be re-opened; change nothing")
    retry.set_defaults(func=cmd_retry)

    demo = sub.add_parser("demo", help="run the embedded stack against the sandbox with a batch of requests")
    demo.add_argument("--requests", type=int, default=500)
    demo.set_defaults(func=cmd_demo)

    sub.add_parser("config", help="effective configuration, secrets masked").set_defaults(func=cmd_config)

    schemas = sub.add_parser("schemas", help="write the JSON Schemas of every topic record")
    schemas.add_argument("--out", default="schemas")
    schemas.set_defaults(func=cmd_schemas)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = load_settings()
    except SettingsError as exc:
        print(f"beat: {exc}", file=sys.stderr)
        return 2
    _logging(settings)
    try:
        return args.func(settings, args)
    except SettingsError as exc:
        print(f"beat {args.command}: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
