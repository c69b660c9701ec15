"""The legacy payload of every routing key the mirror publishes, compared with the legacy's field for field
(legacy-beat.md §8), without services; ``test_mirror.py`` sends the same events through the real mirror."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from core.settings import SettingsError, load_settings
from sinks.legacy_events import legacy_event
from tests.sinks.test_mirror import LEGACY_FIELDS, _kinds
from topics import names
from topics.models import ActivityLog, Platform, ProfileLog, RequestStatus, Status
from topics.sentiment import ActivityPageLog, PageActivity, ReportLog

KINDS = _kinds("legacy")


@pytest.mark.parametrize("routing_key", sorted(LEGACY_FIELDS))
def test_each_routing_key_carries_the_legacy_payload(routing_key):
    cases = [kind for kind in KINDS if kind[3] == routing_key]
    assert cases, f"no event maps to {routing_key}"
    for topic, _, event, _, expected in cases:
        mapped = legacy_event(topic, event.to_bytes())
        assert mapped.routing_key == routing_key
        assert set(mapped.payload) == LEGACY_FIELDS[routing_key]
        assert {k: v for k, v in mapped.payload.items() if k != "hostname"} == expected


def _status(status: Status, attempt: int) -> dict:
    event = RequestStatus(
        request_id="r",
        status=status,
        attempt=attempt,
        flow="refresh_profile_basic",
        at=datetime(2024, 5, 1, 10, 0, tzinfo=UTC),
    )
    payload = legacy_event(names.STATUS, event.to_bytes()).payload
    return {"status": payload["status"], "retry_count": payload["retry_count"], "picked": payload["picked_at"]}


def test_statuses_the_legacy_did_not_have_are_published_as_it_would_have():
    picked = "2024-05-01 10:00:00"
    assert _status(Status.PENDING, 1) == {"status": "PENDING", "retry_count": 1, "picked": None}
    assert _status(Status.PROCESSING, 1) == {"status": "PROCESSING", "retry_count": 1, "picked": picked}
    assert _status(Status.COMPLETE, 2) == {"status": "COMPLETE", "retry_count": 2, "picked": picked}
    assert _status(Status.FAILED, 1) == {"status": "FAILED", "retry_count": 1, "picked": picked}
    assert _status(Status.RETRYING, 1) == {"status": "PENDING", "retry_count": 2, "picked": None}
    assert _status(Status.REDRIVEN, 3) == {"status": "PENDING", "retry_count": 3, "picked": None}
    assert _status(Status.EXPIRED, 1) == {"status": "FAILED", "retry_count": 1, "picked": picked}
    assert _status(Status.DEAD_LETTERED, 2) == {"status": "FAILED", "retry_count": 2, "picked": picked}


def test_timestamps_are_in_the_configured_legacy_zone():
    kolkata = ZoneInfo("Asia/Kolkata")
    by_id = {expected.get("event_id", expected.get("id")): (topic, event) for topic, _, event, _, expected in KINDS}
    status = legacy_event(*_bytes(by_id, "PENDING"), kolkata).payload
    assert (status["event_timestamp"], status["expires_at"]) == ("2024-05-01 15:30:00", "2024-05-01 16:30:00")
    post = legacy_event(*_bytes(by_id, "legacy-post"), kolkata).payload
    assert (post["event_timestamp"], post["publish_time"]) == ("2024-05-01 15:35:00", "2024-04-30 13:30:00")
    story = legacy_event(*_bytes(by_id, "legacy-story"), kolkata).payload
    assert story["publish_time"] == "2024-05-01 15:30:00"  # from taken_at_timestamp
    subscription = legacy_event(*_bytes(by_id, "legacy-ytsub"), kolkata).payload
    assert subscription["subscribed_on"] == "2023-02-03 09:35:06"
    # trace_log's timestamp is ISO 8601 with its offset, as the legacy's: no zone applies.
    trace = legacy_event(*_bytes(by_id, "legacy-trace"), kolkata).payload
    assert trace["timestamp"] == "2024-05-01T10:05:00+00:00"


def _bytes(by_id: dict, wanted: str) -> tuple[str, bytes]:
    for event_id, (topic, event) in by_id.items():
        if event_id == wanted or (wanted == "PENDING" and getattr(event, "status", None) is Status.PENDING):
            return topic, event.to_bytes()
    raise KeyError(wanted)


def test_only_youtube_profiles_take_the_channel_id_as_handle():
    def handle(platform: Platform, **fields) -> str | None:
        event = ProfileLog(
            event_id="e",
            kind="profile",
            request_id="r",
            source="s",
            platform=platform,
            observed_at=datetime(2024, 5, 1, tzinfo=UTC),
            profile_id="UC1",
            **fields,
        )
        return legacy_event(names.PROFILE_LOG, event.to_bytes()).payload["handle"]

    assert handle(Platform.YOUTUBE, handle="@custom") == "UC1"
    assert handle(Platform.INSTAGRAM, handle="nasa") == "nasa"
    assert handle(Platform.INSTAGRAM, dimensions={"handle": "nasa"}) == "nasa"


def test_the_legacy_timezone_setting_is_checked():
    assert load_settings(legacy_timezone="Asia/Kolkata").legacy_timezone == "Asia/Kolkata"
    with pytest.raises(SettingsError, match=r"BEAT_LEGACY_TIMEZONE: .*unknown time zone"):
        load_settings(legacy_timezone="Mars/Olympus")


def test_a_single_activity_and_a_page_of_them_take_their_own_routing_keys():
    activity = ActivityLog(
        event_id="e",
        request_id="r",
        source="rocketapi",
        platform=Platform.INSTAGRAM,
        observed_at=datetime(2024, 5, 1, tzinfo=UTC),
        activity_type="COMMENT",
        actor_profile_id="a1",
        shortcode="S1",
    )
    assert legacy_event(names.POST_ACTIVITY_LOG, activity.to_bytes()).routing_key == "post_activity_log_events"
    # A page of likes or comments shares the topic (issue #16); the legacy sent it as post_activity_log_bulk.
    row = PageActivity.model_validate(activity.model_dump(include=set(PageActivity.model_fields)))
    page = ActivityPageLog.model_validate(
        {**activity.model_dump(), "kind": "activity_page", "actor_profile_id": None, "activities": [row, row]}
    )
    bulk = legacy_event(names.POST_ACTIVITY_LOG, page.to_bytes(), ZoneInfo("Asia/Kolkata"))
    assert (bulk.exchange, bulk.routing_key, bulk.event_id) == ("beat.dx", "post_activity_log_bulk", "e")
    assert [r["timestamp"] for r in bulk.payload["post_activity_logs"]] == ["2024-05-01 05:30:00"] * 2
    # A page without its activities is no valid page: the mirror dead-letters it.
    broken = activity.model_copy(update={"kind": "activity_page", "actor_profile_id": None})
    with pytest.raises(ValueError, match="activities"):
        legacy_event(names.POST_ACTIVITY_LOG, broken.to_bytes())


def _report(**fields) -> ReportLog:
    return ReportLog(
        event_id="rep",
        request_id="r",
        platform=Platform.INSTAGRAM,
        observed_at=datetime(2024, 5, 1, tzinfo=UTC),
        **fields,
    )


def test_each_report_takes_its_coffee_key_and_a_report_of_no_legacy_kind_none():
    keyword = _report(report="keyword_collection", job_id="J", paths={"report": "k.parquet"})
    mapped = legacy_event(names.REPORT_LOG, keyword.to_bytes())
    assert (mapped.exchange, mapped.routing_key) == ("coffee.dx", "keyword_collection_report_completion")
    # The local asset store has no bucket, and a missing file role is null: the fields are always there.
    assert mapped.payload == {
        "job_id": "J",
        "report_asset": {"path": "k.parquet", "bucket": None},
        "demographic_report_asset": {"path": None, "bucket": None},
    }
    sentiment = _report(report="sentiment_collection", collection_type="T", collection_id="C", paths={})
    assert legacy_event(names.REPORT_LOG, sentiment.to_bytes()).routing_key == "sentiment_collection_report_out_rk"
    assert legacy_event(names.REPORT_LOG, _report(report="other", paths={}).to_bytes()) is None
