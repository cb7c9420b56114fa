"""labs/usage.py without the database: periods, clipping runs, splitting hours at midnight."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest
from django.core.exceptions import ValidationError

from labs import usage

PARIS = ZoneInfo("Europe/Paris")
SEPTEMBER = usage.Period(date(2026, 9, 1), date(2026, 9, 30))


def utc(day: int, hour: int, minute: int = 0, month: int = 10) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=UTC)


def test_a_run_past_midnight_counts_on_both_days():
    assert usage.hours_by_day(utc(1, 22), utc(2, 1, 30), UTC) == {date(2026, 10, 1): 2.0, date(2026, 10, 2): 1.5}


def test_a_run_over_several_days_fills_the_days_between():
    hours = usage.hours_by_day(utc(1, 12), utc(4, 6), UTC)
    assert hours == {date(2026, 10, 1): 12, date(2026, 10, 2): 24, date(2026, 10, 3): 24, date(2026, 10, 4): 6}


def test_days_are_the_time_zone_s():
    """22:00 UTC on 1 Oct is midnight in Paris (UTC+2): the whole run is on the 2nd there."""
    assert usage.hours_by_day(utc(1, 22), utc(2, 1), PARIS) == {date(2026, 10, 2): 3.0}


def test_the_day_clocks_go_back_has_25_hours():
    """25 Oct 2026 in Paris: 02:00-03:00 happens twice. Midnight to midnight is 25 h."""
    start = datetime(2026, 10, 25, 0, 0, tzinfo=PARIS)
    end = datetime(2026, 10, 26, 0, 0, tzinfo=PARIS)
    assert usage.hours_by_day(start, end, PARIS) == {date(2026, 10, 25): 25.0}


def test_an_empty_run_has_no_hours():
    assert usage.hours_by_day(utc(1, 9), utc(1, 9), UTC) == {}


@pytest.mark.parametrize(
    ("start", "end", "expected"),
    [
        (utc(1, 8), utc(1, 10), (utc(1, 9), utc(1, 10))),  # starts before
        (utc(1, 9, 30), utc(1, 12), (utc(1, 9, 30), utc(1, 11))),  # ends after
        (utc(1, 12), utc(1, 13), None),  # after
        (utc(1, 7), utc(1, 9), None),  # touches the start only
    ],
)
def test_clip(start, end, expected):
    assert usage.clip(start, end, utc(1, 9), utc(1, 11)) == expected


def test_a_period_s_bounds_are_local_midnights_in_utc():
    start, end = usage.Period(date(2026, 10, 1), date(2026, 10, 31)).bounds(PARIS)
    assert start == datetime(2026, 9, 30, 22, tzinfo=UTC)
    assert end == datetime(2026, 10, 31, 23, tzinfo=UTC)  # 1 Nov 00:00 in Paris, after the clocks went back


def test_a_period_lists_its_days():
    assert usage.Period(date(2026, 12, 30), date(2027, 1, 2)).days == [
        date(2026, 12, 30),
        date(2026, 12, 31),
        date(2027, 1, 1),
        date(2027, 1, 2),
    ]


def test_the_recent_period_ends_today():
    assert usage.recent_period(date(2026, 10, 10)) == usage.Period(date(2026, 9, 11), date(2026, 10, 10))


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({}, SEPTEMBER),
        ({"from": "", "to": " "}, SEPTEMBER),
        ({"from": "2026-09-10"}, usage.Period(date(2026, 9, 10), date(2026, 9, 30))),
        ({"to": "2026-09-01"}, usage.Period(date(2026, 9, 1), date(2026, 9, 1))),
        ({"from": "2025-01-01", "to": "2026-12-31"}, usage.Period(date(2025, 1, 1), date(2026, 12, 31))),
    ],
)
def test_parse_period(query, expected):
    assert usage.parse_period(query, SEPTEMBER) == expected


@pytest.mark.parametrize(
    ("query", "field", "words"),
    [
        ({"from": "yesterday"}, "from", "“yesterday” is not a date: write it as YYYY-MM-DD."),
        ({"to": "2026-02-30"}, "to", "“2026-02-30” is not a date: write it as YYYY-MM-DD."),
        ({"from": "2026-10-01"}, "to", "The period ends (2026-09-30) before it starts (2026-10-01)."),
        ({"from": "2024-01-01", "to": "2026-01-01"}, "to", "A period is at most 731 days; this one has 732."),
    ],
)
def test_a_bad_period_is_refused_in_words(query, field, words):
    with pytest.raises(ValidationError) as refused:
        usage.parse_period(query, SEPTEMBER)
    assert refused.value.message_dict == {field: [words]}


def test_a_course_that_ends_before_it_starts_still_has_a_day():
    class Course:
        starts_on, ends_on = date(2026, 9, 1), date(2026, 8, 1)

    assert usage.course_period(Course()) == usage.Period(date(2026, 9, 1), date(2026, 9, 1))


@pytest.mark.parametrize(("limit", "extra", "expected"), [(None, 5, None), (10, None, 10), (10, 5, 15), (0, 2, 2)])
def test_limit_plus_top_ups(limit, extra, expected):
    assert usage.limit_plus(limit, extra) == expected


def test_figures_add_up_and_keep_the_fullest_lab():
    total = usage.Figures(lab_hours=1.25, labs=1, snapshots=2, snapshots_most_in_a_lab=2, vcpu=4)
    total.add(usage.Figures(lab_hours=2.5, labs=2, snapshots=3, snapshots_most_in_a_lab=1, vcpu=8, memory_gb=1 / 3))
    assert (total.lab_hours, total.labs, total.snapshots, total.vcpu) == (3.75, 3, 5, 12)
    assert total.snapshots_most_in_a_lab == 2
    assert total.rounded().memory_gb == 0.33
