"""Reads shared by the pages, the API and the consumers."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import PermissionDenied
from django.db.models import Count, Max, OuterRef, Prefetch, Q, QuerySet, Subquery, Sum
from django.utils import timezone

from core import roles
from core.compiled import CompiledQuery
from core.etags import fingerprint
from courses import bounds, guides, permissions
from courses import selectors as course_selectors
from courses.models import ClassSession, Course, LabTemplate, TemplateVersion, VCenterEndpoint
from labs import placement, template_sources, vsphere
from labs.endpoints import endpoint_client
from labs.models import CheckResult, ConsoleSession, Lab, LabSnapshot, LabVM, Operation, StepResult, WarmPool
from lti.models import CourseLink


def _taught_courses(user: AbstractBaseUser) -> QuerySet[Course]:
    """The courses whose labs an instructor sees (a subquery, so a lab never appears twice)."""
    if not roles.is_instructor(user):
        return Course.objects.none()
    return Course.objects.filter(instructors=user)


def operation_list(
    *, user: AbstractBaseUser, lab: int | None = None, state: str | None = None, kind: str | None = None
) -> QuerySet[Operation]:
    """Operations a user may see: admins all; everyone else those on the labs they may see (a
    student's own; an instructor's, the labs of the courses they teach: the people of
    ``labs.permissions.can_view_lab``) and those on no lab that they started. An instructor
    who started work on a lab of a course they no longer teach no longer sees it."""
    operations = Operation.objects.select_related("endpoint", "actor")
    if not roles.is_admin(user):
        if not user.is_authenticated:
            return operations.none()
        operations = operations.filter(
            Q(actor=user, lab__isnull=True) | Q(lab__student=user) | Q(lab__course__in=_taught_courses(user))
        )
    if lab is not None:
        operations = operations.filter(lab_id=lab)
    if state:
        operations = operations.filter(state=state)
    if kind:
        operations = operations.filter(kind=kind)
    return operations


# The reads of every poll (an operation, a lab's version) have their SQL built once per kind of
# person (core/compiled.py): the visibility rules' shapes depend only on the roles held, so a
# stand-in person holding them builds each query through the same selector as everywhere else.
_POLL_SHAPES = {
    "admin": frozenset({roles.Role.ADMIN}),
    "instructor": frozenset({roles.Role.INSTRUCTOR}),
    "other": frozenset(),
}


def _per_kind_of_person(build: Any, *kinds: type) -> dict[str, CompiledQuery]:
    """``build(stand_in_person, *values) -> QuerySet`` compiled once for each of _POLL_SHAPES."""

    def compiled(held: frozenset) -> CompiledQuery:
        def with_stand_in(user_id: int, *values: Any) -> QuerySet:
            stand_in = get_user_model()(pk=user_id)
            stand_in._nestlab_roles = held
            return build(stand_in, *values)

        return CompiledQuery(with_stand_in, int, *kinds)

    return {shape: compiled(held) for shape, held in _POLL_SHAPES.items()}


def _kind_of_person(user: AbstractBaseUser) -> str:
    return "admin" if roles.is_admin(user) else "instructor" if roles.is_instructor(user) else "other"


_OPERATION_POLLS = _per_kind_of_person(
    lambda user, operation_id: (
        operation_list(user=user).select_related(None).select_related("actor").filter(pk=operation_id)
    ),
    int,
)


def operation_for(*, user: AbstractBaseUser, operation_id: int) -> Operation | None:
    """The operation with this id if ``user`` may see it (``operation_list``'s rule), with its
    actor, or None. Every poll of an operation asks this (one compiled query); the answer
    names the endpoint by id only."""
    if not user.is_authenticated:
        return None
    return _OPERATION_POLLS[_kind_of_person(user)].first(user.pk, operation_id)


def reads_failure_detail(*, user: AbstractBaseUser, lab_id: int) -> bool:
    """``labs.permissions.sees_failure_detail`` by the lab's id, for answers built per lab: admins
    and the lab's course's instructors; a query for instructors only (a student never does)."""
    if roles.is_admin(user):
        return True
    if not roles.is_instructor(user):
        return False
    return Lab.objects.filter(pk=lab_id, course__in=_taught_courses(user)).exists()


def lab_list(
    *,
    user: AbstractBaseUser,
    course: int | None = None,
    state: str | None = None,
    include_deleted: bool = False,
) -> QuerySet[Lab]:
    """Labs a user may see: admins all, instructors those of the courses they teach, students
    their own (the same people as ``labs.permissions.can_view_lab``). Deleted labs are left out
    unless asked for, by ``state="deleted"`` or ``include_deleted``."""
    # Warm-pool labs are nobody's yet: the pool's own routes show them (``pool_status``).
    labs = Lab.objects.filter(student__isnull=False).select_related("course", "student")
    if not roles.is_admin(user):
        if not user.is_authenticated:
            return labs.none()
        labs = labs.filter(Q(student=user) | Q(course__in=_taught_courses(user)))
    if course is not None:
        labs = labs.filter(course_id=course)
    if state:
        return labs.filter(state=state)
    if not include_deleted:
        labs = labs.exclude(state=Lab.State.DELETED)
    return labs


def lab_detail(*, lab_id: int, user: AbstractBaseUser) -> Lab:
    """One lab (deleted ones too) with its VMs, networks and snapshots (with their authors),
    and ``active_operation``; raises ``Lab.DoesNotExist`` for one the user may not see."""
    lab = (
        lab_list(user=user, include_deleted=True)
        .select_related("template_version", "endpoint", "current_snapshot")
        .prefetch_related("vms", "networks", Prefetch("snapshots", LabSnapshot.objects.select_related("created_by")))
        .get(pk=lab_id)
    )
    lab.active_operation = lab_busy_with(lab)
    return lab


def lab_active_operations(labs: Iterable[Lab]) -> dict[int, Operation]:
    """The operation keeping each lab busy, by lab id: one running on it, or a clone being made
    from it (as the services' busy check sees it). One query whatever the number of labs."""
    ids = {lab.pk for lab in labs}
    if not ids:
        return {}
    active = (
        Operation.objects.filter(state__in=Operation.ACTIVE_STATES)
        .filter(Q(lab_id__in=sorted(ids)) | Q(kind=Operation.Kind.CLONE, params__source_lab__in=sorted(ids)))
        .select_related("actor")
        .order_by("created_at")
    )
    own: dict[int, Operation] = {}
    cloned_from: dict[int, Operation] = {}
    for operation in active:
        if operation.lab_id in ids:
            own[operation.lab_id] = operation
        source = (operation.params or {}).get("source_lab") if operation.kind == Operation.Kind.CLONE else None
        if source in ids:
            cloned_from.setdefault(source, operation)
    return {**cloned_from, **own}  # the lab's own operation wins over a clone made from it


LAB_COLUMNS = [field.attname for field in Lab._meta.concrete_fields]


def _lab_etag(lab: Lab, course_code: str, username: str, vms: tuple[int, ...], busy: Operation | None) -> str:
    # The lab's row (its seq moves with every snapshot change), the hours as shown, its VMs' count,
    # seq total, newest id and how many are on (a VM's seq moves with every change its answer shows:
    # labs.realtime.vm_changed, tested by tests/integration/labs/test_realtime_deltas.py), and the
    # running operation's row, heartbeat included.
    actor = getattr(getattr(busy, "actor", None), "username", None)
    return fingerprint(lab, round(lab.hours_now(), 2), course_code, username, vms, busy, actor)


def lab_detail_etag(lab: Lab) -> str:
    """The ETag of a lab's API detail, from ``lab_detail``'s lab (no query)."""
    vms = list(lab.vms.all())
    summary = (
        len(vms),
        sum(vm.seq for vm in vms),
        max((vm.pk for vm in vms), default=0),
        sum(1 for vm in vms if vm.power_state == LabVM.PowerState.ON),
    )
    username = lab.student.username if lab.student_id else ""
    return _lab_etag(lab, lab.course.code, username, summary, lab.active_operation)


def _lab_version_query(user: AbstractBaseUser, lab_id: int) -> QuerySet:
    vms = LabVM.objects.filter(lab=OuterRef("pk")).values("lab")
    return (
        lab_list(user=user, include_deleted=True)
        .filter(pk=lab_id)
        .annotate(
            vm_count=Subquery(vms.annotate(n=Count("pk")).values("n")),
            vm_seq=Subquery(vms.annotate(total=Sum("seq")).values("total")),
            vm_top=Subquery(vms.annotate(top=Max("pk")).values("top")),
            # Power too, not only seq: a browser revalidates its cached answer by itself, so a
            # change that missed its seq must still change the tag.
            vm_on=Subquery(vms.filter(power_state=LabVM.PowerState.ON).annotate(n=Count("pk")).values("n")),
        )
        .values_list(*LAB_COLUMNS, "course__code", "student__username", "vm_count", "vm_seq", "vm_top", "vm_on")
    )


_LAB_VERSIONS = _per_kind_of_person(_lab_version_query, int)


def lab_detail_version(*, lab_id: int, user: AbstractBaseUser) -> str | None:
    """The same ETag as ``lab_detail_etag`` without reading the detail: three small queries, for a
    client that sent one back; None for a lab the user may not see."""
    if not user.is_authenticated:
        return None
    rows = _LAB_VERSIONS[_kind_of_person(user)].rows(user.pk, int(lab_id))
    if not rows:
        return None
    row = rows[0]
    lab = Lab(**dict(zip(LAB_COLUMNS, row[: len(LAB_COLUMNS)], strict=True)))
    course_code, username, *counts = row[len(LAB_COLUMNS) :]
    summary = tuple(value or 0 for value in counts)
    return _lab_etag(lab, course_code, username, summary, lab_active_operations([lab]).get(lab.pk))


def lab_busy_with(lab: Lab) -> Operation | None:
    """The operation keeping one lab busy (see ``lab_active_operations``), or None: what the
    services' one-operation-per-lab check, the lab page and the live full state all ask."""
    operation = lab_active_operations([lab]).get(lab.pk)
    if operation is not None and operation.lab_id == lab.pk:
        operation.lab = lab  # the caller's lab: its permission checks must not read it again
    return operation


# A lab build's time when none of the template's was measured yet: the demo lab takes two to
# five minutes on a real vCenter, and a late lab is worse than an early one.
DEFAULT_BUILD_TIME = timedelta(minutes=10)
BUILD_TIME_SAMPLE = 50  # the most recent builds measured
BUILD_TIME_PERCENTILE = 0.9


def template_build_time(version: TemplateVersion) -> timedelta:
    """How long a lab of this template version takes from the click to ready: the 90th percentile
    of its most recent successful builds (those of the template's other versions when this one has
    none; ``DEFAULT_BUILD_TIME`` when the template has none).

    Measured from the row's creation, not its start: a lab built with its whole class waits in the
    queue and for vCenter capacity (labs.capacity), and that wait is part of when it is ready.
    """
    done = Operation.objects.filter(
        kind=Operation.Kind.PROVISION, state=Operation.State.SUCCEEDED, finished_at__isnull=False
    ).order_by("-finished_at")
    for builds in (
        done.filter(lab__template_version=version),
        done.filter(lab__template_version__template_id=version.template_id),
    ):
        recent = builds.values_list("created_at", "finished_at")[:BUILD_TIME_SAMPLE]
        times = sorted(finished - created for created, finished in recent)
        if times:
            return times[min(len(times) - 1, math.ceil(BUILD_TIME_PERCENTILE * len(times)) - 1)]
    return DEFAULT_BUILD_TIME


def snapshot_tree(lab: Lab) -> list[LabSnapshot]:
    """The lab's snapshots as a tree: the roots, oldest first, each with ``tree_children``.

    A snapshot whose parent was deleted becomes a root. Reads ``lab.snapshots.all()``, so a
    prefetch (``lab_detail``) makes it free.
    """
    snapshots = list(lab.snapshots.all())
    by_id = {snapshot.pk: snapshot for snapshot in snapshots}
    roots = []
    for snapshot in snapshots:
        snapshot.tree_children = []
    for snapshot in snapshots:
        parent = by_id.get(snapshot.parent_id)
        (parent.tree_children if parent is not None else roots).append(snapshot)
    return roots


PICKER_WORDS = "Only instructors and admins can browse vCenter."


def _require_picker(user: AbstractBaseUser) -> None:
    if not permissions.can_create_templates(user):
        raise PermissionDenied(PICKER_WORDS)


def endpoint_inventory(
    *, endpoint: VCenterEndpoint, user: AbstractBaseUser, path: str | None = None, search: str = ""
) -> list[vsphere.InventoryItem]:
    """The picker: children of a folder (default: the datacenter's VM folder), or with
    ``search`` the VMs and templates whose name contains it, anywhere below that folder."""
    _require_picker(user)
    root = path or f"/{endpoint.datacenter}/vm"
    client = endpoint_client(endpoint)
    if search:
        # Ask for more than is shown: lab VMs found by the search are dropped below.
        items = client.search_vms(root, search, recursive=True, limit=1000)
        return template_sources.pickable(endpoint, items)[:200]
    # Never Nestlab's lab folder or lab VMs; only the admin's source folders where set.
    return template_sources.pickable(endpoint, client.list_children(root))


def endpoint_vm(*, endpoint: VCenterEndpoint, user: AbstractBaseUser, vm: str) -> vsphere.VMInfo:
    """Details of one VM for the picker (CPUs, memory, NICs, nested HV); a VM that cannot be a
    template source (a lab VM, one outside the endpoint's source folders) is refused in words."""
    _require_picker(user)
    info = endpoint_client(endpoint).vm_info(vm)
    if refusal := template_sources.vm_refusal(endpoint, info):
        raise PermissionDenied(f"{info.name} {refusal}")
    return info


def template_prepare_plan(*, template: LabTemplate, actor: AbstractBaseUser) -> list[dict[str, Any]]:
    """What preparing the template's source VMs would change, read from vCenter now, for the
    confirmation page: one row per VM with its ``changes`` in words (empty when ready) or the
    ``problem`` that keeps Nestlab from touching it."""
    if not permissions.can_edit_template(actor, template):
        raise PermissionDenied("Only the template's owners and admins can prepare its VMs.")
    client = endpoint_client(template.endpoint)
    rows = []
    for vm in template.vms.order_by("boot_order", "role"):
        row: dict[str, Any] = {"role": vm.role, "name": vm.source_name, "changes": [], "problem": ""}
        try:
            info = client.vm_info(vm.source_moref)
        except vsphere.NotFound:
            row["problem"] = "It is no longer in vCenter: pick it again or remove it."
        else:
            refusal = template_sources.vm_refusal(template.endpoint, info)
            if refusal:
                row["problem"] = f"{info.name} {refusal}"
            else:
                row["changes"] = template_sources.planned_changes(vm.role, vm.nested_hv_required, info)
        rows.append(row)
    return rows


def console_session_list(*, user: AbstractBaseUser) -> QuerySet[ConsoleSession]:
    """Console sessions a person may see: admins all; everyone else their own, and an
    instructor those on the labs of the courses they teach."""
    sessions = ConsoleSession.objects.select_related("user", "lab")
    if roles.is_admin(user):
        return sessions
    if not user.is_authenticated:
        return sessions.none()
    return sessions.filter(Q(user=user) | Q(lab__course__in=_taught_courses(user)))


def class_summaries(course_ids) -> dict[int, dict[str, int]]:
    """Per course: its active ``labs``, how many are ``running``, ``busy`` (an operation under
    way) and in ``errors``; two queries for any number of courses (the pages once asked per course
    from a template tag)."""
    summaries = {course_id: {"labs": 0, "running": 0, "busy": 0, "errors": 0} for course_id in course_ids}
    rows = (
        Lab.objects.filter(course_id__in=summaries, state__in=Lab.ACTIVE_STATES, student__isnull=False)
        .values("course_id")
        .annotate(
            labs=Count("pk"),
            running=Count("pk", filter=Q(running_since__isnull=False)),
            errors=Count("pk", filter=Q(state=Lab.State.ERROR)),
        )
    )
    for row in rows:
        summaries[row["course_id"]].update(labs=row["labs"], running=row["running"], errors=row["errors"])
    busy = (
        Operation.objects.filter(lab__course_id__in=summaries, state__in=Operation.ACTIVE_STATES)
        .values("lab__course_id")
        .annotate(busy=Count("lab", distinct=True))
    )
    for row in busy:
        summaries[row["lab__course_id"]]["busy"] = row["busy"]
    return summaries


# Lab guides (issue 15): what a student sees of their guide, scores, the class grid.

STEP_DONE, STEP_FAILED, STEP_UNTRIED = "done", "failed", "untried"
STEP_STATES = (STEP_DONE, STEP_FAILED, STEP_UNTRIED)


def _step_states(guide: dict[str, Any], results: list[CheckResult], steps_done: set[str]) -> dict[str, str]:
    failed_steps = {result.step_key for result in results if not result.passed}
    return {
        step["key"]: STEP_DONE
        if step["key"] in steps_done
        else STEP_FAILED
        if step["key"] in failed_steps
        else STEP_UNTRIED
        for step in guide.get("steps", [])
    }


def lab_score(lab: Lab) -> tuple[int, int]:
    """(points earned, points possible) on the lab's guide."""
    guide = lab.template_version.guide or {}
    earned = StepResult.objects.filter(lab=lab, completed_at__isnull=False).aggregate(total=Sum("points"))["total"]
    return earned or 0, guides.guide_points(guide)


def _lab_guide_rows(lab: Lab) -> tuple[list[CheckResult], dict[str, int]]:
    """The lab's check results (oldest first) and its completed steps' points by step key: the
    one read of each that a lab's progress and its guide are made from."""
    results = list(CheckResult.objects.filter(lab=lab).order_by("id"))
    completed = dict(StepResult.objects.filter(lab=lab, completed_at__isnull=False).values_list("step_key", "points"))
    return results, completed


def _progress(lab: Lab, results: list[CheckResult], completed: dict[str, int]) -> dict[str, Any]:
    guide = lab.template_version.guide or {}
    return {
        "lab": lab.pk,
        "course": lab.course_id,
        "student": lab.student_id,
        "score": sum(completed.values()),
        "max_score": guides.guide_points(guide),
        "steps": _step_states(guide, results, set(completed)),
        "checks": {
            result.check_key: {
                "step": result.step_key,
                "passed": result.passed,
                "words": result.words,
                "checked_at": result.checked_at.isoformat(),
            }
            for result in results
        },
    }


def lab_guide_progress(lab: Lab) -> dict[str, Any]:
    """A lab's progress as the live push and the API give it: score, each step's state, each
    check's last result (words and time; the output only in ``lab_guide``)."""
    return _progress(lab, *_lab_guide_rows(lab))


def lab_guide(lab: Lab) -> dict[str, Any]:
    """A lab's guide for its page and the API: the steps as a student may see them (their lab's
    values filled in; no answer, command or pattern), where they are, what is done, each check's
    last result with its output, the score. The caller has checked the person may see the lab."""
    guide = lab.template_version.guide or {}
    results, completed = _lab_guide_rows(lab)
    progress = _progress(lab, results, completed)
    last_results = {result.check_key: result for result in results}
    steps = guides.student_guide(guide, lab.variables)
    for number, step in enumerate(steps, start=1):
        step["number"] = number
        step["state"] = progress["steps"].get(step["key"], STEP_UNTRIED)
        for check in step["checks"]:
            result = last_results.get(check["key"])
            check["result"] = (
                None
                if result is None
                else {
                    "passed": result.passed,
                    "words": result.words,
                    "output": result.output,
                    "answer": result.answer,
                    "checked_at": result.checked_at.isoformat(),
                }
            )
    return {
        "steps": steps,
        "position": min(lab.guide_position, max(1, len(steps))),
        "score": progress["score"],
        "max_score": progress["max_score"],
    }


def course_student_score(*, course: Course, student: AbstractBaseUser) -> tuple[int, int]:
    """(points, points possible) of a student in a course: their best lab's points (a clone to try
    something out does not lower them) out of the course's guide's."""
    maximum = guides.guide_points(course.template_version.guide or {}) if course.template_version_id else 0
    labs = Lab.objects.filter(course=course, student=student).select_related("template_version")
    earned = max((lab_score(lab)[0] for lab in labs), default=0)
    return min(earned, maximum), maximum


def course_guide_grid(*, course: Course, user: AbstractBaseUser) -> dict[str, Any]:
    """The instructor's progress grid: the course's guide steps as columns, one row per enrolled
    student (their best lab), each cell the step's state. Instructors of the course and admins."""
    if not permissions.can_manage_course(user, course):
        raise PermissionDenied("Only this course's instructors can see its progress.")
    guide = (course.template_version.guide or {}) if course.template_version_id else {}
    steps = [
        {"key": step["key"], "number": number, "title": step["title"], "points": step["points"]}
        for number, step in enumerate(guide.get("steps", []), start=1)
    ]
    # Deleted labs count too: points earned stay earned (the LMS has them already), as in
    # course_student_score.
    labs = list(
        Lab.objects.filter(course=course)
        .select_related("student", "template_version")
        .order_by("student__username", "number")
    )
    lab_ids = [lab.pk for lab in labs]
    results_by_lab: dict[int, list[CheckResult]] = {}
    for result in CheckResult.objects.filter(lab_id__in=lab_ids):
        results_by_lab.setdefault(result.lab_id, []).append(result)
    done_by_lab: dict[int, dict[str, int]] = {}
    for lab_id, step_key, points in StepResult.objects.filter(
        lab_id__in=lab_ids, completed_at__isnull=False
    ).values_list("lab_id", "step_key", "points"):
        done_by_lab.setdefault(lab_id, {})[step_key] = points
    best: dict[int, tuple[int, Lab]] = {}
    for lab in labs:
        score = sum(done_by_lab.get(lab.pk, {}).values())
        if lab.student_id not in best or score > best[lab.student_id][0]:
            best[lab.student_id] = (score, lab)
    students = {
        enrollment.student_id: enrollment.student
        for enrollment in course.enrollments.select_related("student").order_by("student__username")
    }
    rows = []
    for student_id, student in students.items():
        score, lab = best.get(student_id, (0, None))
        states = (
            _step_states(guide, results_by_lab.get(lab.pk, []), set(done_by_lab.get(lab.pk, {})))
            if lab is not None
            else {}
        )
        rows.append(
            {
                "student": student,
                "lab": lab,
                "score": score,
                "cells": [states.get(step["key"], STEP_UNTRIED) for step in steps],
            }
        )
    return {"steps": steps, "rows": rows, "max_score": guides.guide_points(guide)}


def course_has_grade_book(course: Course) -> bool:
    """Whether an LMS linked to the course offers a grade book (scores can be sent to it)."""
    return CourseLink.objects.filter(course=course).exclude(lineitems_url="").exists()


# Warm pools (issue 13): labs built ahead for a course and given to no one yet (labs.pools).

# How often beat runs the pool and session ticks: a window that opens just after one is seen up to
# this late (labs.sessions.TICK_PERIOD is the same minute).
POOL_TICK_PERIOD = timedelta(minutes=1)


def session_lead_time(session: ClassSession, build_time: timedelta) -> timedelta:
    """How long before a meeting's start its students' labs begin to be made ready
    (labs.sessions): the instructor's lead, the measured build time and the tick's period."""
    return timedelta(minutes=session.ready_minutes_before) + build_time + POOL_TICK_PERIOD


@dataclass(frozen=True)
class PoolWindow:
    """Where a course stands against its class sessions, for its warm pool: ``filling`` from one
    build before the sessions' own window (so pool labs are ready when the session tick hands them
    out) to the meeting's end; ``warm`` (pool labs powered on, so a take is instant) from the
    session tick's window to the end."""

    filling: bool = False
    warm: bool = False


def pool_window(course: Course, now: datetime | None = None) -> PoolWindow:
    now = now or timezone.now()
    version = course.template_version
    sessions = list(course.sessions.all())
    if version is None or not sessions:
        return PoolWindow()
    build = template_build_time(version)
    filling = warm = False
    for session in sessions:
        lead = session_lead_time(session, build)
        until = now + lead + build + POOL_TICK_PERIOD
        for occurrence in course_selectors.session_occurrences(sessions=[session], after=now, until=until):
            filling = True
            warm = warm or occurrence.starts_at - lead <= now
    return PoolWindow(filling=filling, warm=warm)


def pool_labs(course: Course) -> QuerySet[Lab]:
    """The course's warm-pool labs that hold vCenter resources (any version; deleting ones too)."""
    return Lab.objects.filter(course=course, student__isnull=True, state__in=Lab.ACTIVE_STATES)


def students_without_lab(course: Course) -> int:
    """Enrolled students who have no lab in the course (what a schedule-sized pool is for)."""
    with_lab = Lab.objects.filter(course=course, state__in=Lab.ACTIVE_STATES, student__isnull=False)
    return course.enrollments.exclude(student__in=with_lab.values("student")).count()


def pool_target(course: Course, pool: WarmPool | None, window: PoolWindow) -> int:
    """How many labs the course's pool should hold now, before its quota has its say: none for a
    course that cannot start labs; the instructor's number, and with schedule sizing one for
    every enrolled student without a lab while a session is near or on."""
    if pool is None or course.state != Course.State.OPEN or course.has_ended:
        return 0
    if course.template_version is None or not course.template_version.is_published:
        return 0
    target = pool.size
    if pool.sizing == WarmPool.Sizing.SCHEDULE and window.filling:
        target += students_without_lab(course)
    return min(target, bounds.MAX_POOL_LABS)  # a pool's bound holds with the students added too


@dataclass(frozen=True)
class PoolStatus:
    """A course's warm pool as the class page and the API show it."""

    size: int
    sizing: str
    target: int
    cap: int | None
    ready: int
    building: int
    given_today: int
    words: str


def pool_status(course_id: int, now: datetime | None = None) -> PoolStatus:
    now = now or timezone.now()
    course = Course.objects.select_related("template_version", "quota").get(pk=course_id)
    pool = WarmPool.objects.filter(course=course).first()
    target = pool_target(course, pool, pool_window(course, now))
    current = pool_labs(course).filter(template_version=course.template_version)
    held = current.filter(placement.in_maintenance_q()).exclude(state=Lab.State.DELETING).count()
    current = current.exclude(placement.in_maintenance_q())
    ready = current.filter(state=Lab.State.READY).count()
    building = current.filter(state=Lab.State.PROVISIONING).count()
    midnight = timezone.localtime(now).replace(hour=0, minute=0, second=0, microsecond=0)
    given_today = Lab.objects.filter(course=course, given_at__gte=midnight).count()
    quota = getattr(course, "quota", None)
    cap = quota.pool_labs if quota is not None else None
    if pool is None or (target == 0 and pool.size == 0):
        words = "No warm pool: every Start builds a new lab."
    else:
        words = f"{ready} ready and {building} being built of {target} wanted"
        if cap is not None and cap < target:
            words += f" (the quota caps the pool at {cap})"
        words += f"; {given_today} given out today."
        if held:
            words += f" {held} more wait on a vCenter in maintenance, and count again when it ends."
    return PoolStatus(
        size=pool.size if pool else 0,
        sizing=pool.sizing if pool else WarmPool.Sizing.FIXED,
        target=target,
        cap=cap,
        ready=ready,
        building=building,
        given_today=given_today,
        words=words,
    )


def endpoint_load_list() -> list[placement.EndpointLoad]:
    """Every endpoint's load now (labs building and running, VMs, memory, storage, clone slots,
    maintenance, reachability): the admins' page and the API read the same figures placement uses."""
    return placement.endpoint_loads()
