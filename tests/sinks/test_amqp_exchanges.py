"""The legacy exchanges: checked passively by default, created only when told to, and a clear error naming
one that is missing or of another type; ``beat mirror`` exits on it rather than restart every 30 s.

On the session's own vhost, whose legacy exchanges are direct (tests/sinks/conftest.py)."""

from __future__ import annotations

import subprocess
import sys
import uuid

import aio_pika
import pytest

from core.settings import load_settings
from sinks.amqp_exchanges import ExchangeUnusable, open_exchanges
from tests.support import ROOT, beat_env
from topics.registry import COFFEE_EXCHANGE, IDENTITY_EXCHANGE, LEGACY_EXCHANGE

LEGACY = (LEGACY_EXCHANGE, IDENTITY_EXCHANGE, COFFEE_EXCHANGE)


async def _open(amqp: str, **settings: str) -> dict[str, str]:
    connection = await aio_pika.connect(amqp)
    try:
        channel = await connection.channel()
        exchanges = await open_exchanges(channel, load_settings(**settings), LEGACY)
        return {legacy: exchange.name for legacy, exchange in exchanges.items()}
    finally:
        await connection.close()


async def test_the_legacy_direct_exchanges_are_used_as_they_are(amqp):
    assert await _open(amqp) == {name: name for name in LEGACY}


async def test_a_missing_exchange_is_named_and_declare_creates_it(amqp):
    name = f"beat-test-{uuid.uuid4().hex[:6]}.dx"
    with pytest.raises(ExchangeUnusable, match=rf"no exchange '{name}' \(BEAT_AMQP_COFFEE_EXCHANGE\)"):
        await _open(amqp, amqp_coffee_exchange=name)
    # A fresh broker: BEAT_AMQP_DECLARE creates it (of that type), and from then on it is simply there.
    assert (await _open(amqp, amqp_coffee_exchange=name, amqp_declare="direct"))[COFFEE_EXCHANGE] == name
    assert (await _open(amqp, amqp_coffee_exchange=name))[COFFEE_EXCHANGE] == name


async def test_declaring_another_type_than_the_existing_one_is_a_clear_error(amqp):
    # What the mirror used to do against production: topic over the legacy's direct exchange.
    with pytest.raises(ExchangeUnusable, match=r"'beat\.dx' is not a durable topic exchange"):
        await _open(amqp, amqp_declare="topic")


def test_the_mirror_exits_naming_a_missing_exchange(broker, amqp):
    missing = f"nowhere-{uuid.uuid4().hex[:6]}.dx"
    result = subprocess.run(
        [sys.executable, "-m", "app.cli", "mirror"],
        env=beat_env(kafka_url=broker, amqp_url=amqp, amqp_beat_exchange=missing),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1, result.stderr
    assert f"RabbitMQ has no exchange '{missing}' (BEAT_AMQP_BEAT_EXCHANGE)" in result.stderr


def test_listen_refuses_to_start_without_an_amqp_url():
    result = subprocess.run(
        [sys.executable, "-m", "app.cli", "listen"],
        env=beat_env(kafka_url="127.0.0.1:1", database_url="postgresql://x@127.0.0.1:1/x"),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1 and "BEAT_AMQP_URL is not set" in result.stderr
