"""The keyword search's date windows and the id batching of the YouTube flows (pure)."""

from __future__ import annotations

import itertools
from datetime import date, timedelta

import pytest

from agents.flows.youtube import BATCH, _batches, search_windows


def _days(windows) -> list[tuple[date, date]]:
    return [(start.date(), end.date()) for start, end in windows]


def test_weekly_windows_under_sixty_days_cover_the_range_once() -> None:
    windows = search_windows(date(2026, 1, 1), date(2026, 1, 20), None)
    assert _days(windows) == [
        (date(2026, 1, 1), date(2026, 1, 7)),
        (date(2026, 1, 8), date(2026, 1, 14)),
        (date(2026, 1, 15), date(2026, 1, 20)),
    ]
    assert windows[0][0].isoformat() == "2026-01-01T00:00:00+00:00"
    assert windows[-1][1].isoformat() == "2026-01-20T23:59:59+00:00"


def test_thirty_day_windows_from_sixty_days_on() -> None:
    windows = _days(search_windows(date(2026, 1, 1), date(2026, 3, 31), None))
    assert [end - start for start, end in windows[:-1]] == [timedelta(days=29)] * (len(windows) - 1)
    assert windows[0][0] == date(2026, 1, 1) and windows[-1][1] == date(2026, 3, 31)
    assert all(b[0] - a[1] == timedelta(days=1) for a, b in itertools.pairwise(windows))


def test_frequency_sets_the_window_length() -> None:
    assert _days(search_windows(date(2026, 1, 1), date(2026, 1, 5), 2)) == [
        (date(2026, 1, 1), date(2026, 1, 2)),
        (date(2026, 1, 3), date(2026, 1, 4)),
        (date(2026, 1, 5), date(2026, 1, 5)),
    ]


def test_one_day_range_is_one_window() -> None:
    assert _days(search_windows(date(2026, 5, 5), date(2026, 5, 5), None)) == [(date(2026, 5, 5), date(2026, 5, 5))]


def test_end_before_start_is_refused() -> None:
    with pytest.raises(ValueError, match="before start_date"):
        search_windows(date(2026, 2, 1), date(2026, 1, 1), None)


def test_batches_of_forty_without_duplicates_or_blanks() -> None:
    ids = [f"v{i:03d}" for i in range(95)] + ["v001", " ", ""]
    batches = _batches(ids, BATCH)
    assert [len(b) for b in batches] == [40, 40, 15]
    assert list(itertools.chain.from_iterable(batches)) == [f"v{i:03d}" for i in range(95)]
