"""The fetch operations: every fetch type of the priority lists is an operation, and every source listed for
it has a client that implements the operation's method with the capability's exact signature."""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator

import pytest

from core.settings import Settings
from providers.clients import build_clients
from providers.crawler import PRIORITIES, WEIGHTS
from providers.http import ProviderHttp
from providers.operations import OPERATIONS, Operation


@pytest.fixture(params=["graphql", "rest"])
async def clients(request) -> AsyncIterator[dict[str, object]]:
    http = ProviderHttp(base_urls={}, timeout=1.0)
    try:
        yield build_clients(http, Settings(shopify_api=request.param))
    finally:
        await http.aclose()


def test_every_fetch_type_is_an_operation():
    assert set(OPERATIONS) == set(PRIORITIES)
    assert set(WEIGHTS) <= set(PRIORITIES)
    assert all(name == operation.name for name, operation in OPERATIONS.items())


def test_every_listed_source_implements_its_operation(clients: dict[str, object]):
    missing = []
    for fetch_type, sources in PRIORITIES.items():
        operation = OPERATIONS[fetch_type]
        missing.extend(
            f"{fetch_type}: {source} has no {operation.method_name}"
            for source in sources
            if source not in clients or not operation.served_by(clients[source])
        )
    assert missing == []


def test_each_client_method_has_its_capabilitys_exact_signature(clients: dict[str, object]):
    differ = []
    for fetch_type, sources in PRIORITIES.items():
        operation = OPERATIONS[fetch_type]
        expected = _signature(operation, operation.capability)
        for source in sources:
            actual = _signature(operation, type(clients[source]))
            if actual != expected:
                differ.append(f"{fetch_type} on {source}: {actual} is not {expected}")
    assert differ == []


def test_a_client_without_the_method_does_not_serve_the_operation(clients: dict[str, object]):
    # Lama lists no likers; a source the lists or settings name without it falls through (test_crawler).
    assert not OPERATIONS["fetch_post_likes"].served_by(clients["lama"])
    assert not OPERATIONS["fetch_post_likes"].served_by(None)
    assert OPERATIONS["fetch_post_likes"].served_by(clients["rapidapi-jotucker"])


def _signature(operation: Operation, owner: type) -> inspect.Signature:
    # Annotations stay strings (every module defers them), so names and types compare as written.
    return inspect.signature(getattr(owner, operation.method_name))
