"""Usage reports: what each student of a course, and each course, used over a period.

Reads only (selectors); the course page, the admin page, their CSV files and the API all call
``course_usage_report`` and ``usage_report``, which ask ``labs.permissions`` first.

Where the figures come from:
- lab hours in the period: the closed run periods (``LabRun``) and the period running now
  (``Lab.running_since``), clipped to the period and split at local midnights (``TIME_ZONE``);
- lab hours in total: what the quota meters (``Lab.hours_used`` plus the running period), every
  lab of the course included, deleted ones too;
- labs, snapshots, vCPU, memory and datastore now: the labs that hold vCenter resources
  (``Lab.ACTIVE_STATES``) and the sizes reserved for them from the published template version
  (``Lab.vcpu``, ``memory_mb``, ``disk_gb``; the publish step records each VM's disks);
- labs started and snapshots taken in the period: lab rows created, and snapshot operations
  that succeeded, within it.

Every report runs a fixed number of queries whatever the number of students, labs or courses.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from datetime import UTC, date, datetime, time, timedelta, tzinfo

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection
from django.db.models import (
    Case,
    Count,
    DateTimeField,
    DurationField,
    ExpressionWrapper,
    F,
    IntegerField,
    Q,
    Sum,
    Value,
    When,
)
from django.db.models.functions import Greatest, Least, TruncDate
from django.utils import timezone

from courses import bounds
from courses.models import Course, CourseQuota, QuotaTopUp, VCenterEndpoint
from labs import permissions
from labs.models import Lab, LabRun, LabSnapshot, Operation

# A period is read day by day (the chart has one column a day): two years at most.
MAX_PERIOD_DAYS = 731
RECENT_DAYS = 30


# The period


@dataclass(frozen=True)
class Period:
    """Calendar days from ``start`` to ``end``, both included, in the portal's time zone."""

    start: date
    end: date

    @property
    def days(self) -> list[date]:
        return [self.start + timedelta(days=n) for n in range((self.end - self.start).days + 1)]

    def bounds(self, tz: tzinfo) -> tuple[datetime, datetime]:
        """The period as [start, end) instants in UTC: local midnight to the midnight after its last day."""
        return _midnight(self.start, tz), _midnight(self.end + timedelta(days=1), tz)


def _midnight(day: date, tz: tzinfo) -> datetime:
    return datetime.combine(day, time(), tzinfo=tz).astimezone(UTC)


def course_period(course: Course) -> Period:
    """A course's report covers its dates unless asked otherwise."""
    return Period(course.starts_on, max(course.starts_on, course.ends_on))


def recent_period(today: date, days: int = RECENT_DAYS) -> Period:
    """The last ``days`` days, today included (the default of the report across courses)."""
    return Period(today - timedelta(days=days - 1), today)


def _parse_day(value: str, name: str) -> date:
    try:
        day = date.fromisoformat(value)
    except ValueError:
        shown = value if len(value) <= 40 else value[:40] + "…"
        raise ValidationError({name: f"“{shown}” is not a date: write it as YYYY-MM-DD."}) from None
    try:
        # 9999-12-31 is a date, but a period ending there has no next midnight: "out of range", a 500.
        bounds.validate_date_in_range(day)
    except ValidationError as error:
        raise ValidationError({name: error.messages}) from None
    return day


def parse_period(query: Mapping[str, str], default: Period) -> Period:
    """The period asked for with ``from`` and ``to`` (YYYY-MM-DD, both included); a blank one
    takes the default's. Raises ValidationError in words for a bad date or period."""
    given = {name: (query.get(name) or "").strip() for name in ("from", "to")}
    start = _parse_day(given["from"], "from") if given["from"] else default.start
    end = _parse_day(given["to"], "to") if given["to"] else default.end
    if end < start:
        raise ValidationError({"to": f"The period ends ({end:%Y-%m-%d}) before it starts ({start:%Y-%m-%d})."})
    if (end - start).days + 1 > MAX_PERIOD_DAYS:
        raise ValidationError(
            {"to": f"A period is at most {MAX_PERIOD_DAYS} days; this one has {(end - start).days + 1}."}
        )
    return Period(start, end)


# Arithmetic on time (no database)


def clip(start: datetime, end: datetime, lower: datetime, upper: datetime) -> tuple[datetime, datetime] | None:
    """The part of [start, end) inside [lower, upper), or None when they do not overlap."""
    start, end = max(start, lower), min(end, upper)
    return (start, end) if start < end else None


def hours_by_day(start: datetime, end: datetime, tz: tzinfo) -> dict[date, float]:
    """Hours of [start, end) on each calendar day of ``tz``: a run past midnight counts on both days.

    Arithmetic is done in UTC, so a day with a daylight saving change has its real length.
    """
    hours: dict[date, float] = defaultdict(float)
    cursor, end = start.astimezone(UTC), end.astimezone(UTC)
    while cursor < end:
        day = cursor.astimezone(tz).date()
        stop = min(end, _midnight(day + timedelta(days=1), tz))
        hours[day] += (stop - cursor).total_seconds() / 3600
        cursor = stop
    return dict(hours)


def limit_plus(limit: int | None, extra: int | None) -> int | None:
    """A per-student limit with the student's top-ups (None: no limit, whatever the top-ups)."""
    return None if limit is None else limit + (extra or 0)


# What a report holds


@dataclass(kw_only=True)
class Figures:
    """What a student, a course or a vCenter used: over the period, and now."""

    lab_hours: float = 0  # run in the period
    lab_hours_total: float = 0  # all time: what the quota meters
    labs: int = 0  # holding vCenter resources now
    labs_started: int = 0  # created in the period (deleted ones included)
    running: int = 0  # powered on now
    snapshots: int = 0  # kept now (lab baselines left out)
    snapshots_most_in_a_lab: int = 0
    snapshots_taken: int = 0  # in the period
    vcpu: int = 0  # reserved by the labs held now
    memory_gb: float = 0
    storage_gb: float = 0

    def add(self, other: Figures) -> None:
        for name in FIGURE_FIELDS:
            if name == "snapshots_most_in_a_lab":
                self.snapshots_most_in_a_lab = max(self.snapshots_most_in_a_lab, other.snapshots_most_in_a_lab)
            else:
                setattr(self, name, getattr(self, name) + getattr(other, name))

    def rounded(self) -> Figures:
        """Hours and sizes to 2 decimals, for people and files (the arithmetic keeps full precision)."""
        for name in ("lab_hours", "lab_hours_total", "memory_gb", "storage_gb"):
            setattr(self, name, round(getattr(self, name), 2))
        return self


FIGURE_FIELDS = tuple(f.name for f in fields(Figures))


@dataclass(kw_only=True)
class StudentUsageRow(Figures):
    """One student of a course, with the per-student limits (their top-ups included; None: no limit)."""

    student_id: int
    username: str
    name: str
    enrolled: bool
    lab_hours_limit: int | None = None
    labs_limit: int | None = None


@dataclass(frozen=True)
class DayHours:
    day: date
    hours: float


@dataclass(kw_only=True)
class CourseLimits:
    """The course quota's limits a report shows beside the figures (None: no limit)."""

    running_labs: int | None = None
    labs_per_student: int | None = None
    snapshots_per_lab: int | None = None
    vcpu_total: int | None = None
    memory_gb_total: int | None = None
    storage_gb_total: int | None = None
    lab_hours_per_student: int | None = None

    @classmethod
    def of(cls, quota: CourseQuota | None) -> CourseLimits:
        if quota is None:
            return cls()
        return cls(**{f.name: getattr(quota, f.name) for f in fields(cls)})


@dataclass(kw_only=True)
class CourseUsageReport:
    course: Course
    period: Period
    students: list[StudentUsageRow]
    totals: Figures
    limits: CourseLimits
    days: list[DayHours]
    generated_at: datetime


@dataclass(kw_only=True)
class CourseUsageRow(Figures):
    """One course in the report across courses, with its class-wide limits."""

    course_id: int
    code: str
    title: str
    state: str
    students: int
    endpoints: list[str] = field(default_factory=list)
    vcpu_limit: int | None = None
    memory_gb_limit: int | None = None
    storage_gb_limit: int | None = None
    running_limit: int | None = None


@dataclass(kw_only=True)
class EndpointUsageRow(Figures):
    """One vCenter: what the labs built on it use."""

    endpoint_id: int
    name: str
    courses: int = 0


@dataclass(kw_only=True)
class UsageReport:
    period: Period
    courses: list[CourseUsageRow]
    endpoints: list[EndpointUsageRow]
    totals: Figures
    days: list[DayHours]
    generated_at: datetime


# Measuring (a fixed number of queries for any scope)


@dataclass
class _Measure:
    """Figures by key (a tuple of Lab fields), and lab hours by day, for the labs of a scope."""

    by_key: dict[tuple, Figures]
    days: dict[date, float]


def _run_key(key: str):
    """Whose a run is, by a Lab field: the lab's, but a warm-pool lab's runs before it was handed
    over (``Lab.given_at``) are nobody's student's: the course's (labs.pools)."""
    field = F(f"lab__{key}")
    if key != "student_id":
        return field
    before_hand_over = Q(lab__given_at__isnull=False, ended_at__lte=F("lab__given_at"))
    return Case(When(before_hand_over, then=Value(None)), default=field, output_field=IntegerField())


def _measure(scope: Q, keys: tuple[str, ...], period: Period, now: datetime) -> _Measure:
    """Five or six queries: labs (grouped), labs running now, runs (within a day, summed per day,
    and across a midnight, on PostgreSQL), snapshots kept, snapshots taken. ``scope`` filters Lab rows; ``keys`` are
    the Lab fields to group by."""
    tz = timezone.get_current_timezone()
    lower, upper = period.bounds(tz)
    upper_now = min(upper, now)  # nothing has run in the future
    by_key: dict[tuple, Figures] = defaultdict(Figures)
    days: dict[date, float] = defaultdict(float)
    active = Q(state__in=Lab.ACTIVE_STATES)

    grouped = (
        Lab.objects.filter(scope)
        .values(*keys)
        .order_by()
        .annotate(
            n_active=Count("pk", filter=active),
            n_started=Count("pk", filter=Q(created_at__gte=lower, created_at__lt=upper)),
            n_running=Count("pk", filter=active & Q(running_since__isnull=False)),
            vcpu=Sum("vcpu", filter=active),
            memory_mb=Sum("memory_mb", filter=active),
            disk_gb=Sum("disk_gb", filter=active),
            hours_used=Sum("hours_used"),
        )
    )
    for row in grouped:
        figures = by_key[tuple(row[key] for key in keys)]
        figures.labs = row["n_active"]
        figures.labs_started = row["n_started"]
        figures.running = row["n_running"]
        figures.vcpu = row["vcpu"] or 0
        figures.memory_gb = (row["memory_mb"] or 0) / 1024
        figures.storage_gb = row["disk_gb"] or 0
        figures.lab_hours_total = row["hours_used"] or 0

    def metered(key: tuple, start: datetime, end: datetime) -> None:
        part = clip(start, end, lower, upper_now)
        if part is None:
            return
        for day, hours in hours_by_day(*part, tz).items():
            days[day] += hours
            by_key[key].lab_hours += hours

    for *key, since in Lab.objects.filter(scope, running_since__isnull=False).values_list(*keys, "running_since"):
        by_key[tuple(key)].lab_hours_total += max(0.0, (now - since).total_seconds() / 3600)
        metered(tuple(key), since, now)
    # Closed runs: on PostgreSQL, those within one local day (nearly all) are summed by the
    # database, day by day, and the few that cross a midnight are split here (clipping to the
    # period cannot make a run cross one: its bounds are midnights). SQLite runs date functions
    # in Python row by row, slower than splitting every run here, so there every run is split
    # here. A class of 200 with 20,000 runs, on a busy 2-core machine: PostgreSQL 0.3-0.4 s
    # (1.3 s splitting every run here), SQLite 1-1.8 s (about 4 s summing in the database).
    lab_keys = tuple(f"run_{key}" for key in keys)
    start = Greatest("started_at", Value(lower, output_field=DateTimeField()))
    end = Least("ended_at", Value(upper_now, output_field=DateTimeField()))
    runs = (
        LabRun.objects.filter(lab__in=Lab.objects.filter(scope), ended_at__gt=lower, started_at__lt=upper_now)
        .annotate(**{f"run_{key}": _run_key(key) for key in keys})
        .annotate(first_day=TruncDate(start, tzinfo=tz), last_day=TruncDate(end, tzinfo=tz))
        .order_by()
    )
    in_database = connection.vendor == "postgresql"
    same_day = (
        runs.filter(first_day=F("last_day"))
        .values(*lab_keys, "first_day")
        .annotate(length=Sum(ExpressionWrapper(end - start, output_field=DurationField())))
    )
    for row in same_day if in_database else ():
        hours = row["length"].total_seconds() / 3600
        days[row["first_day"]] += hours
        by_key[tuple(row[key] for key in lab_keys)].lab_hours += hours
    split_here = runs.exclude(first_day=F("last_day")) if in_database else runs
    for *key, started, ended in split_here.values_list(*lab_keys, "started_at", "ended_at"):
        metered(tuple(key), started, ended)

    kept = (
        LabSnapshot.objects.filter(lab__in=Lab.objects.filter(scope & active), is_baseline=False)
        .values(*(f"lab__{key}" for key in keys), "lab_id")
        .order_by()
        .annotate(n=Count("pk"))
    )
    for row in kept:
        figures = by_key[tuple(row[f"lab__{key}"] for key in keys)]
        figures.snapshots += row["n"]
        figures.snapshots_most_in_a_lab = max(figures.snapshots_most_in_a_lab, row["n"])
    taken = (
        Operation.objects.filter(
            lab__in=Lab.objects.filter(scope),
            kind=Operation.Kind.SNAPSHOT,
            state=Operation.State.SUCCEEDED,
            finished_at__gte=lower,
            finished_at__lt=upper,
        )
        .values(*(f"lab__{key}" for key in keys))
        .order_by()
        .annotate(n=Count("pk"))
    )
    for row in taken:
        by_key[tuple(row[f"lab__{key}"] for key in keys)].snapshots_taken += row["n"]
    return _Measure(by_key=dict(by_key), days=dict(days))


def _day_series(period: Period, days: dict[date, float]) -> list[DayHours]:
    return [DayHours(day, round(days.get(day, 0.0), 2)) for day in period.days]


def _full_name(user: AbstractBaseUser) -> str:
    return user.get_full_name() or user.username


# The reports


def course_usage_report(
    *, course: Course, user: AbstractBaseUser, period: Period | None = None, now: datetime | None = None
) -> CourseUsageReport:
    """Every student of a course (and anyone else with a lab in it) over the period (default:
    the course's dates), the class's totals against its quota, and lab hours per day.

    The course's instructors and admins (``labs.permissions.can_view_course_usage``).
    """
    if not permissions.can_view_course_usage(user, course):
        raise PermissionDenied("Only this course's instructors and admins can see its usage.")
    period = period or course_period(course)
    now = now or timezone.now()
    measure = _measure(Q(course=course), ("student_id",), period, now)
    quota = CourseQuota.objects.filter(course=course).first()
    limits = CourseLimits.of(quota)
    extra = {
        row["student_id"]: row
        for row in QuotaTopUp.objects.filter(course=course)
        .values("student_id")
        .order_by()
        .annotate(hours=Sum("extra_lab_hours"), labs=Sum("extra_labs"))
    }
    people = {enrollment.student_id: enrollment.student for enrollment in course.enrollments.select_related("student")}
    enrolled = set(people)
    others = {key[0] for key in measure.by_key} - enrolled  # removed from the course, their labs kept
    if others:
        people.update(get_user_model().objects.in_bulk(others))

    rows = []
    for student_id, person in people.items():
        figures = measure.by_key.get((student_id,), Figures())
        top_up = extra.get(student_id, {})
        rows.append(
            StudentUsageRow(
                student_id=student_id,
                username=person.get_username(),
                name=_full_name(person),
                enrolled=student_id in enrolled,
                lab_hours_limit=limit_plus(limits.lab_hours_per_student, top_up.get("hours")),
                labs_limit=limit_plus(limits.labs_per_student, top_up.get("labs")),
                **{name: getattr(figures, name) for name in FIGURE_FIELDS},
            ).rounded()
        )
    rows.sort(key=lambda row: (not row.enrolled, row.username.lower()))
    totals = Figures()
    for figures in measure.by_key.values():
        totals.add(figures)
    return CourseUsageReport(
        course=course,
        period=period,
        students=rows,
        totals=totals.rounded(),
        limits=limits,
        days=_day_series(period, measure.days),
        generated_at=now,
    )


# Courses shown across courses: those that can have labs, and any other with something to show.
_LIVE_COURSE_STATES = (Course.State.OPEN, Course.State.CLOSED)


def usage_report(*, user: AbstractBaseUser, period: Period | None = None, now: datetime | None = None) -> UsageReport:
    """Every course (open and closed ones, and any other with labs or use in the period) and every
    vCenter over the period (default: the last 30 days), with lab hours per day. Admins only
    (``labs.permissions.can_view_all_usage``)."""
    if not permissions.can_view_all_usage(user):
        raise PermissionDenied("Only admins can see the usage of every course.")
    now = now or timezone.now()
    period = period or recent_period(timezone.localdate(now))
    measure = _measure(Q(), ("course_id", "endpoint_id"), period, now)

    by_course: dict[int, Figures] = defaultdict(Figures)
    by_endpoint: dict[int, Figures] = defaultdict(Figures)
    endpoint_courses: dict[int, set[int]] = defaultdict(set)
    for (course_id, endpoint_id), figures in measure.by_key.items():
        by_course[course_id].add(figures)
        by_endpoint[endpoint_id].add(figures)
        endpoint_courses[endpoint_id].add(course_id)
    endpoints = VCenterEndpoint.objects.in_bulk(list(by_endpoint))

    courses = (
        Course.objects.filter(Q(state__in=_LIVE_COURSE_STATES) | Q(pk__in=list(by_course)))
        .select_related("quota")
        .annotate(student_count=Count("enrollments"))
        .order_by("code")
    )
    rows = []
    for course in courses:
        figures = by_course.get(course.pk, Figures())
        quota = getattr(course, "quota", None)
        limits = CourseLimits.of(quota)
        rows.append(
            CourseUsageRow(
                course_id=course.pk,
                code=course.code,
                title=course.title,
                state=course.state,
                students=course.student_count,
                endpoints=sorted(
                    endpoints[endpoint_id].name
                    for endpoint_id, course_ids in endpoint_courses.items()
                    if course.pk in course_ids and endpoint_id in endpoints
                ),
                vcpu_limit=limits.vcpu_total,
                memory_gb_limit=limits.memory_gb_total,
                storage_gb_limit=limits.storage_gb_total,
                running_limit=limits.running_labs,
                **{name: getattr(figures, name) for name in FIGURE_FIELDS},
            ).rounded()
        )
    endpoint_rows = [
        EndpointUsageRow(
            endpoint_id=endpoint_id,
            name=endpoints[endpoint_id].name,
            courses=len(endpoint_courses[endpoint_id]),
            **{name: getattr(figures, name) for name in FIGURE_FIELDS},
        ).rounded()
        for endpoint_id, figures in by_endpoint.items()
        if endpoint_id in endpoints
    ]
    endpoint_rows.sort(key=lambda row: row.name.lower())
    totals = Figures()
    for figures in by_course.values():
        totals.add(figures)
    return UsageReport(
        period=period,
        courses=rows,
        endpoints=endpoint_rows,
        totals=totals.rounded(),
        days=_day_series(period, measure.days),
        generated_at=now,
    )
