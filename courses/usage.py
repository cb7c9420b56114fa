"""Usage of a course against its quota, as bars.

The courses app cannot see labs (labs depends on courses, never the reverse), so the
labs app registers the function that measures usage (``register_usage_source``);
until it does, nothing is in use.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Sum

from courses import selectors
from courses.models import Course

WARN_AT = 80


@dataclass(frozen=True)
class Usage:
    """What a course uses now, in the quota's units."""

    running_labs: int = 0
    labs: int = 0
    max_labs_per_student: int = 0
    max_snapshots_per_lab: int = 0
    vcpu: int = 0
    memory_gb: float = 0
    storage_gb: float = 0
    max_lab_hours_per_student: float = 0
    pool_labs: int = 0
    """Labs of the course's warm pool, built ahead and given to no one yet (in ``labs`` too)."""


@dataclass(frozen=True)
class StudentUsage:
    """What one student of a course uses now."""

    labs: int = 0
    max_snapshots_per_lab: int = 0
    lab_hours: float = 0


@dataclass(frozen=True)
class UsageBar:
    """One limit with what is used of it: ``level`` is ok, warn (from 80 %) or full (100 %)."""

    name: str
    label: str
    used: float
    limit: int | None
    unit: str = ""

    @property
    def unlimited(self) -> bool:
        return self.limit is None

    @property
    def percent(self) -> int:
        if self.limit is None:
            return 0
        if self.limit == 0:
            return 100
        return min(100, round(100 * self.used / self.limit))

    @property
    def level(self) -> str:
        if self.limit is None:
            return "ok"
        if self.used >= self.limit:
            return "full"
        return "warn" if self.percent >= WARN_AT else "ok"

    @property
    def over(self) -> bool:
        """Used beyond the limit (a limit lowered below usage): new work is blocked."""
        return self.limit is not None and self.used > self.limit


UsageSource = Callable[[Course], Usage]
StudentUsageSource = Callable[[Course, AbstractBaseUser], StudentUsage]
_source: UsageSource = lambda course: Usage()  # noqa: E731 - replaced by the labs app
_student_source: StudentUsageSource = lambda course, student: StudentUsage()  # noqa: E731 - likewise


ClassSummarySource = Callable[[Course], dict[str, int]]
_class_summary: ClassSummarySource = lambda course: {"labs": 0, "running": 0, "busy": 0, "errors": 0}  # noqa: E731


def register_usage_source(
    source: UsageSource,
    student_source: StudentUsageSource | None = None,
    class_summary: ClassSummarySource | None = None,
) -> None:
    global _source, _student_source, _class_summary
    _source = source
    if student_source is not None:
        _student_source = student_source
    if class_summary is not None:
        _class_summary = class_summary


def class_summary(course: Course) -> dict[str, int]:
    """What the course's labs do now (labs, running, busy, errors), from the labs app."""
    return _class_summary(course)


def course_usage(course: Course) -> Usage:
    return _source(course)


def usage_bars(course: Course) -> list[UsageBar]:
    quota = selectors.course_quota(course)
    usage = course_usage(course)
    return [
        UsageBar("running_labs", "Labs running at once", usage.running_labs, quota.running_labs),
        UsageBar("labs_per_student", "Labs per student (most)", usage.max_labs_per_student, quota.labs_per_student),
        UsageBar("snapshots_per_lab", "Snapshots per lab (most)", usage.max_snapshots_per_lab, quota.snapshots_per_lab),
        UsageBar("vcpu_total", "Virtual CPUs", usage.vcpu, quota.vcpu_total, "vCPU"),
        UsageBar("memory_gb_total", "Memory", usage.memory_gb, quota.memory_gb_total, "GB"),
        UsageBar("storage_gb_total", "Datastore", usage.storage_gb, quota.storage_gb_total, "GB"),
        UsageBar(
            "lab_hours_per_student",
            "Lab hours per student (most)",
            usage.max_lab_hours_per_student,
            quota.lab_hours_per_student,
            "h",
        ),
        UsageBar("pool_labs", "Warm-pool labs (built ahead)", usage.pool_labs, quota.pool_labs),
    ]


def student_usage_bars(course: Course, student: AbstractBaseUser) -> list[UsageBar]:
    """One student's own usage against the per-student limits plus their top-ups."""
    quota = selectors.course_quota(course)
    usage = _student_source(course, student)
    extra = course.top_ups.filter(student=student).aggregate(labs=Sum("extra_labs"), hours=Sum("extra_lab_hours"))

    def plus(limit: int | None, more: int | None) -> int | None:
        return None if limit is None else limit + (more or 0)

    return [
        UsageBar("labs_per_student", "Your labs", usage.labs, plus(quota.labs_per_student, extra["labs"])),
        UsageBar(
            "snapshots_per_lab", "Snapshots in your fullest lab", usage.max_snapshots_per_lab, quota.snapshots_per_lab
        ),
        UsageBar(
            "lab_hours_per_student",
            "Your lab hours",
            usage.lab_hours,
            plus(quota.lab_hours_per_student, extra["hours"]),
            "h",
        ),
    ]
