"""Decoding any bytes into a request or a reason, dead letters that always fit, and events sized before
they are produced: no broker needed."""

from __future__ import annotations

import base64
import hashlib
import json

import pytest

from agents.requests import Rejected, decode_request, refuse_request
from agents.worker import event_records
from topics import names
from topics.dead_letter import MAX_ERROR_MESSAGE, MAX_KEY_BYTES, RawRecord, bounded_key, dead_letter, record_size
from topics.flows import FLOWS, disabled_reason, select_flows
from topics.limits import text_problem
from topics.models import DeadLetter, ErrorInfo, Platform, PostLog, RequestStatus, Status, utcnow

BASIC = FLOWS["refresh_profile_basic"]
LIMIT = 64 * 1024


def _record(value: bytes | None, key: bytes | None = None, headers: dict[str, str] | None = None) -> RawRecord:
    return RawRecord(f"beat.scrape.{BASIC.name}", 3, 41, 1_700_000_000.0, key, value, headers or {})


def _rejected(value: bytes) -> Rejected:
    with pytest.raises(Rejected) as caught:
        decode_request(BASIC, _record(value), LIMIT)
    return caught.value


def _assert_storable(rejected: Rejected) -> None:
    assert text_problem(rejected.error.message, max_length=MAX_ERROR_MESSAGE) is None
    assert text_problem(rejected.error.type) is None
    if rejected.request is not None:
        # The DEAD_LETTERED status of the partial request serializes: nothing left to crash on.
        RequestStatus.of(rejected.request, Status.DEAD_LETTERED, error=rejected.error).to_bytes()


@pytest.mark.parametrize(
    ("value", "error_type", "says"),
    [
        (b"", "UndecodableMessage", "empty"),
        (bytes(range(256)) * 3, "UndecodableMessage", "not JSON"),
        (b'{"params": {"handle": "trunc', "UndecodableMessage", "not JSON"),
        (b"[" * 10_000 + b"]" * 10_000, "UndecodableMessage", "nested too deep"),
        (b'{"params": {"n": ' + b"9" * 5000 + b"}}", "UndecodableMessage", "digits"),
        (b'["a list"]', "UndecodableMessage", "JSON object"),
        (b"x" * (LIMIT + 1), "MessageTooLarge", f"{LIMIT + 1} bytes"),
    ],
)
def test_undecodable_bytes_are_rejected_with_a_reason(value, error_type, says):
    rejected = _rejected(value)
    assert rejected.error.type == error_type and says in rejected.error.message
    assert rejected.request is None
    _assert_storable(rejected)


def test_an_oversized_record_is_refused_before_parsing():
    # Valid JSON, but its size alone decides: the parser never sees it.
    value = json.dumps({"id": "big", "params": {"handle": "h", "pad": "x" * LIMIT}}).encode()
    rejected = _rejected(value)
    assert rejected.error.type == "MessageTooLarge" and rejected.request is None


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"id": "r1", "params": {"handle": "\ud800"}}, "surrogate"),
        ({"id": "r1", "params": {"handle": "a\x00b"}}, "NUL"),
        ({"id": "r1", "params": {"handle": "h", "n": 2**70}}, "outside"),
        ({"id": "r1", "params": {"handle": "h", "deep": json.loads("[" * 100 + "]" * 100)}}, "deeper"),
        ({"id": "r1", "priority": 2**40, "params": {"handle": "h"}}, "priority"),
        ({"id": "r1", "retry_count": -1, "params": {"handle": "h"}}, "retry_count"),
        ({"id": "r1", "account_id": "\ud83d", "params": {"handle": "h"}}, "account_id"),
        ({"id": "r1", "params": "not a dict"}, "params"),
        ({"id": "r1"}, "params"),
    ],
)
def test_unstorable_values_are_refused_and_the_status_can_still_be_recorded(body, field):
    rejected = _rejected(json.dumps(body).encode())
    assert rejected.error.type == "InvalidRequest" and field in rejected.error.message
    assert rejected.request is not None and rejected.request.id == "r1"
    _assert_storable(rejected)


@pytest.mark.parametrize("request_id", ["a\x00b", "\udfff", "x" * 5000, 17, ["r"]])
def test_an_id_that_cannot_be_stored_writes_no_status(request_id):
    rejected = _rejected(json.dumps({"id": request_id, "params": {"handle": "\x00"}}).encode())
    assert rejected.error.type == "InvalidRequest" and rejected.request is None


def test_error_messages_quoting_hostile_keys_are_clean_and_bounded():
    key = "\ud800\x00" + "k" * 50_000
    body = {"id": "r2", "params": {"handle": "h", key: {"x": "\x00"}}}
    rejected = _rejected(json.dumps(body).encode())
    assert len(rejected.error.message) <= MAX_ERROR_MESSAGE
    _assert_storable(rejected)
    # The partial request keeps the params, cleaned: the status row shows what was asked.
    assert rejected.request is not None and rejected.request.params["handle"] == "h"


def test_invalid_params_against_the_flows_model_keep_the_request():
    rejected = _rejected(json.dumps({"id": "r3", "params": {"handle": "", "unexpected": 1}}).encode())
    assert rejected.error.type == "InvalidParams" and "unexpected" in rejected.error.message
    assert rejected.request is not None and rejected.request.flow == BASIC.name


def test_an_unknown_flow_name_is_rejected():
    rejected = _rejected(json.dumps({"id": "r4", "flow": "no_such_flow", "params": {"handle": "h"}}).encode())
    assert rejected.error.type == "UnknownFlow" and "no_such_flow" in rejected.error.message


def test_times_are_made_utc_or_refused():
    naive = json.dumps({"params": {"handle": "h"}, "expires_at": "2999-01-01T00:00:00"}).encode()
    request, _ = decode_request(BASIC, _record(naive), LIMIT)
    assert request.expires_at is not None and request.expires_at.utcoffset().total_seconds() == 0
    assert request.created_at is not None and request.created_at.year == 2023  # the record's timestamp
    edge = json.dumps({"id": "r5", "params": {"handle": "h"}, "expires_at": "0001-01-01T00:00:00+14:00"}).encode()
    rejected = _rejected(edge)
    assert rejected.request is not None and rejected.request.expires_at is None
    _assert_storable(rejected)


def test_a_good_record_decodes_with_a_deterministic_id():
    value = json.dumps({"params": {"handle": "someone"}}).encode()
    first, params = decode_request(BASIC, _record(value), LIMIT)
    again, _ = decode_request(BASIC, _record(value), LIMIT)
    assert first.id == again.id and first.flow == BASIC.name and params.handle == "someone"


def test_a_record_on_a_disabled_flow_is_refused_with_its_request():
    spec = FLOWS["fetch_channels_csv"]
    reason = disabled_reason(spec.name, [spec.name])
    value = json.dumps({"id": "r6", "params": {"channel_id": "UC1"}}).encode()
    rejected = refuse_request(spec, RawRecord("t", 0, 0, None, None, value, {}), LIMIT, reason)
    assert rejected.error.type == "DisabledFlow" and rejected.request is not None and rejected.request.id == "r6"
    assert rejected.error.message.startswith("flow fetch_channels_csv is disabled; enabled flows: refresh_")
    garbage = refuse_request(spec, RawRecord("t", 0, 0, None, None, b"\xff", {}), LIMIT, reason)
    assert garbage.error.type == "DisabledFlow" and garbage.request is None


def test_selection_splits_enabled_and_disabled_flows():
    selection = select_flows(["fetch_channel*", "refresh_profile_basic"], disabled=["refresh_profile_basic"])
    assert {spec.name for spec in selection.enabled} == {
        "fetch_channels_csv",
        "fetch_channel_videos_csv",
        "fetch_channel_monthly_stats_csv",
        "fetch_channel_daily_stats_csv",
        "fetch_channel_demographic_csv",
        "fetch_channel_audience_geography_csv",
        "fetch_channel_engagement_csv",
    }
    assert [spec.name for spec in selection.disabled] == ["refresh_profile_basic"]
    assert "refresh_profile_basic" not in disabled_reason("x", ["refresh_profile_basic"])


# dead letters


def _letter(
    value: bytes,
    *,
    key: bytes | None = b"k",
    limit: int = LIMIT,
    message: str = "why",
    headers: dict[str, str] | None = None,
) -> tuple[DeadLetter, bytes]:
    letter = dead_letter(
        _record(value, key, headers), ErrorInfo(type="Test", message=message), max_bytes=limit, flow=BASIC.name
    )
    encoded = letter.to_bytes()
    assert record_size(bounded_key(key), encoded) <= limit
    return letter, encoded


def test_a_small_original_is_carried_whole():
    letter, _ = _letter(b"\xff\xfe not json")
    assert base64.b64decode(letter.original_value) == b"\xff\xfe not json"
    assert not letter.original_truncated and letter.original_size == len(b"\xff\xfe not json")
    assert letter.original_sha256 == hashlib.sha256(b"\xff\xfe not json").hexdigest()


@pytest.mark.parametrize("size", [1_100_000, 2 * 1024 * 1024])
def test_a_megabyte_original_is_cut_to_fit_with_its_size_and_hash(size):
    original = bytes(i % 251 for i in range(size))
    letter, encoded = _letter(original, key=b"K" * 50_000, limit=1024 * 1024)
    assert letter.original_truncated and letter.original_size == size
    assert letter.original_sha256 == hashlib.sha256(original).hexdigest()
    kept = base64.b64decode(letter.original_value)
    assert original.startswith(kept)
    assert len(base64.b64decode(letter.original_key)) == MAX_KEY_BYTES
    # Cut to fit, not cut to nothing: base64 leaves room for three quarters of the limit.
    assert len(encoded) > 1024 * 1024 - 8 * 1024 and len(kept) > 0.74 * 1024 * 1024


def test_hostile_text_in_a_dead_letter_is_cleaned_and_bounded():
    headers = {f"h\x00{i}\ud800": "v\ud800" * 5000 for i in range(100)}
    letter, encoded = _letter(b"x" * 100_000, message="\ud800\x00" * 100_000, headers=headers, limit=4096)
    assert len(letter.error.message) <= MAX_ERROR_MESSAGE
    assert b"\\u0000" not in encoded
    DeadLetter.model_validate_json(encoded)  # what a consumer reads back


# events


def _post(shortcode: str, caption: str) -> PostLog:
    return PostLog(
        event_id=f"e-{shortcode}",
        kind="post",
        request_id="r",
        source="sandbox",
        platform=Platform.INSTAGRAM,
        observed_at=utcnow(),
        shortcode=shortcode,
        dimensions={"caption": caption},
    )


def test_events_become_records_when_each_fits():
    posts = [_post("A1", "short"), _post("A2", "c" * 3000)]
    records, error = event_records([(names.POST_LOG, post.key, post) for post in posts], 4096)
    assert error is None
    assert [(topic, key) for topic, key, _ in records] == [
        (names.POST_LOG, b"INSTAGRAM:A1"),
        (names.POST_LOG, b"INSTAGRAM:A2"),
    ]
    assert [PostLog.model_validate_json(value) for _, _, value in records] == posts


def test_an_event_over_the_limit_fails_the_request_naming_its_kind_key_and_size():
    small, big = _post("SMALL", "short"), _post("BIG", "c" * 4000)
    records, error = event_records([(names.POST_LOG, post.key, post) for post in (small, big)], 4096)
    assert records == [] and error is not None and error.type == "BadResponse"
    assert error.message.startswith("the post event 'INSTAGRAM:BIG' is ") and "over the 4096-byte" in error.message


def test_an_event_that_cannot_be_serialized_fails_the_request():
    broken = _post("S1", "lone \ud800")
    records, error = event_records([(names.POST_LOG, broken.key, broken)], LIMIT)
    assert records == [] and error is not None and error.type == "BadResponse"
    assert "cannot be serialized" in error.message and text_problem(error.message, max_length=None) is None
