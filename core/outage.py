"""Dependency outages: Postgres, Redis or the broker unreachable, told apart from a failing request.

An outage is nobody's answer: a request caught in one must wait for the dependency, never fail or be
dead-lettered (contract §2). Code that calls a dependency on a request's behalf raises ``DependencyDown``
naming it, so the worker can pause instead of judging the request; the long-running loops (sink,
reconciler, mirror) use ``is_outage`` to wait out the same errors.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import asyncpg
from aiokafka.errors import KafkaError, MessageSizeTooLargeError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from topics.errors import BeatError, Decision

POSTGRES = "postgres"
REDIS = "redis"
BROKER = "broker"

# What asyncpg raises when the server is away, restarting or failing over: connection loss surfaces as
# the builtin ConnectionError ("unexpected connection_lost() call"), a refused connect as OSError.
_POSTGRES_DOWN = (
    OSError,
    TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.CannotConnectNowError,
    asyncpg.TooManyConnectionsError,
    asyncpg.AdminShutdownError,
    asyncpg.CrashShutdownError,
)
_REDIS_DOWN = (RedisConnectionError, RedisTimeoutError, OSError)


class DependencyDown(BeatError):
    """``dependency`` (``postgres``, ``redis`` or ``broker``) did not answer; the cause is chained."""

    decision = Decision.OUTAGE

    def __init__(self, dependency: str, detail: str) -> None:
        super().__init__(f"{dependency} unreachable: {detail}")
        self.dependency = dependency


def postgres_down(exc: BaseException) -> bool:
    """Postgres away, as opposed to a query this code got wrong (those are asyncpg.PostgresError too)."""
    return isinstance(exc, _POSTGRES_DOWN)


def redis_down(exc: BaseException) -> bool:
    return isinstance(exc, _REDIS_DOWN)


def broker_down(exc: BaseException) -> bool:
    """The broker away: any Kafka error but a record it refuses as too large, which no wait fixes."""
    return isinstance(exc, KafkaError) and not isinstance(exc, MessageSizeTooLargeError)


def as_outage(dependency: str, exc: BaseException) -> DependencyDown:
    return DependencyDown(dependency, f"{type(exc).__name__}: {exc}")


@contextmanager
def reported(dependency: str, is_down: Callable[[BaseException], bool]) -> Iterator[None]:
    """Raise what ``is_down`` recognises in the block as ``DependencyDown(dependency)``; the rest as is."""
    try:
        yield
    except Exception as exc:
        if is_down(exc):
            raise as_outage(dependency, exc) from exc
        raise


def is_outage(exc: BaseException) -> bool:
    """Postgres or the broker away (or slow, restarting, failing over): waited out however long it lasts.

    Not an outage: Postgres class 42 (an undefined table or column, a syntax error, a missing privilege),
    which is this code meeting a schema or grants it does not fit, and a record the producer refuses as
    too large. Waiting fixes neither. Other Postgres errors count (a serialization failure, a lock timeout:
    the next try may pass).
    """
    if isinstance(exc, DependencyDown):
        return True
    if isinstance(exc, asyncpg.SyntaxOrAccessError):
        return False
    return postgres_down(exc) or isinstance(exc, asyncpg.PostgresError) or broker_down(exc)
