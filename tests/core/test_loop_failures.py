"""How the long-running loops (the sink's batches, the reconciler, the mirror) live through failures:
``core.failures.LoopFailures`` driven by real exceptions, and a running ``beat sink`` whose batch fails
until the table it writes comes back."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid

import asyncpg
import pytest
from aiokafka import AIOKafkaProducer

from core.failures import LoopBroken, LoopFailures
from core.outage import is_outage
from tests.conftest import create_topics, stack_env
from tests.support import BeatProcess, migrated_database
from topics import names
from topics.models import Platform, RequestStatus, Status

log = logging.getLogger("tests.loops")


def _failures(fatal_after: int = 3) -> LoopFailures:
    return LoopFailures(log, "the loop", [0.5, 1, 2], outage=is_outage, fatal_after=fatal_after)


def _raised(exc: BaseException) -> BaseException:
    """``exc`` as the loop meets it: raised, with a traceback."""
    try:
        raise exc
    except BaseException as caught:  # noqa: BLE001 - returned to the test
        return caught


def test_a_repeated_failure_is_logged_with_its_traceback_once_and_backs_off(caplog):
    failures = _failures(fatal_after=10)
    caplog.set_level(logging.WARNING, logger=log.name)
    waits = [failures.failed(_raised(ConnectionRefusedError("database away"))) for _ in range(4)]
    assert waits == [0.5, 1, 2, 2]
    with_traceback = [r for r in caplog.records if r.exc_info]
    assert len(with_traceback) == 1 and "ConnectionRefusedError: database away" in caplog.text
    assert sum("failed again, " in r.getMessage() for r in caplog.records) == 3
    assert "Traceback" in caplog.text and caplog.text.count("Traceback") == 1


def test_a_different_failure_gets_its_own_traceback_and_success_resets(caplog):
    failures = _failures(fatal_after=10)
    caplog.set_level(logging.WARNING, logger=log.name)
    failures.failed(_raised(ConnectionRefusedError("database away")))
    failures.failed(_raised(TimeoutError("broker slow")))
    failures.succeeded()
    assert failures.failed(_raised(TimeoutError("broker slow"))) == 0.5
    assert [bool(r.exc_info) for r in caplog.records] == [True, True, False, True]
    assert "the loop works again after 2 failures" in caplog.text


def test_an_outage_is_waited_out_however_long_it_lasts():
    failures = _failures(fatal_after=2)
    for _ in range(50):
        failures.failed(_raised(asyncpg.CannotConnectNowError("the database system is starting up")))
    assert failures.count == 50


def test_a_failure_waiting_does_not_fix_breaks_the_loop_after_repeats(caplog):
    failures = _failures(fatal_after=3)
    caplog.set_level(logging.WARNING, logger=log.name)
    bug = _raised(KeyError("flow"))
    failures.failed(bug)
    failures.failed(_raised(OSError("blip")))  # an outage between two bugs starts the count again
    failures.failed(bug)
    failures.failed(bug)
    with pytest.raises(LoopBroken, match=r"the loop failed 3 times in a row .*KeyError: 'flow'") as broken:
        failures.failed(bug)
    assert broken.value.__cause__ is bug


def test_a_schema_the_code_does_not_fit_is_not_an_outage():
    assert is_outage(asyncpg.InterfaceError("connection closed"))
    assert is_outage(asyncpg.DeadlockDetectedError("deadlock"))
    assert not is_outage(asyncpg.UndefinedColumnError('column "redrives" does not exist'))
    assert not is_outage(ValueError("a bug"))


async def test_the_sink_goes_on_after_a_batch_fails_and_logs_the_failure_once(broker, session_dir):
    """The status table is renamed away under a running ``beat sink``: the batch fails on every try (one
    traceback, then one line per retry), nothing is committed or lost, and once the table is back, before
    the sink gives up on a schema it does not fit, the same batch is written and the sink runs on."""
    prefix = f"sinkloop{uuid.uuid4().hex[:6]}."
    with migrated_database("beat_loop") as url:
        env = stack_env(broker, url, prefix, "http://127.0.0.1:9", session_dir / prefix)
        await create_topics(env)
        admin = await asyncpg.connect(url)
        sink = BeatProcess("sink", env, session_dir / "logs" / prefix / "sink.log").start()
        try:
            await admin.execute("ALTER TABLE scrape_request_event RENAME TO scrape_request_event_away")
            rid = await _produce_pending(broker, prefix)
            await _wait_log(sink, "failed again", times=1, timeout=30)
            assert await admin.fetchval("SELECT count(*) FROM scrape_request_log WHERE id = $1", rid) == 0
            await admin.execute("ALTER TABLE scrape_request_event_away RENAME TO scrape_request_event")
            deadline = time.monotonic() + 30
            while await admin.fetchval("SELECT count(*) FROM scrape_request_event WHERE request_id = $1", rid) == 0:
                assert time.monotonic() < deadline and sink.alive(), sink.log_tail()
                await asyncio.sleep(0.2)
            assert await admin.fetchval("SELECT status FROM scrape_request_log WHERE id = $1", rid) == "PENDING"
            text = sink.log_path.read_text(errors="replace")
            assert text.count("Traceback") == 1 and "UndefinedTableError" in text, text[-3000:]
            assert sink.alive() and sink.terminate(timeout=30) == 0, sink.log_tail()
        finally:
            sink.kill()
            await admin.close()


async def _produce_pending(broker: str, prefix: str) -> str:
    """A PENDING status for a new request on the prefix's status topic; returns the request id."""
    rid = str(uuid.uuid4())
    event = RequestStatus(
        request_id=rid,
        status=Status.PENDING,
        flow="refresh_profile_basic",
        platform=Platform.INSTAGRAM,
        params={"handle": "loop"},
    )
    producer = AIOKafkaProducer(bootstrap_servers=broker, acks="all")
    await producer.start()
    try:
        await producer.send_and_wait(f"{prefix}{names.STATUS}", event.to_bytes(), key=rid.encode())
    finally:
        await producer.stop()
    return rid


async def test_a_sink_whose_batches_keep_failing_exits_non_zero(broker, session_dir):
    prefix = f"sinkdead{uuid.uuid4().hex[:6]}."
    with migrated_database("beat_loop") as url:
        env = stack_env(broker, url, prefix, "http://127.0.0.1:9", session_dir / prefix)
        await create_topics(env)
        admin = await asyncpg.connect(url)
        try:
            await admin.execute("ALTER TABLE scrape_request_event RENAME TO scrape_request_event_away")
        finally:
            await admin.close()
        sink = BeatProcess("sink", env, session_dir / "logs" / prefix / "sink.log").start()
        try:
            await _produce_pending(broker, prefix)
            assert sink.proc is not None
            assert await asyncio.to_thread(sink.proc.wait, 60) == 1, sink.log_tail()
            text = sink.log_path.read_text(errors="replace")
            assert "beat sink cannot go on; exiting" in text and "LoopBroken" in text, text[-3000:]
        finally:
            sink.kill()


async def _wait_log(proc: BeatProcess, text: str, *, times: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while proc.log_path.read_text(errors="replace").count(text) < times:
        assert proc.alive() and time.monotonic() < deadline, proc.log_tail()
        await asyncio.sleep(0.2)
