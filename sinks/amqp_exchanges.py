"""The legacy RabbitMQ exchanges (legacy-beat.md §8), by their configured names, checked or created.

The legacy engine never declared an exchange: production has ``beat.dx``, ``identity.dx`` and
``coffee.dx`` as direct exchanges. Redeclaring one with another type closes the channel
(``PRECONDITION_FAILED``), so by default Beat declares them passively: it only checks that they
exist, whatever their type. ``BEAT_AMQP_DECLARE=direct|topic`` creates them on a fresh broker.
"""

from __future__ import annotations

from collections.abc import Iterable

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractExchange
from aiormq.exceptions import ChannelNotFoundEntity, ChannelPreconditionFailed

from core.settings import Settings
from topics.errors import BeatError, Decision
from topics.registry import COFFEE_EXCHANGE, IDENTITY_EXCHANGE, LEGACY_EXCHANGE


class ExchangeUnusable(BeatError):
    """A configured exchange is missing, or exists with another type than the one Beat was told to declare."""

    # A deployment's configuration: waiting does not create the exchange.
    decision = Decision.DEFINITIVE


def configured_name(settings: Settings, legacy_name: str) -> str:
    """The exchange the deployment uses where the legacy engine used ``legacy_name``."""
    return {
        LEGACY_EXCHANGE: settings.amqp_beat_exchange,
        IDENTITY_EXCHANGE: settings.amqp_identity_exchange,
        COFFEE_EXCHANGE: settings.amqp_coffee_exchange,
    }[legacy_name]


async def open_exchanges(
    channel: AbstractChannel, settings: Settings, legacy_names: Iterable[str]
) -> dict[str, AbstractExchange]:
    """Each legacy exchange name → its configured exchange on ``channel``; ExchangeUnusable names the one that is not.

    A failed declaration closes the channel, so after ExchangeUnusable the caller needs a new one.
    """
    exchanges = {}
    for legacy_name in dict.fromkeys(legacy_names):
        name = configured_name(settings, legacy_name)
        try:
            if settings.amqp_declare == "passive":
                exchanges[legacy_name] = await channel.declare_exchange(name, passive=True)
            else:
                kind = aio_pika.ExchangeType(settings.amqp_declare)
                exchanges[legacy_name] = await channel.declare_exchange(name, kind, durable=True)
        except ChannelNotFoundEntity:
            raise ExchangeUnusable(
                f"RabbitMQ has no exchange {name!r} (BEAT_AMQP_{_setting(legacy_name)}): create it, as the legacy "
                "deployment has it (direct), or set BEAT_AMQP_DECLARE=direct|topic to let Beat create it"
            ) from None
        except ChannelPreconditionFailed as exc:
            raise ExchangeUnusable(
                f"RabbitMQ's exchange {name!r} is not a durable {settings.amqp_declare} exchange ({exc}): "
                "unset BEAT_AMQP_DECLARE to use it as it is"
            ) from None
    return exchanges


def _setting(legacy_name: str) -> str:
    prefix = {LEGACY_EXCHANGE: "BEAT", IDENTITY_EXCHANGE: "IDENTITY", COFFEE_EXCHANGE: "COFFEE"}[legacy_name]
    return f"{prefix}_EXCHANGE"
