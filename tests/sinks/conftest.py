"""A RabbitMQ virtual host of this test session's own, with the legacy exchanges as production has them.

The machine's RabbitMQ default vhost already has ``beat.dx`` and ``identity.dx`` (as topic exchanges, from
earlier runs); a test never redeclares or deletes them there. Here each session gets ``beat-test-<hex>``,
with ``beat.dx``, ``identity.dx`` and ``coffee.dx`` pre-declared as durable *direct* exchanges (the legacy
brokers' type), and deletes it at the end.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from urllib.parse import quote

import aio_pika
import pytest

RABBIT_HOST, RABBIT_PORT = "127.0.0.1", 5672
LEGACY_EXCHANGES = ("beat.dx", "identity.dx", "coffee.dx")


def amqp_url(vhost: str, port: int = RABBIT_PORT) -> str:
    return f"amqp://guest:guest@{RABBIT_HOST}:{port}/{quote(vhost, safe='')}"


def _rabbitmqctl(*args: str) -> None:
    command = shutil.which("rabbitmqctl")
    if command is None:
        pytest.exit("rabbitmqctl is not on PATH: the RabbitMQ tests need a vhost of their own", returncode=3)
    subprocess.run([command, *args], check=True, capture_output=True, timeout=60)


async def _declare_direct(url: str) -> None:
    connection = await aio_pika.connect(url)
    try:
        channel = await connection.channel()
        for name in LEGACY_EXCHANGES:
            await channel.declare_exchange(name, aio_pika.ExchangeType.DIRECT, durable=True)
    finally:
        await connection.close()


@pytest.fixture(scope="session")
def amqp_vhost() -> Iterator[str]:
    """The session's vhost name (``BEAT_TEST_AMQP_VHOST`` uses an existing one instead, left as it is)."""
    given = os.environ.get("BEAT_TEST_AMQP_VHOST")
    if given:
        yield given
        return
    vhost = f"beat-test-{uuid.uuid4().hex[:10]}"
    _rabbitmqctl("add_vhost", vhost)
    try:
        _rabbitmqctl("set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")
        asyncio.run(_declare_direct(amqp_url(vhost)))
        yield vhost
    finally:
        _rabbitmqctl("delete_vhost", vhost)


@pytest.fixture(scope="session")
def amqp(amqp_vhost: str) -> str:
    """The URL of the session's vhost, whose legacy exchanges are direct."""
    return amqp_url(amqp_vhost)
