"""The failure taxonomy (contract §2): each error class says transient or definitive, and when known, when."""

from __future__ import annotations

import pytest

from providers.errors import (
    AllSourcesFailed,
    AssetTooLarge,
    AssetUnavailable,
    AuthExpired,
    BadResponse,
    CircuitOpen,
    Forbidden,
    InputRejected,
    NoCredential,
    NotSupported,
    PostMissing,
    ProfileMissing,
    ProviderTimeout,
    ProviderUnavailable,
    QuotaExceeded,
    SourceFailure,
    UrlSignatureExpired,
    failed,
)


@pytest.mark.parametrize("error_class", [ProviderTimeout, ProviderUnavailable, BadResponse])
def test_transient_errors_without_a_known_wait(error_class):
    error = error_class("GET /x failed", source="lama")
    assert (error.retriable, error.ready_in) == (True, None)


def test_a_quota_answer_is_ready_when_the_provider_said():
    error = QuotaExceeded("429", retry_after=7.5)
    assert (error.retriable, error.ready_in, error.retry_after) == (True, 7.5, 7.5)
    assert QuotaExceeded("429").ready_in is None


def test_an_open_circuit_is_ready_at_its_probe():
    error = CircuitOpen("circuit open", source="lama", ready_in=12.0)
    assert (error.retriable, error.ready_in) == (True, 12.0)


@pytest.mark.parametrize(
    "error_class",
    [
        ProfileMissing,
        PostMissing,
        InputRejected,
        Forbidden,
        AuthExpired,
        NotSupported,
        UrlSignatureExpired,
        AssetTooLarge,
        AssetUnavailable,
    ],
)
def test_definitive_errors(error_class):
    error = error_class("no", source="lama")
    assert (error.retriable, error.ready_in) == (False, None)


def test_every_source_failed_for_good_is_definitive():
    verdict = failed(
        "fetch_x",
        [
            SourceFailure("a", "does not support op", transient=False),
            SourceFailure("b", "AuthExpired: token refused", transient=False),
        ],
    )
    assert type(verdict) is AllSourcesFailed
    assert (verdict.retriable, verdict.ready_in) == (False, None)
    assert str(verdict) == "fetch_x: every source failed (a: does not support op; b: AuthExpired: token refused)"


def test_one_transient_failure_makes_it_transient_with_the_backoff_schedule():
    verdict = failed(
        "fetch_x",
        [
            SourceFailure("a", "resting", transient=True, wait=3.0),
            SourceFailure("b", "ProviderTimeout", transient=True),
        ],
    )
    assert (type(verdict), verdict.retriable, verdict.ready_in) == (AllSourcesFailed, True, None)


def test_only_known_waits_are_ready_when_the_first_source_is():
    verdict = failed(
        "fetch_x",
        [
            SourceFailure("a", "circuit open", transient=True, wait=20.0),
            SourceFailure("b", "does not support op", transient=False),
            SourceFailure("c", "rests", transient=True, wait=4.0),
        ],
    )
    assert (type(verdict), verdict.retriable, verdict.ready_in) == (AllSourcesFailed, True, 4.0)


def test_no_credential_configured_is_definitive():
    verdict = failed("fetch_x", [SourceFailure("a", "no enabled credential", transient=False, no_credential=True)])
    assert (type(verdict), verdict.retriable, verdict.ready_in) == (NoCredential, False, None)


def test_resting_credentials_are_transient_until_the_first_is_free():
    verdict = failed(
        "fetch_x",
        [
            SourceFailure("a", "no enabled credential", transient=False, no_credential=True),
            SourceFailure("b", "every one rests", transient=True, wait=9.0, no_credential=True),
        ],
    )
    assert (type(verdict), verdict.retriable, verdict.ready_in) == (NoCredential, True, 9.0)


def test_no_source_at_all_is_definitive():
    verdict = failed("fetch_x", [])
    assert (type(verdict), verdict.retriable) == (AllSourcesFailed, False)
    assert "no source has a client" in str(verdict)
