"""One error root: every exception Beat defines is a BeatError whose class carries a resilience decision."""

from __future__ import annotations

import builtins
import importlib
import inspect
import pkgutil
import re

import pytest

from providers.errors import (
    AllSourcesFailed,
    BudgetExhausted,
    BudgetWait,
    NoCredential,
    ProviderError,
    ProviderUnavailable,
    failed,
)
from tests.support import ROOT
from topics.errors import BeatError, Decision

PACKAGES = ("agents", "app", "providers", "sinks", "topics")
# The sandbox stands in for the providers and is no part of Beat; migrations run only under alembic.
OUTSIDE = ("providers.sandbox", "sinks.migrations")
BUILTIN_EXCEPTIONS = {
    name for name, value in vars(builtins).items() if isinstance(value, type) and issubclass(value, BaseException)
}


def beat_exceptions() -> list[type[BaseException]]:
    found = []
    for package in PACKAGES:
        for module_info in pkgutil.walk_packages(importlib.import_module(package).__path__, f"{package}."):
            if module_info.name.startswith(OUTSIDE):
                continue
            module = importlib.import_module(module_info.name)
            found += [
                value
                for value in vars(module).values()
                if inspect.isclass(value) and issubclass(value, BaseException) and value.__module__ == module.__name__
            ]
    return found


def test_every_beat_exception_is_a_beat_error_with_a_decision():
    exceptions = beat_exceptions()
    assert len(exceptions) > 40  # the walk found the tree, not an empty package list
    assert [e.__qualname__ for e in exceptions if not issubclass(e, BeatError)] == []
    undecided = [
        e.__qualname__
        for e in exceptions
        if e is not BeatError and not isinstance(getattr(e, "decision", None), Decision)
    ]
    assert undecided == []
    # The root decides nothing: a family that forgets its decision must not inherit one.
    assert not hasattr(BeatError, "decision")


def test_no_class_subclasses_a_builtin_exception_except_through_the_root():
    offenders = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            if "sandbox" in path.parts:
                continue
            for match in re.finditer(r"^\s*class (\w+)\(([^)]*)\)", path.read_text(), re.MULTILINE):
                bases = [base.strip() for base in match.group(2).split(",")]
                if BUILTIN_EXCEPTIONS & set(bases) and "BeatError" not in bases and match.group(1) != "BeatError":
                    offenders.append(f"{path.relative_to(ROOT)}: {match.group(1)}({match.group(2)})")
    assert offenders == []


def test_settings_errors_are_no_longer_a_system_exit():
    from core.settings import SettingsError

    assert not issubclass(SettingsError, SystemExit)
    assert SettingsError.decision is Decision.DEFINITIVE


@pytest.mark.parametrize(
    ("error", "decision"),
    [
        (ProviderUnavailable("503"), Decision.TRANSIENT),
        (ProviderError("no such user"), Decision.DEFINITIVE),
        (failed("fetch_x", []), Decision.DEFINITIVE),
        (AllSourcesFailed("x", retriable=True), Decision.TRANSIENT),
        (NoCredential("x", retriable=True), Decision.TRANSIENT),
        (BudgetWait("a budget is spent", ready_in=60.0), Decision.TRANSIENT),
        (BudgetExhausted("a budget is spent"), Decision.DEFINITIVE),
    ],
)
def test_a_provider_errors_decision_and_retriable_agree(error: ProviderError, decision: Decision):
    assert error.decision is decision
    assert error.retriable is (decision is Decision.TRANSIENT)
