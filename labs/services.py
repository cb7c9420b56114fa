"""Every write of the labs app: start and cancel operations on vCenter."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Count, F, Max, Q
from django.utils import timezone

from core import audit as portal_audit
from core import roles
from core.errors import Conflict, QuotaExceeded
from core.validation import save_valid
from courses import bounds, guides
from courses import permissions as course_permissions
from courses import services as course_services
from courses.models import Course, CourseQuota, LabTemplate, TemplateVersion, VCenterEndpoint
from labs import audit, dispatch, permissions, placement, quotas, realtime, selectors
from labs.metering import lab_power_changed, lab_vms_vanished
from labs.metering import select_lab_for_update as _select_lab_for_update
from labs.models import CheckResult, Lab, LabNetwork, LabRun, LabSnapshot, LabVM, Operation, StepResult

logger = logging.getLogger(__name__)


def _enqueue_after_commit(operation_id: int, task_id: str) -> None:
    """Send the "go" message; when the broker is down, say so in the log and answer anyway.

    The row is committed already, so the click did happen: the reaper sends an operation
    still queued after ``labs.reaper.QUEUED_GRACE`` again, and the person sees it queued.
    """
    try:
        dispatch.send_operation(operation_id, task_id=task_id)
    except Exception:
        logger.exception(
            "Operation #%s is saved but could not be handed to a worker (is Redis down?); "
            "the reaper sends it again once it has been queued for 5 minutes.",
            operation_id,
        )


OPERATION_TARGETS = ["actor", "endpoint", "lab", "template_version"]


def operation_start(
    *,
    kind: str,
    endpoint: VCenterEndpoint,
    actor: AbstractBaseUser | None,
    params: dict[str, Any] | None = None,
    **targets: Any,
) -> Operation:
    """Record an operation and hand it to a worker once the caller's transaction commits.

    Callers check permission and quota first, inside the same transaction, so a refused
    request leaves no row and an accepted one is never lost between the row and the queue.
    """
    # No savepoint of its own: a failure here fails the caller's whole transaction, which is
    # what every caller wants (the checks it made and the row go together).
    with transaction.atomic(savepoint=False):
        operation = Operation(
            kind=kind,
            endpoint=endpoint,
            actor=actor if actor is not None and actor.is_authenticated else None,
            params=params or {},
            celery_task_id=str(uuid.uuid4()),
            **targets,
        )
        # A new row's progress is 0 (its one constraint holds), and its related rows are ones the
        # caller holds: the queries that would test and look them up again are skipped.
        save_valid(operation, trusted=OPERATION_TARGETS, validate_constraints=False)
        audit.operation_accepted(operation)
        realtime.operation_changed(operation)  # open pages see it queued (pushed on commit)
        transaction.on_commit(lambda: _enqueue_after_commit(operation.pk, operation.celery_task_id), robust=True)
    return operation


def operation_cancel(*, operation: Operation, actor: AbstractBaseUser) -> Operation:
    """Cancel a queued operation at once; ask a running one to stop after its current step.

    A queued provision or clone never made anything: the lab it was for is deleted with it,
    so it no longer holds its VLANs, a running slot or a place in the student's labs.
    """
    if not permissions.can_cancel_operation(actor, operation):
        if operation.lab_id is not None and operation.actor_id == actor.pk:
            require_act(actor, operation.lab)  # says why in the lab's words
        raise PermissionDenied("Only the person who started an operation, or an admin, can cancel it.")
    discarded = None
    with transaction.atomic():
        locked = Operation.objects.select_for_update().get(pk=operation.pk)
        if locked.is_final:
            raise ValidationError(f"The operation already ended ({locked.get_state_display().lower()}).")
        if locked.state == Operation.State.QUEUED:
            locked.state = Operation.State.CANCELLED
            locked.error = "Cancelled before it started."
            locked.finished_at = timezone.now()
            discarded = _discard_unbuilt_lab(locked)
        locked.cancel_requested = True
        locked.seq += 1
        locked.save(update_fields=["state", "error", "finished_at", "cancel_requested", "seq"])
        if locked.is_final:
            audit.operation_ended(locked, cancelled_by=actor)
        else:
            audit.operation_cancel_requested(locked, actor=actor)
        realtime.operation_changed(locked)
        if discarded is not None:
            realtime.lab_changed(discarded)
        if locked.state == Operation.State.CANCELLED:
            # A build waiting its turn leaves the line; if it was admitted, the next goes.
            transaction.on_commit(lambda: dispatch.build_withdrawn(locked), robust=True)
    return locked


def _discard_unbuilt_lab(operation: Operation) -> Lab | None:
    """Delete the lab of a provision or clone cancelled before it started (nothing in vCenter
    yet): its VLANs go back to the range. None when the operation built nothing new."""
    if operation.kind not in (Operation.Kind.PROVISION, Operation.Kind.CLONE) or operation.lab_id is None:
        return None
    lab = _select_lab_for_update(operation.lab)
    built = lab.folder_moref or lab.pool_moref or lab.vms.exclude(moref="").exists()
    if lab.state != Lab.State.PROVISIONING or built:
        return None
    LabNetwork.objects.filter(lab=lab).update(released=True)
    lab.state = Lab.State.DELETED
    lab.deleted_at = timezone.now()
    lab.save(update_fields=["state", "deleted_at"])
    return lab


def endpoint_check_start(*, endpoint: VCenterEndpoint, actor: AbstractBaseUser) -> Operation:
    """Check that a vCenter answers, the login works and the placement exists (admins only)."""
    if not roles.is_admin(actor):
        raise PermissionDenied("Only admins can check vCenter connections.")
    return operation_start(kind=Operation.Kind.ENDPOINT_CHECK, endpoint=endpoint, actor=actor)


def template_publish(*, template: LabTemplate, actor: AbstractBaseUser, unchanged_again: bool = False) -> Operation:
    """Freeze the template's draft into a new version and check and snapshot it in vCenter.

    The version stays "publishing" until the operation ends; only then can courses use it. A
    draft unchanged since its last version is refused unless ``unchanged_again`` (the demo, whose
    simulator forgot the last version's snapshots when it restarted).
    """
    with transaction.atomic():
        version = course_services.template_version_create(
            template=template, actor=actor, unchanged_again=unchanged_again
        )
        return operation_start(
            kind=Operation.Kind.PUBLISH,
            endpoint=template.endpoint,
            actor=actor,
            params={"template": template.pk, "version": version.number},
            template_version=version,
        )


def template_prepare(*, template: LabTemplate, actor: AbstractBaseUser) -> Operation:
    """Power off the template's running source VMs and turn on nested hardware virtualization where
    the template needs it, as an operation (``labs.jobs.prepare``); one at a time per template,
    never while it is being published."""
    _require_template_editor(actor, template)
    with transaction.atomic():
        LabTemplate.objects.select_for_update().get(pk=template.pk)
        if not template.vms.exists():
            raise ValidationError(f"{template.name} has no VMs to prepare: add them from vCenter first.")
        if template.versions.filter(state=TemplateVersion.State.PUBLISHING).exists():
            raise Conflict(f"{template.name} is being published: wait for that to finish.")
        running = Operation.objects.filter(
            kind=Operation.Kind.PREPARE_SOURCES,
            params__template=template.pk,
            state__in=Operation.ACTIVE_STATES,
        ).first()
        if running is not None:
            raise Conflict(f"The VMs of {template.name} are being prepared already (#{running.pk}).")
        return operation_start(
            kind=Operation.Kind.PREPARE_SOURCES,
            endpoint=template.endpoint,
            actor=actor,
            params={"template": template.pk},
        )


def _require_template_editor(actor: AbstractBaseUser, template: LabTemplate) -> None:
    if not course_permissions.can_edit_template(actor, template):
        raise PermissionDenied("Only the template's owners and admins can prepare its VMs.")


# Labs


def _refuse_if_busy(lab: Lab) -> None:
    running = selectors.lab_busy_with(lab)
    if running is not None:
        raise Conflict(
            f"{lab.name} is busy: {running.get_kind_display().lower()} #{running.pk} is {running.state}. "
            "Wait for it to finish."
        )


def lock_lab(lab: Lab) -> Lab:
    """Lock the lab row for this transaction and refuse when an operation already runs on it.

    Callers that check the quota lock it before calling this (see ``_select_lab_for_update``).
    """
    locked = _select_lab_for_update(lab, power_counts=True)  # an action changes no VM here
    _refuse_if_busy(locked)
    if locked.state in (Lab.State.DELETING, Lab.State.DELETED, Lab.State.EXPIRED):
        raise ValidationError(f"{locked.name} is {locked.get_state_display().lower()}.")
    return locked


def require_act(actor: AbstractBaseUser, lab: Lab) -> None:
    """The rule of a lab's own buttons (its student, the course's instructors, admins), refused in words."""
    if not permissions.can_act_on_lab(actor, lab):
        if permissions.is_removed_owner(actor, lab):
            raise PermissionDenied(
                f"You are no longer enrolled in {lab.course.code}: you can see {lab.name} but not use it."
            )
        raise PermissionDenied("This is not your lab.")


def _refuse_power_on_after_course(actor: AbstractBaseUser, lab: Lab) -> None:
    if not permissions.can_power_on_lab(actor, lab):
        raise PermissionDenied(
            f"{lab.course.title} has ended: its labs can no longer be powered on. "
            "You can still see your lab and its snapshots; ask your instructor if you need it running."
        )


def lab_operation(lab: Lab, kind: str, actor: AbstractBaseUser, params: dict[str, Any] | None = None) -> Operation:
    operation = operation_start(kind=kind, endpoint=lab.endpoint, actor=actor, params=params or {}, lab=lab)
    # The student used their lab (what lab_touch records): every caller has checked that they may
    # act on it (require_act, or an enrolled student's own start), so it is written with the push
    # below, in one statement, without asking again.
    used_by_student = actor is not None and actor.pk == lab.student_id
    if actor is not None and not used_by_student:
        # Someone else (an instructor, an admin) acts on the student's lab: the student is told
        # who, on any page they have open and on their next one (issue 10: a reset by an
        # instructor did not say who did it).
        who = actor.get_full_name() or actor.get_username()
        realtime.notify_user(
            lab.student_id,
            f"{who} started “{operation.get_kind_display().lower()}” on your lab {lab.name}.",
            level="info",
        )
    realtime.lab_changed(lab, activity_at=timezone.now() if used_by_student else None)
    return operation


def _allocate_vlans(lab: Lab, names: list[str]) -> None:
    """Give each lab network the lowest free VLAN of the endpoint's range.

    The endpoint row is locked so that two labs never pick the same VLAN; the partial
    unique constraint on LabNetwork is the last line of defence.
    """
    endpoint = VCenterEndpoint.objects.select_for_update().get(pk=lab.endpoint_id)
    taken = set(LabNetwork.objects.filter(endpoint=endpoint, released=False).values_list("vlan_id", flat=True))
    free = (vlan for vlan in range(endpoint.vlan_min, endpoint.vlan_max + 1) if vlan not in taken)
    networks = []
    for name in names:
        vlan = next(free, None)
        if vlan is None:
            # Not the vCenter's name nor its range: a student's Start gets these words (the log has them).
            logger.warning(
                "%s has no free VLAN left in %s-%s for lab %s",
                endpoint.name,
                endpoint.vlan_min,
                endpoint.vlan_max,
                lab.pk,
            )
            raise ValidationError(
                "The lab servers have no free network left for a new lab; "
                "an admin must widen the vCenter's VLAN range or delete old labs."
            )
        networks.append(
            LabNetwork(lab=lab, endpoint=endpoint, name=name, vlan_id=vlan, port_group=f"nestlab-lab{lab.pk}-{name}")
        )
    LabNetwork.objects.bulk_create(networks)
    lab.endpoint = endpoint  # the operation's endpoint: read once


def _new_lab(*, course: Course, student: AbstractBaseUser | None, source_lab: Lab | None = None) -> Lab:
    """A lab of the course's version, or for a clone of its source's: the clone copies the
    source's VMs, so it has their roles and sizes (and endpoint) whatever the course uses now.
    Without a student: a warm-pool lab (``labs.pools``)."""
    version = source_lab.template_version if source_lab is not None else course.template_version
    number = (
        Lab.objects.filter(course=course, student=student).order_by("-number").values_list("number", flat=True).first()
        or 0
    ) + 1
    lab = Lab.objects.create(
        course=course,
        student=student,
        number=number,
        template_version=version,
        endpoint=(
            source_lab.endpoint if source_lab is not None else placement.lab_endpoint(course=course, version=version)
        ),
        source_lab=source_lab,
        vcpu=version.vcpu_total,
        memory_mb=version.memory_mb_total,
        disk_gb=version.disk_gb_total,
        # A clone's VMs are copies of its source's, guestinfo included: it keeps the source's values.
        variables=dict(source_lab.variables) if source_lab is not None else guides.variables_draw(version.guide),
    )
    LabVM.objects.bulk_create(
        LabVM(
            lab=lab,
            role=vm["role"],
            name=f"{lab.name}-{vm['role']}",
            boot_order=vm["boot_order"],
            num_cpu=vm["num_cpu"],
            memory_mb=vm["memory_mb"],
        )
        for vm in version.spec["vms"]
    )
    _allocate_vlans(lab, [network["name"] for network in version.spec["networks"]])
    return lab


def lab_build_move(*, lab: Lab, failed: Operation, reason: str) -> Operation | None:
    """Build a lab on another of its course's endpoints, after its build found its own
    unreachable before anything was made there (the caller checked): nothing is lost, the
    student's lab only changes vCenter. None when no other endpoint can take it now."""
    with transaction.atomic():
        lab = _select_lab_for_update(lab)
        try:
            endpoint = placement.lab_endpoint(course=lab.course, version=lab.template_version)
        except ValidationError:
            return None
        if endpoint.pk == lab.endpoint_id:
            return None
        moved_from = lab.endpoint
        # Its VLANs were never made on the unreachable endpoint: give them back there.
        LabNetwork.objects.filter(lab=lab).delete()
        lab.endpoint = endpoint
        lab.save(update_fields=["endpoint"])
        _allocate_vlans(lab, [network["name"] for network in lab.template_version.spec["networks"]])
        operation = lab_operation(lab, Operation.Kind.PROVISION, failed.actor, {"moved_from": moved_from.pk})
    logger.info("Lab %s moved from %s (%s) to %s", lab.pk, moved_from.name, reason, endpoint.name)
    realtime.notify_user(
        lab.student_id,
        # Not vCenter's words (its host and port) nor the vCenters' names: the operation keeps them for staff.
        f"Your lab {lab.name} is being built on another vCenter: the first could not be reached. Nothing is lost.",
        level="info",
    )
    return operation


class AlreadyHasLab(Exception):
    """The student has a lab already (for class provisioning, which gives each one lab)."""


def _check_course_runs_labs(course: Course) -> None:
    if course.state != Course.State.OPEN:
        raise ValidationError(f"{course.title} is {course.get_state_display().lower()}: labs cannot start.")
    if course.has_ended:
        raise ValidationError(f"{course.title} ended on {course.ends_on:%d %B %Y}: labs cannot start.")
    if course.template_version is None or not course.template_version.is_published:
        raise ValidationError(f"{course.title} has no published template version yet.")


def course_start_refusal(course: Course) -> str:
    """Why a student cannot start a lab in the course now, in words ("" when they can): the rule
    ``lab_start`` applies, for pages that offer the button (they must not restate it)."""
    try:
        _check_course_runs_labs(course)
    except ValidationError as refusal:
        return " ".join(refusal.messages)
    return ""


def lab_start(
    *, course: Course, student: AbstractBaseUser, actor: AbstractBaseUser, only_if_none: bool = False
) -> Operation:
    """Start a student's lab: checked against the quota at the click, built by a worker.

    Students start their own; the course's instructors and admins may start one for any
    enrolled student (that is what "provision the class" does for each).
    """
    own = actor.pk == student.pk
    if own and not permissions.can_start_own_lab(actor, course):
        if roles.is_admin(actor) or roles.is_instructor(actor):
            raise PermissionDenied("Start a lab for a student of this course: staff have no labs of their own.")
        raise PermissionDenied("You are not enrolled in this course.")
    if not own and not permissions.can_provision_class(actor, course):
        raise PermissionDenied("Only this course's instructors can start labs for students.")
    return _lab_start_checked(course=course, student=student, actor=actor, only_if_none=only_if_none, enrolled=own)


def _lab_start_checked(
    *,
    course: Course,
    student: AbstractBaseUser,
    actor: AbstractBaseUser | None,
    only_if_none: bool,
    params: dict[str, Any] | None = None,
    enrolled: bool = False,
) -> Operation:
    """The start itself, once the actor's right to it is checked (or the portal starts it);
    ``enrolled`` when that check found the student enrolled already."""
    if not enrolled and not course.enrollments.filter(student=student).exists():
        raise ValidationError(f"{student.username} is not enrolled in {course.code}.")
    with transaction.atomic():
        quota = quotas.lock_quota(course)
        # Read again under the quota lock (it may have closed meanwhile), with its version.
        # Its warm pool in the same query: a course without one costs a start no query for it.
        course = Course.objects.select_related("template_version", "warm_pool").get(pk=course.pk)
        _check_course_runs_labs(course)
        if only_if_none and Lab.objects.filter(course=course, student=student, state__in=Lab.ACTIVE_STATES).exists():
            # Checked under the quota lock: two "provision the class" clicks give one lab each.
            raise AlreadyHasLab(f"{student.username} already has a lab.")
        handed = _pool_lab_hand_over(quota=quota, course=course, student=student, actor=actor, params=params)
        if handed is not None:
            return handed
        quotas.check_new_lab(quota, course, student, course.template_version)
        quotas.check_running_slot(quota, course)
        quotas.check_hours(quota, course, student)
        lab = _new_lab(course=course, student=student)
        return lab_operation(lab, Operation.Kind.PROVISION, actor, params)


def _pool_lab_hand_over(
    *,
    quota: CourseQuota,
    course: Course,
    student: AbstractBaseUser,
    actor: AbstractBaseUser | None,
    params: dict[str, Any] | None,
) -> Operation | None:
    """Give the student a ready lab of the course's warm pool (``labs.pools``), if it has one:
    theirs in the database at once, renamed and powered on by a quick operation (no clone).
    None when the pool has none ready: the caller builds a new lab.

    The caller holds the course's quota row, so starts in one course take pool labs one after
    the other; ``skip_locked`` also passes over a pool lab another transaction holds (the pool's
    own tick deleting or powering it). A lab with an operation queued or running is not ready to
    give. Its vCPU, memory and storage are counted already (a pool lab counts as any lab); the
    student's place, running slot and hours are checked as for a new lab.
    """
    if getattr(course, "warm_pool", None) is None:
        return None  # never had a pool (labs.pools.pool_set makes the row): nothing to take
    lab = (
        Lab.objects.select_for_update(skip_locked=True)
        .filter(course=course, student__isnull=True, state=Lab.State.READY, template_version=course.template_version)
        .filter(placement.course_endpoint_q(course))  # not on a vCenter the course left since it was built
        # Nor on one in maintenance: a hand-over gives a student a new lab there.
        .exclude(placement.in_maintenance_q())
        .exclude(pk__in=Operation.objects.filter(state__in=Operation.ACTIVE_STATES, lab__isnull=False).values("lab_id"))
        .order_by(F("running_since").asc(nulls_last=True), "created_at", "pk")  # a running one is ready soonest
        .first()
    )
    if lab is None:
        return None
    quotas.check_student_lab(quota, course, student)
    if not lab.is_running:
        quotas.check_running_slot(quota, course)
    quotas.check_hours(quota, course, student)
    now = timezone.now()
    # Its hours in the pool were the course's: the student's count from the hand-over.
    if lab.running_since is not None:
        LabRun.objects.create(lab=lab, started_at=lab.running_since, ended_at=now)
        lab.running_since = now
        # And its lease starts now, as at any power-on (the pool's began when it was warmed).
        lab.expires_at = now + bounds.lease(quota.lease_hours) if quota.lease_hours is not None else None
        lab.lease_extensions_used = 0
    lab.hours_used = 0
    lab.student = student
    lab.number = (
        Lab.objects.filter(course=course, student=student).order_by("-number").values_list("number", flat=True).first()
        or 0
    ) + 1
    lab.given_at = lab.last_activity_at = now
    lab.save(
        update_fields=[
            "student",
            "number",
            "given_at",
            "last_activity_at",
            "hours_used",
            "running_since",
            "expires_at",
            "lease_extensions_used",
        ]
    )
    vms = list(lab.vms.all())
    for vm in vms:
        vm.name = f"{lab.name}-{vm.role}"
    LabVM.objects.bulk_update(vms, ["name"])
    operation = lab_operation(lab, Operation.Kind.HAND_OVER, actor, params)
    # The pool refills behind it within seconds, not at the next minute's tick; the refill pushes
    # the pool's new numbers to the class page (not here: they cost a dozen queries, under the
    # course's quota lock that every other Start of the class waits for).
    transaction.on_commit(lambda: dispatch.pool_nudge(course.pk), robust=True)
    return operation


@dataclass
class ClassProvision:
    """What "provision the class" did for each student."""

    started: list[Operation] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)
    """username -> why no lab was started (already has one, or the quota's words)."""


def course_provision(*, course: Course, actor: AbstractBaseUser, students: list | None = None) -> ClassProvision:
    """Start a lab for every enrolled student (or the given ones) who has none."""
    if not permissions.can_provision_class(actor, course):
        raise PermissionDenied("Only this course's instructors can provision the class.")
    _check_course_runs_labs(course)
    result = ClassProvision()
    enrolled = course.enrollments.select_related("student")
    if students is not None:
        enrolled = enrolled.filter(student__in=students)
    for enrollment in enrolled:
        student = enrollment.student
        try:
            result.started.append(lab_start(course=course, student=student, actor=actor, only_if_none=True))
        except AlreadyHasLab:
            result.skipped[student.username] = "already has a lab"
        except (PermissionDenied, ValidationError, Conflict) as refusal:
            result.skipped[student.username] = " ".join(getattr(refusal, "messages", [str(refusal)]))
            if isinstance(refusal, PermissionDenied):  # a quota refused this student's lab
                portal_audit.service_refused(
                    actor=actor, action="lab.provision", target=course, reason=f"{student.username}: {refusal}"
                )
    return result


def lab_snapshot_create(*, lab: Lab, actor: AbstractBaseUser, name: str, description: str = "") -> Operation:
    """A named snapshot of every VM of the lab, taken together."""
    require_act(actor, lab)
    name = name.strip()
    if not name:
        raise ValidationError({"name": "Give the snapshot a name."})
    if len(name) > 80:
        raise ValidationError({"name": "Keep the name under 80 characters."})
    with transaction.atomic():
        quota = quotas.lock_quota(lab.course)
        locked = lock_lab(lab)
        # Whether the name is taken and how many the quota counts, in one query.
        kept = locked.snapshots.aggregate(
            same_name=Count("pk", filter=Q(name=name)), taken=Count("pk", filter=Q(is_baseline=False))
        )
        if kept["same_name"]:
            raise ValidationError({"name": f"This lab already has a snapshot called {name}."})
        quotas.check_snapshot(quota, locked, taken=kept["taken"])
        return lab_operation(locked, Operation.Kind.SNAPSHOT, actor, {"name": name, "description": description})


def lab_snapshot_delete(*, snapshot: LabSnapshot, actor: AbstractBaseUser) -> Operation:
    require_act(actor, snapshot.lab)
    if snapshot.is_baseline:
        raise ValidationError("The baseline snapshot is what Reset returns to; it cannot be deleted.")
    with transaction.atomic():
        locked = lock_lab(snapshot.lab)
        return lab_operation(locked, Operation.Kind.DELETE_SNAPSHOT, actor, {"snapshot": snapshot.pk})


def lab_revert(*, lab: Lab, actor: AbstractBaseUser, snapshot: LabSnapshot) -> Operation:
    """Every VM back to the snapshot; VMs that were on when it was taken are on again after."""
    require_act(actor, lab)
    if snapshot.lab_id != lab.pk:
        raise ValidationError({"snapshot": "That snapshot belongs to another lab."})
    powers_on = any(state == LabVM.PowerState.ON for state in snapshot.power_states.values())
    if powers_on:
        _refuse_power_on_after_course(actor, lab)
    with transaction.atomic():
        quota = quotas.lock_quota(lab.course) if powers_on else None  # the quota before the lab
        locked = lock_lab(lab)
        if quota is not None and not locked.is_running:
            quotas.check_running_slot(quota, locked.course)
            quotas.check_hours(quota, locked.course, locked.student)
        return lab_operation(locked, Operation.Kind.REVERT, actor, {"snapshot": snapshot.pk})


def lab_reset(*, lab: Lab, actor: AbstractBaseUser) -> Operation:
    """Back to how the lab was handed out (its baseline), re-provisioning if that is gone."""
    require_act(actor, lab)
    _refuse_power_on_after_course(actor, lab)  # a reset ends powered on
    with transaction.atomic():
        quota = quotas.lock_quota(lab.course)  # the quota before the lab: a reset ends powered on
        locked = lock_lab(lab)
        if not locked.is_running:
            quotas.check_running_slot(quota, locked.course)
            quotas.check_hours(quota, locked.course, locked.student)
        # The plan is decided here, once: the queue (labs.dispatch) and ResetLab follow it.
        reverts = locked.state == Lab.State.READY and locked.snapshots.filter(is_baseline=True).exists()
        return lab_operation(locked, Operation.Kind.RESET, actor, {dispatch.RESET_REVERTS: reverts})


def lab_clone(*, lab: Lab, actor: AbstractBaseUser) -> Operation:
    """A new lab for the same student, from this lab's current state."""
    require_act(actor, lab)
    with transaction.atomic():
        quota = quotas.lock_quota(lab.course)
        locked = lock_lab(lab)
        if locked.state != Lab.State.READY:
            raise ValidationError(f"Only a ready lab can be cloned; {locked.name} is {locked.state}.")
        # A clone is a new lab that ends powered on: the same checks as a start, on the
        # source's version (which _new_lab builds).
        _check_course_runs_labs(locked.course)
        quotas.check_new_lab(quota, locked.course, locked.student, locked.template_version)
        quotas.check_running_slot(quota, locked.course)
        quotas.check_hours(quota, locked.course, locked.student)
        clone = _new_lab(course=locked.course, student=locked.student, source_lab=locked)
        _guide_progress_copy(source=locked, clone=clone)
        # The source stays busy while the clone is made (see selectors.lab_busy_with).
        return lab_operation(clone, Operation.Kind.CLONE, actor, {"source_lab": locked.pk})


def _guide_progress_copy(*, source: Lab, clone: Lab) -> None:
    """A clone starts where its source stands in the guide: its VMs are copies of the source's
    (the work the checks found is in them), and progress is the portal's, kept through reverts
    and resets as well. Check results keep their words and output, not the operation that
    recorded them (the source's)."""
    Lab.objects.filter(pk=clone.pk).update(guide_position=source.guide_position)
    clone.guide_position = source.guide_position
    StepResult.objects.bulk_create(
        StepResult(
            lab=clone,
            step_key=result.step_key,
            completed_at=result.completed_at,
            points=result.points,
            attempts=result.attempts,
            checked_at=result.checked_at,
        )
        for result in source.step_results.all()
    )
    CheckResult.objects.bulk_create(
        CheckResult(
            lab=clone,
            step_key=result.step_key,
            check_key=result.check_key,
            passed=result.passed,
            words=result.words,
            output=result.output,
            answer=result.answer,
            checked_at=result.checked_at,
        )
        for result in source.check_results.all()
    )


POWER_ACTIONS = ("on", "off", "reset")


def lab_power(*, lab: Lab, actor: AbstractBaseUser, action: str, vm: LabVM | None = None) -> Operation:
    """Power the whole lab (in boot order) or one VM: on, off (guest shutdown, then hard), reset."""
    require_act(actor, lab)
    if action not in POWER_ACTIONS:
        raise ValidationError({"action": f"Choose one of {', '.join(POWER_ACTIONS)}."})
    if vm is not None and vm.lab_id != lab.pk:
        raise ValidationError({"vm": "That VM belongs to another lab."})
    if action in ("on", "reset"):
        _refuse_power_on_after_course(actor, lab)
    with transaction.atomic():
        # "on", and "reset" (which powers on VMs that are off), may need a running slot.
        quota = quotas.lock_quota(lab.course) if action in ("on", "reset") else None  # the quota before the lab
        locked = lock_lab(lab)
        if locked.state not in (Lab.State.READY, Lab.State.ERROR):
            raise ValidationError(f"{locked.name} is {locked.state}; power actions wait until it is ready.")
        if quota is not None and not locked.is_running:
            quotas.check_running_slot(quota, locked.course)
            quotas.check_hours(quota, locked.course, locked.student)
        params = {"action": action, "vm": vm.pk if vm is not None else None}
        return lab_operation(locked, Operation.Kind.POWER, actor, params)


def lab_delete(*, lab: Lab, actor: AbstractBaseUser) -> Operation:
    """Remove the lab's VMs, networks, pool and folder; its VLANs go back to the range."""
    require_act(actor, lab)
    with transaction.atomic():
        locked = _select_lab_for_update(lab)
        if locked.state == Lab.State.DELETED:
            raise ValidationError(f"{locked.name} is already deleted.")
        _refuse_if_busy(locked)
        return lab_operation(locked, Operation.Kind.DELETE, actor)


# One action on a selection of a course's labs (the class table and the API's bulk route)

BULK_ACTIONS = {
    "power_off": lambda lab, actor: lab_power(lab=lab, actor=actor, action="off"),
    "reset": lambda lab, actor: lab_reset(lab=lab, actor=actor),
    "delete": lambda lab, actor: lab_delete(lab=lab, actor=actor),
}


@dataclass(frozen=True)
class LabOutcome:
    """What one lab of a bulk action came to: its operation, or the refusal its own button or
    route would have met (``core.errors.refusal_status`` and ``refusal_words`` say it)."""

    lab_id: int
    lab: Lab | None
    operation: Operation | None = None
    refusal: Exception | None = None


def class_labs_apply(*, course: Course, lab_ids: list[int], action: str, actor: AbstractBaseUser) -> list[LabOutcome]:
    """Power off, reset or delete a selection of a course's labs, each through its own service as
    if its button were clicked: one refused or busy lab does not stop the others. A refusal for
    want of a right (a quota too) is recorded here, once, as the single routes record theirs; the
    page and the API only put the outcomes in words or statuses."""
    if action not in BULK_ACTIONS:
        raise ValidationError({"action": f"Choose one of: {', '.join(BULK_ACTIONS)}."})
    ids = list(dict.fromkeys(lab_ids))
    # Warm-pool labs are the pool's (labs.pools), on no class table: not the selection's either.
    labs = Lab.objects.filter(course=course, student__isnull=False).select_related("course", "student").in_bulk(ids)
    outcomes = []
    for lab_id in ids:
        lab = labs.get(lab_id)
        if lab is None:
            outcomes.append(LabOutcome(lab_id, None, refusal=Lab.DoesNotExist("No lab with that id in this course.")))
            continue
        try:
            operation = BULK_ACTIONS[action](lab, actor)
        except (Conflict, PermissionDenied, ValidationError) as refusal:
            if isinstance(refusal, PermissionDenied):
                portal_audit.service_refused(actor=actor, action=f"lab.bulk.{action}", target=lab, reason=str(refusal))
            outcomes.append(LabOutcome(lab_id, lab, refusal=refusal))
        else:
            outcomes.append(LabOutcome(lab_id, lab, operation=operation))
    return outcomes


# Labs the portal powers off on its own (hours, lease, idle, course end) when they run: ready
# ones, and ones in error (a failed revert can leave the VMs on). Busy, provisioning and
# deleting labs have an operation running; the next minute looks at them again.
SETTLED_STATES = (Lab.State.READY, Lab.State.ERROR)

# A system power-off that failed (a lab in error may have lost a VM) is tried again after
# this long, not every minute with a notice each time.
SYSTEM_POWER_OFF_RETRY = timedelta(minutes=15)


def labs_out_of_hours_power_off() -> list[Operation]:
    """Power off every running lab whose student has used up their lab hours (and say why).

    Run every minute by Celery beat. A lab that is busy is looked at again next minute.
    """
    started = []
    running = Lab.objects.filter(
        running_since__isnull=False, state__in=SETTLED_STATES, student__isnull=False
    ).select_related("course")
    limits = {q.course_id: q.lab_hours_per_student for q in CourseQuota.objects.filter(course__labs__in=running)}
    checked: set[tuple[int, int]] = set()
    for lab in running:
        limit = limits.get(lab.course_id)
        key = (lab.course_id, lab.student_id)
        if limit is None or key in checked:
            continue
        checked.add(key)
        _, extra = quotas._top_ups(lab.course, lab.student)
        if quotas.student_hours(lab.course, lab.student) < limit + extra:
            continue
        for own in Lab.objects.filter(course=lab.course, student=lab.student, running_since__isnull=False):
            operation = lab_system_power_off(lab=own, reason="out_of_hours")
            if operation is None:
                continue
            started.append(operation)
            realtime.notify_user(
                own.student_id,
                f"{own.name} was powered off: you have used all {limit + extra} lab hours of "
                f"{own.course.code}. Ask your instructor for more hours.",
            )
    return started


def lab_vms_observed(*, endpoint_id: int, updates: list, full_resync: bool) -> int:
    """Apply what the vSphere watcher saw to the lab VMs it concerns; return how many changed.

    Power, IP and health go to the VM rows (and browsers); power changes meter the lab's
    hours. A VM that vanished from vCenter while its lab was idle (ready, or in error after
    a failed operation) is marked missing and puts the lab in error with words (Reset
    rebuilds it); VMs our own operations remove are theirs to record.
    """
    by_moref = {update.moref: update for update in updates}
    vms = LabVM.objects.filter(lab__endpoint_id=endpoint_id, lab__state__in=Lab.ACTIVE_STATES).exclude(moref="")
    if not full_resync:
        vms = vms.filter(moref__in=by_moref)
    changed_labs: dict[int, Lab] = {}
    vanished: dict[int, list[str]] = {}
    changed = 0
    for vm in vms.select_related("lab", "lab__course"):
        update = by_moref.get(vm.moref)
        if update is None or update.removed:
            if (update is not None or full_resync) and vm.power_state != LabVM.PowerState.MISSING:
                vanished.setdefault(vm.lab_id, []).append(vm.role)
                changed_labs[vm.lab_id] = vm.lab
            continue
        fields = {
            name: (value or "")
            for name, value in update.values.items()
            if name in ("power_state", "guest_ip", "overall_status")
        }
        if all(getattr(vm, name) == value for name, value in fields.items()):
            continue
        for name, value in fields.items():
            setattr(vm, name, value)
        vm.save(update_fields=list(fields))
        realtime.vm_changed(vm)
        changed_labs[vm.lab_id] = vm.lab
        changed += 1
    for lab_id, lab in changed_labs.items():
        roles_gone = vanished.get(lab_id)
        if roles_gone and lab.state in SETTLED_STATES and selectors.lab_busy_with(lab) is None:
            lab_vms_vanished(lab=lab, roles=roles_gone)  # meters too
            continue
        lab_power_changed(lab=lab)
    return changed


def endpoint_reconcile_start(*, endpoint: VCenterEndpoint, actor: AbstractBaseUser | None) -> Operation:
    """Compare vCenter with the database for one endpoint (admins on demand, beat on schedule)."""
    if actor is not None and not roles.is_admin(actor):
        raise PermissionDenied("Only admins can reconcile vCenter with Nestlab.")
    with transaction.atomic():
        VCenterEndpoint.objects.select_for_update().get(pk=endpoint.pk)
        running = Operation.objects.filter(
            endpoint=endpoint, kind=Operation.Kind.RECONCILE, state__in=Operation.ACTIVE_STATES
        ).first()
        if running is not None:
            raise Conflict(f"{endpoint.name} is being reconciled already (#{running.pk}).")
        return operation_start(kind=Operation.Kind.RECONCILE, endpoint=endpoint, actor=actor)


def endpoints_reconcile_all() -> list[Operation]:
    started = []
    for endpoint in VCenterEndpoint.objects.all():
        try:
            started.append(endpoint_reconcile_start(endpoint=endpoint, actor=None))
        except Conflict:
            continue
    return started


def lab_system_power_off(
    *, lab: Lab, reason: str, now: datetime | None = None, pooled: bool = False
) -> Operation | None:
    """The portal itself powers a lab off (lease, idle, hours, course end, a warm pool's lab
    waiting); None if it is busy, if its last system power-off failed less than
    ``SYSTEM_POWER_OFF_RETRY`` ago, or with ``pooled`` if a Start took it from the pool since the
    caller read it."""
    now = now or timezone.now()
    try:
        with transaction.atomic():
            locked = lock_lab(lab)
            if pooled and locked.student_id is not None:
                return None
            last = (
                Operation.objects.filter(lab=locked, kind=Operation.Kind.POWER, actor=None, params__action="off")
                .order_by("-created_at", "-id")
                .first()
            )
            if (
                last is not None
                and last.state == Operation.State.FAILED
                and last.finished_at is not None
                and last.finished_at > now - SYSTEM_POWER_OFF_RETRY
            ):
                return None
            return lab_operation(locked, Operation.Kind.POWER, None, {"action": "off", "vm": None, "reason": reason})
    except (Conflict, ValidationError):
        return None


def lab_system_start(*, course: Course, student: AbstractBaseUser, reason: str) -> Operation:
    """The portal itself starts an enrolled student's lab (a class session is coming), under the
    same rules and quota checks as a click; raises ``AlreadyHasLab`` when they have one, and the
    click's refusals (a quota's ``QuotaExceeded``, a closed course's ValidationError) in words."""
    return _lab_start_checked(course=course, student=student, actor=None, only_if_none=True, params={"reason": reason})


def lab_system_power_on(*, lab: Lab, reason: str) -> Operation:
    """The portal itself powers a ready lab on (a class session is coming), under the click's
    quota checks (running labs, lab hours). Refusals as a click's: Conflict when busy, a
    ValidationError when not ready or the course ended, ``QuotaExceeded``."""
    if lab.course.has_ended:
        raise ValidationError(f"{lab.course.title} has ended: its labs are not powered on.")
    with transaction.atomic():
        quota = quotas.lock_quota(lab.course)  # the quota before the lab
        locked = lock_lab(lab)
        if locked.state != Lab.State.READY:
            raise ValidationError(f"{locked.name} is {locked.state}; only a ready lab is powered on.")
        if not locked.is_running:
            quotas.check_running_slot(quota, locked.course)
            quotas.check_hours(quota, locked.course, locked.student)
        return lab_operation(locked, Operation.Kind.POWER, None, {"action": "on", "vm": None, "reason": reason})


# A delete the portal asked for itself that failed is tried again later, not at every tick: after
# one minute, then two, four... at most six hours apart (the failure is on the lab's operations
# for admins to see; an admin's own Delete is not held back).
SYSTEM_DELETE_FIRST_RETRY = timedelta(minutes=1)
SYSTEM_DELETE_RETRY_MAX = timedelta(hours=6)


def system_delete_retry_at(lab: Lab) -> datetime | None:
    """When the portal may try again to delete a lab whose deletes failed since anything last
    succeeded on it; None if none did."""
    since = Operation.objects.filter(lab=lab, state=Operation.State.SUCCEEDED).aggregate(last=Max("created_at"))
    failed = Operation.objects.filter(lab=lab, kind=Operation.Kind.DELETE, state=Operation.State.FAILED)
    if since["last"] is not None:
        failed = failed.filter(created_at__gt=since["last"])
    found = failed.aggregate(count=Count("pk"), last=Max("finished_at"))
    if not found["count"] or found["last"] is None:
        return None
    wait = min(SYSTEM_DELETE_FIRST_RETRY * 2 ** min(found["count"] - 1, 16), SYSTEM_DELETE_RETRY_MAX)
    return found["last"] + wait


def lab_system_delete(*, lab: Lab, reason: str, pooled: bool = False, now: datetime | None = None) -> Operation | None:
    """The portal itself deletes a lab (its course's lifetime is over, its warm pool drains or
    shrinks); None if it is busy, if its last deletes failed and the next try is not due
    (``system_delete_retry_at``), or with ``pooled`` if a Start took it from the pool since
    the caller read it."""
    with transaction.atomic():
        locked = _select_lab_for_update(lab)
        if locked.state in (Lab.State.DELETED, Lab.State.DELETING) or selectors.lab_busy_with(locked) is not None:
            return None
        if pooled and locked.student_id is not None:
            return None
        retry_at = system_delete_retry_at(locked)
        if retry_at is not None and (now or timezone.now()) < retry_at:
            return None
        return lab_operation(locked, Operation.Kind.DELETE, None, {"reason": reason})


def lab_touch(*, lab: Lab, user: AbstractBaseUser) -> None:
    """The student used their lab (a page, an action, the console): it is not idle.

    A student removed from the course only looks (``permissions.can_view_lab``): that is no use.
    """
    if user.is_authenticated and user.pk == lab.student_id and permissions.can_act_on_lab(user, lab):
        Lab.objects.filter(pk=lab.pk).update(last_activity_at=timezone.now())


def lab_extend_lease(*, lab: Lab, actor: AbstractBaseUser) -> Lab:
    """One more lease for a running lab, in one click, as often as the quota allows."""
    require_act(actor, lab)
    with transaction.atomic():
        quota = quotas.lock_quota(lab.course)  # the quota before the lab
        locked = _select_lab_for_update(lab)
        if quota.lease_hours is None or locked.expires_at is None:
            raise ValidationError(f"{locked.name} has no lease to extend: it runs until it is powered off.")
        if not locked.is_running:
            raise ValidationError(f"{locked.name} is not running; powering it on starts a new lease.")
        allowed = quota.lease_extensions
        if allowed is not None and locked.lease_extensions_used >= allowed:
            words = (
                "cannot be extended" if allowed == 0 else f"was extended {allowed} time(s) already, the most allowed"
            )
            raise QuotaExceeded(f"The lease of {locked.name} {words}.")
        locked.expires_at += bounds.lease(quota.lease_hours)
        locked.lease_extensions_used += 1
        locked.save(update_fields=["expires_at", "lease_extensions_used"])
        realtime.lab_changed(locked)
    return locked
