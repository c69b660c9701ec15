"""How every Kafka client Beat creates reaches a secured cluster: TLS (a CA, optionally a client certificate),
SASL PLAIN and SCRAM, over plaintext or TLS (``BEAT_KAFKA_SECURITY_PROTOCOL``).

One place builds the options so that no client is left on plaintext: the producers and group consumers
(``core.kafka``), the admin client (``core.topic_admin``), the bare metadata clients, and faust's app
(``agents.faust_app``), which takes the same settings as credentials.
"""

from __future__ import annotations

import ssl
from typing import Any

from faust.auth import SASLCredentials, SSLCredentials
from faust.types.auth import CredentialsT

from core.settings import Settings

_TLS_PROTOCOLS = ("SSL", "SASL_SSL")
_SASL_PROTOCOLS = ("SASL_PLAINTEXT", "SASL_SSL")


def ssl_context(settings: Settings) -> ssl.SSLContext | None:
    """The TLS context for the broker connections; None on a plaintext protocol."""
    if settings.kafka_security_protocol not in _TLS_PROTOCOLS:
        return None
    context = ssl.create_default_context(cafile=str(settings.kafka_ssl_cafile) if settings.kafka_ssl_cafile else None)
    if settings.kafka_ssl_certfile:
        context.load_cert_chain(
            str(settings.kafka_ssl_certfile),
            str(settings.kafka_ssl_keyfile) if settings.kafka_ssl_keyfile else None,
        )
    context.check_hostname = settings.kafka_ssl_check_hostname
    return context


def client_options(settings: Settings) -> dict[str, Any]:
    """Keyword arguments for any aiokafka client (producer, consumer, admin, bare client)."""
    protocol = settings.kafka_security_protocol
    options: dict[str, Any] = {"security_protocol": protocol}
    context = ssl_context(settings)
    if context is not None:
        options["ssl_context"] = context
    if protocol in _SASL_PROTOCOLS:
        assert settings.kafka_sasl_username and settings.kafka_sasl_password, "checked by Settings"
        options.update(
            sasl_mechanism=settings.kafka_sasl_mechanism,
            sasl_plain_username=settings.kafka_sasl_username,
            sasl_plain_password=settings.kafka_sasl_password.get_secret_value(),
        )
    return options


def faust_credentials(settings: Settings) -> CredentialsT | None:
    """The same settings as faust's ``broker_credentials``; None on plaintext."""
    protocol = settings.kafka_security_protocol
    context = ssl_context(settings)
    if protocol in _SASL_PROTOCOLS:
        assert settings.kafka_sasl_username and settings.kafka_sasl_password, "checked by Settings"
        return SASLCredentials(
            username=settings.kafka_sasl_username,
            password=settings.kafka_sasl_password.get_secret_value(),
            ssl_context=context,
            mechanism=settings.kafka_sasl_mechanism,
        )
    if context is not None:
        return SSLCredentials(context)
    return None
