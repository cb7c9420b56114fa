"""Bounds on every duration, count and size a person can type: the one place they are named.

Model fields take their validators from here, so a page, the API, the admin and any later path
refuse the same values in the same words (a 400), and nothing out of range reaches the arithmetic
of leases, idle clocks, retention or quota bars: `lease_hours: 99999999` was accepted once, and
every lab start of that course then failed at power-on (issue 10, "Bad input").

The limits are generous: far above what any class uses, far below what breaks a date or a
database column.
"""

from __future__ import annotations

import datetime

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.utils import timezone

# Quotas (CourseQuota) and top-ups (QuotaTopUp).
MAX_LABS = 10_000  # running labs of a class; labs of one student
MAX_SNAPSHOTS_PER_LAB = 100
MAX_VCPUS = 1_000_000
MAX_MEMORY_GB = 10_000_000
MAX_STORAGE_GB = 100_000_000
MAX_LAB_HOURS = 100_000  # about eleven years of running
MAX_LIFETIME_DAYS = 3_650  # labs kept at most ten years after a course ends
MAX_LEASE_HOURS = 8_760  # a lease of a year
MAX_LEASE_EXTENSIONS = 100
MAX_IDLE_MINUTES = 525_600  # a year
# Warm pools (labs.models.WarmPool, CourseQuota.pool_labs): labs built ahead for a class; more
# than a large class's roster only holds vCenter resources nobody will take.
MAX_POOL_LABS = 1_000

# Course dates: from the first day of 2000 to ten years from today.
EARLIEST_DATE = datetime.date(2000, 1, 1)
LATEST_YEARS_AHEAD = 10

# vCenter endpoints.
MAX_CONCURRENCY_LIMIT = 256
MAX_ENDPOINT_VMS = 1_000_000

# Class sessions (ClassSession): a meeting lasts at most a day, and its labs are made ready at
# most a day ahead (labs waiting longer than that only burn lab hours).
MAX_SESSION_MINUTES = 24 * 60
MAX_READY_MINUTES_BEFORE = 24 * 60
DEFAULT_READY_MINUTES_BEFORE = 10


def upto(maximum: int, minimum: int = 0) -> list:
    """Validators for a count or duration from ``minimum`` to ``maximum``."""
    return [MinValueValidator(minimum), MaxValueValidator(maximum)]


def latest_date(today: datetime.date | None = None) -> datetime.date:
    today = today or timezone.localdate()
    try:
        return today.replace(year=today.year + LATEST_YEARS_AHEAD)
    except ValueError:  # 29 February
        return today.replace(year=today.year + LATEST_YEARS_AHEAD, day=28)


def validate_date_in_range(value: datetime.date) -> None:
    """A date a person may give (course dates, report periods): 2000-01-01 to ten years from today."""
    if value is None:
        return
    if value < EARLIEST_DATE or value > latest_date():
        raise ValidationError(
            "Pick a date between %(earliest)s and %(latest)s.",
            code="date_out_of_range",
            params={"earliest": EARLIEST_DATE.isoformat(), "latest": latest_date().isoformat()},
        )


# Durations for the runtime arithmetic, clamped: a value stored before these bounds existed (or
# written around the model) must never raise OverflowError in a power-on or a periodic sweep.


def lease(hours: int) -> datetime.timedelta:
    return datetime.timedelta(hours=min(hours, MAX_LEASE_HOURS))


def idle_period(minutes: int) -> datetime.timedelta:
    return datetime.timedelta(minutes=min(minutes, MAX_IDLE_MINUTES))


def lifetime_after_end(days: int) -> datetime.timedelta:
    return datetime.timedelta(days=min(days, MAX_LIFETIME_DAYS))
