"""Quota arithmetic at the click. Callers hold the course's quota row locked
(``lock_quota``) for the rest of their transaction, so concurrent clicks in one course
are checked one after the other and can never exceed a limit together."""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Count, Q, Sum

from core.errors import QuotaExceeded
from courses.models import Course, CourseQuota, TemplateVersion
from courses.usage import StudentUsage, Usage
from labs.models import Lab, LabSnapshot, LabVM, Operation


def lock_quota(course: Course) -> CourseQuota:
    """The course's quota row, locked for this transaction (made first if the course has none):
    one query when it exists, as it does for every course once its quota was read."""
    quota = CourseQuota.objects.select_for_update().filter(course=course).first()
    if quota is not None:
        return quota
    quota, _ = CourseQuota.objects.get_or_create(course=course)
    return CourseQuota.objects.select_for_update().get(pk=quota.pk)


def _active_labs(course: Course):
    return Lab.objects.filter(course=course, state__in=Lab.ACTIVE_STATES)


def _top_ups(course: Course, student: AbstractBaseUser, quota: CourseQuota | None = None) -> tuple[int, int]:
    """A student's extra labs and hours. Kept on the locked ``quota`` row for the transaction
    that holds it, so a start's checks (labs, then hours) read them once."""
    kept = getattr(quota, "_top_ups_read", None)
    if kept is not None and student.pk in kept:
        return kept[student.pk]
    extra = course.top_ups.filter(student=student).aggregate(labs=Sum("extra_labs"), hours=Sum("extra_lab_hours"))
    found = extra["labs"] or 0, extra["hours"] or 0
    if quota is not None:
        quota._top_ups_read = {**(kept or {}), student.pk: found}
    return found


# Operations that may leave a powered-off lab powered on (``_powers_on`` decides).
POWERING_ON_KINDS = frozenset(
    {
        Operation.Kind.PROVISION,
        Operation.Kind.CLONE,
        Operation.Kind.RESET,
        Operation.Kind.REVERT,
        Operation.Kind.POWER,
        Operation.Kind.HAND_OVER,
    }
)


def _powers_on(operation: Operation) -> bool:
    """Will this operation power its lab on? Builds and resets end with every VM on; a power
    action "on", or "reset" (which powers on a VM that is off); a revert to a snapshot taken
    with VMs on."""
    if operation.kind == Operation.Kind.HAND_OVER:
        return True  # a pool lab handed over ends powered on
    if operation.kind == Operation.Kind.POWER:
        return operation.params.get("action") in ("on", "reset")
    if operation.kind == Operation.Kind.REVERT:
        snapshot = LabSnapshot.objects.filter(pk=operation.params.get("snapshot")).only("power_states").first()
        return snapshot is not None and LabVM.PowerState.ON in snapshot.power_states.values()
    return operation.kind in POWERING_ON_KINDS


def running_labs(course: Course) -> int:
    """Labs using a running slot: powered on, being provisioned (they end powered on), or with
    an operation queued or running that will power them on. The slot is taken at the click,
    not when the VMs come on, so two power-ons sent together cannot share one free slot."""
    active = _active_labs(course)
    using = active.filter(Q(running_since__isnull=False) | Q(state=Lab.State.PROVISIONING))
    pending = Operation.objects.filter(
        state__in=Operation.ACTIVE_STATES, kind__in=POWERING_ON_KINDS, lab__in=active.exclude(pk__in=using)
    ).only("lab_id", "kind", "params")
    return using.count() + len({operation.lab_id for operation in pending if _powers_on(operation)})


def student_hours(course: Course, student: AbstractBaseUser) -> float:
    """Hours the student's labs ran (a lab handed over from the warm pool counts from then:
    its hours in the pool are the course's, see ``labs.pools``)."""
    return sum(lab.hours_now() for lab in Lab.objects.filter(course=course, student=student))


def _refuse(what: str, limit: int, used: float, unit: str = "") -> None:
    shown = f"{used:g}{unit}"
    if limit == 0:
        raise QuotaExceeded(f"{what}: none are allowed in this course (you have {shown}).")
    raise QuotaExceeded(f"{what}: the limit is {limit}{unit} and {shown} are in use.")


def check_running_slot(quota: CourseQuota, course: Course, *, exclude: Lab | None = None) -> None:
    if quota.running_labs is None:
        return
    labs = running_labs(course) - (1 if exclude is not None and exclude.is_running else 0)
    if labs + 1 > quota.running_labs:
        _refuse("No more labs can run at once in this class", quota.running_labs, labs)


def check_hours(quota: CourseQuota, course: Course, student: AbstractBaseUser) -> None:
    if quota.lab_hours_per_student is None:
        return
    _, extra_hours = _top_ups(course, student, quota)
    limit = quota.lab_hours_per_student + extra_hours
    used = round(student_hours(course, student), 1)
    if used >= limit:
        _refuse("No lab hours are left", limit, used, " h")


def check_student_lab(
    quota: CourseQuota, course: Course, student: AbstractBaseUser, *, mine: int | None = None
) -> None:
    """One more lab for the student (a new one, or one handed over from the warm pool); ``mine``
    when the caller counted the student's active labs already."""
    if quota.labs_per_student is None:
        return
    extra_labs, _ = _top_ups(course, student, quota)
    limit = quota.labs_per_student + extra_labs
    if mine is None:
        mine = _active_labs(course).filter(student=student).count()
    if mine + 1 > limit:
        _refuse("You cannot have another lab in this course", limit, mine)


def check_new_lab(quota: CourseQuota, course: Course, student: AbstractBaseUser, version: TemplateVersion) -> None:
    """A new lab (start or clone): labs per student, vCPU, memory and storage of the class."""
    # The student's labs and the class's totals in one query.
    totals = _active_labs(course).aggregate(
        mine=Count("pk", filter=Q(student=student)), vcpu=Sum("vcpu"), memory=Sum("memory_mb"), disk=Sum("disk_gb")
    )
    check_student_lab(quota, course, student, mine=totals["mine"])
    _check_class_resources(quota, version, totals)


def check_pool_lab(quota: CourseQuota, course: Course, version: TemplateVersion) -> None:
    """One more lab in the course's warm pool: the pool's own line, then the class's resources
    (a pool lab holds vCPU, memory and storage as any lab; no student's place)."""
    totals = _active_labs(course).aggregate(
        pooled=Count("pk", filter=Q(student__isnull=True)),
        vcpu=Sum("vcpu"),
        memory=Sum("memory_mb"),
        disk=Sum("disk_gb"),
    )
    if quota.pool_labs is not None and totals["pooled"] + 1 > quota.pool_labs:
        _refuse("The class's warm pool cannot hold another lab", quota.pool_labs, totals["pooled"])
    _check_class_resources(quota, version, totals)


def _check_class_resources(quota: CourseQuota, version: TemplateVersion, totals: dict) -> None:
    """vCPU, memory and storage of all the class's labs (its pool's included) with one more."""
    vcpu, memory_gb, disk_gb = totals["vcpu"] or 0, (totals["memory"] or 0) / 1024, totals["disk"] or 0
    if quota.vcpu_total is not None and vcpu + version.vcpu_total > quota.vcpu_total:
        _refuse(
            f"The class's virtual CPUs would be exceeded (this lab needs {version.vcpu_total})",
            quota.vcpu_total,
            vcpu,
            " vCPU",
        )
    needed_gb = version.memory_mb_total / 1024
    if quota.memory_gb_total is not None and memory_gb + needed_gb > quota.memory_gb_total:
        _refuse(
            f"The class's memory would be exceeded (this lab needs {needed_gb:g} GB)",
            quota.memory_gb_total,
            round(memory_gb, 1),
            " GB",
        )
    if quota.storage_gb_total is not None and disk_gb + version.disk_gb_total > quota.storage_gb_total:
        _refuse(
            f"The class's datastore space would be exceeded (this lab needs {version.disk_gb_total:g} GB)",
            quota.storage_gb_total,
            round(disk_gb, 1),
            " GB",
        )


def check_snapshot(quota: CourseQuota, lab: Lab, *, taken: int | None = None) -> None:
    """``taken``: the lab's snapshots (the baseline aside) when the caller counted them already."""
    if quota.snapshots_per_lab is None:
        return
    if taken is None:
        taken = lab.snapshots.filter(is_baseline=False).count()
    if taken + 1 > quota.snapshots_per_lab:
        _refuse("This lab cannot keep another snapshot; delete one first", quota.snapshots_per_lab, taken)


def _snapshot_counts(labs: list[Lab]) -> list[int]:
    """Snapshots kept (the baseline aside) by each lab that has any, in one query: the class
    page reads this, and a query per lab made a class of 30 cost 30 more."""
    rows = (
        LabSnapshot.objects.filter(lab__in=labs, is_baseline=False)
        .values("lab")
        .annotate(kept=Count("pk"))
        .values_list("kept", flat=True)
    )
    return list(rows)


def course_usage(course: Course) -> Usage:
    """What the class uses now (registered with courses.usage by the labs app)."""
    active = list(_active_labs(course))
    per_student: dict[int, int] = {}
    for lab in active:
        if lab.student_id is None:
            continue  # a warm-pool lab holds no student's place
        per_student[lab.student_id] = per_student.get(lab.student_id, 0) + 1
    snapshot_counts = _snapshot_counts(active)
    hours: dict[int, float] = {}
    for lab in Lab.objects.filter(course=course, student__isnull=False):
        hours[lab.student_id] = hours.get(lab.student_id, 0) + lab.hours_now()
    return Usage(
        running_labs=running_labs(course),
        labs=len(active),
        max_labs_per_student=max(per_student.values(), default=0),
        max_snapshots_per_lab=max(snapshot_counts, default=0),
        vcpu=sum(lab.vcpu for lab in active),
        memory_gb=round(sum(lab.memory_mb for lab in active) / 1024, 1),
        storage_gb=round(sum(lab.disk_gb for lab in active), 1),
        max_lab_hours_per_student=round(max(hours.values(), default=0), 1),
        pool_labs=sum(1 for lab in active if lab.student_id is None),
    )


def student_usage(course: Course, student: AbstractBaseUser) -> StudentUsage:
    mine = list(_active_labs(course).filter(student=student))
    return StudentUsage(
        labs=len(mine),
        max_snapshots_per_lab=max(_snapshot_counts(mine), default=0),
        lab_hours=round(student_hours(course, student), 1),
    )
