"""courses/bounds.py: the named limits and the clamped durations the runtime uses."""

import datetime

import pytest
from django.core.exceptions import ValidationError

from courses import bounds


def test_durations_are_clamped_so_a_bad_stored_value_never_overflows():
    with pytest.raises(OverflowError):
        datetime.datetime.now() + datetime.timedelta(hours=99_999_999)  # what a lab start hit
    assert bounds.lease(99_999_999) == datetime.timedelta(hours=bounds.MAX_LEASE_HOURS)
    assert bounds.lease(4) == datetime.timedelta(hours=4)
    assert bounds.idle_period(10**12) == datetime.timedelta(minutes=bounds.MAX_IDLE_MINUTES)
    assert bounds.lifetime_after_end(10**9) == datetime.timedelta(days=bounds.MAX_LIFETIME_DAYS)


def test_the_latest_course_date_is_ten_years_ahead_even_from_29_february():
    assert bounds.latest_date(datetime.date(2028, 2, 29)) == datetime.date(2038, 2, 28)
    assert bounds.latest_date(datetime.date(2026, 12, 4)) == datetime.date(2036, 12, 4)


def test_course_dates_outside_2000_to_ten_years_ahead_are_refused_in_words():
    bounds.validate_date_in_range(datetime.date(2000, 1, 1))
    for bad in (datetime.date(1999, 12, 31), datetime.date(9999, 12, 31)):
        with pytest.raises(ValidationError, match="Pick a date between 2000-01-01 and"):
            bounds.validate_date_in_range(bad)
