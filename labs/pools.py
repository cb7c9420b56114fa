"""Warm pools (issue 13, item 2): labs built ahead for a course and given to no one yet.

A course's pool (``labs.models.WarmPool``) holds labs of its current template version whose
``student`` is empty. A student's Start (``labs.services.lab_start``, every path: page, API, the
class's provision, a class session's own start) takes a ready one when there is one: it becomes
theirs in the database at once and a quick operation renames it in vCenter and powers it on
(``labs.jobs.lab_ops.HandOverLab``), no clone; then the pool refills behind it (``pool_nudge``).

``course_pool_tick`` runs every minute (Celery beat, ``tick_alone``) and soon after each take, per course,
as the system:

- drains what no Start may take any more: pool labs of another version than the course's (a new
  version was published and the course moved to it), pool labs in error (a failed build) or on
  a vCenter the course no longer uses, and
  every pool lab of a course that cannot start labs (closed, ended, no published version).
  Through the normal delete operation;
- refills to ``selectors.pool_target`` (the instructor's number, plus with schedule sizing the
  enrolled students without a lab while a session is near), one build at a time through the
  quota's checks: the pool's own line (``CourseQuota.pool_labs``) and the class's vCPU, memory and
  storage. A refusal stops the refill and is the pool's words (page, API, log);
- shrinks a pool above its target (ready labs nobody waits for, newest first); labs on a vCenter
  in maintenance are kept but not counted (nor handed over, nor powered on), so the pool is
  refilled elsewhere meanwhile and shrinks back when the maintenance ends;
- keeps ready pool labs powered off while they wait, and on from the class session's own window
  to its end (``selectors.pool_window``), so a take is instant then.

Pool labs hold no student's place (``labs_per_student``, the class table, the roster), and their
hours in the pool are the course's: a hand-over starts the student's count at zero.
"""

from __future__ import annotations

import logging
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache

import redis
from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from redis.exceptions import LockError

from core.errors import Conflict
from courses.models import Course
from labs import dispatch, permissions, placement, quotas, realtime, selectors, services
from labs.jobs.lab_ops import STAY_OFF
from labs.models import Lab, Operation, WarmPool

logger = logging.getLogger(__name__)

DRAIN_REASON = "pool_drained"
SHRINK_REASON = "pool_shrunk"
WAITING_REASON = "pool_waiting"
WARM_REASON = "pool_session_near"


def pool_get(*, course: Course, actor: AbstractBaseUser) -> selectors.PoolStatus:
    """The course's pool as the class page and the API show it: its instructors and admins."""
    _require_manage(actor, course)
    return selectors.pool_status(course.pk)


def _require_manage(actor: AbstractBaseUser, course: Course) -> None:
    if not permissions.can_provision_class(actor, course):
        raise PermissionDenied("Only this course's instructors and admins can see and size its warm pool.")


def pool_set(*, course: Course, actor: AbstractBaseUser, size: int, sizing: str = WarmPool.Sizing.FIXED) -> WarmPool:
    """Size the course's warm pool (the class page's form and ``PUT /api/courses/<id>/pool/``).

    Bounds live in the model (``full_clean``): a size out of range or an unknown sizing is a
    ValidationError in words. The pool fills or shrinks right after (a quick worker), and within
    the quota: a size above ``CourseQuota.pool_labs`` is accepted and the page says the cap.
    """
    _require_manage(actor, course)
    with transaction.atomic():
        pool, _ = WarmPool.objects.select_for_update().get_or_create(course=course)
        pool.size, pool.sizing, pool.updated_by = size, sizing, actor
        pool.full_clean(exclude=["course"])
        pool.save()
        transaction.on_commit(lambda: _after_change(course.pk), robust=True)
    return pool


def _after_change(course_id: int) -> None:
    realtime.pool_changed(course_id)
    dispatch.pool_nudge(course_id)


@dataclass
class PoolTick:
    """What one tick did to a course's pool (lab ids), and why it stopped short, in words."""

    built: list[int] = field(default_factory=list)
    drained: list[int] = field(default_factory=list)
    powered_on: list[int] = field(default_factory=list)
    powered_off: list[int] = field(default_factory=list)
    refused: str = ""


def _courses_with_pools():
    """Courses that have a pool or still hold pool labs (a pool set to 0 is drained too)."""
    with_labs = Lab.objects.filter(student__isnull=True, state__in=Lab.ACTIVE_STATES).values("course_id")
    return Course.objects.filter(Q(warm_pool__isnull=False) | Q(pk__in=with_labs)).select_related("template_version")


def course_pool_tick(*, course: Course, now: datetime | None = None) -> PoolTick:
    """Bring one course's pool to what it should be now; harmless to repeat (the nudge after a
    take and beat's minute may meet: the quota lock orders them)."""
    now = now or timezone.now()
    course.refresh_from_db()
    result = PoolTick()
    _drain(course, result, now)
    window = selectors.pool_window(course, now)
    _refill(course, window, result)
    _power(course, window, result)
    realtime.pool_changed(course.pk)
    return result


def _drain(course: Course, result: PoolTick, now: datetime) -> None:
    pooled = selectors.pool_labs(course).exclude(state=Lab.State.DELETING)
    runs = not services.course_start_refusal(course)
    if runs:
        # Another version, in error (a failed build or power-on), or on a vCenter the course no
        # longer uses: no Start takes it, and counted as the pool's it would keep the pool short.
        pooled = pooled.filter(
            ~Q(template_version=course.template_version)
            | Q(state=Lab.State.ERROR)
            | ~placement.course_endpoint_q(course)
        )
    for lab in pooled:
        if services.lab_system_delete(lab=lab, reason=DRAIN_REASON, pooled=True, now=now) is not None:
            result.drained.append(lab.pk)


def _refill(course: Course, window: selectors.PoolWindow, result: PoolTick) -> None:
    pool = WarmPool.objects.filter(course=course).first()
    target = selectors.pool_target(course, pool, window)
    current = selectors.pool_labs(course).filter(template_version=course.template_version)
    current = current.filter(placement.course_endpoint_q(course))
    current = current.exclude(state__in=(Lab.State.DELETING, Lab.State.ERROR))  # being drained (_drain)
    # Labs on a vCenter in maintenance are kept (they count again when it ends, and the pool
    # then shrinks) but no Start takes them meanwhile: the pool is refilled elsewhere.
    current = current.exclude(placement.in_maintenance_q())
    while True:
        # One lab per transaction: the course's quota lock is held for one build's rows, not the
        # whole refill, so students' Starts go on meanwhile.
        with transaction.atomic():
            quota = quotas.lock_quota(course)
            have = current.count()
            if have >= target:
                break
            try:
                quotas.check_pool_lab(quota, course, course.template_version)
                lab = services._new_lab(course=course, student=None)
            except (PermissionDenied, ValidationError) as refusal:
                result.refused = " ".join(getattr(refusal, "messages", [str(refusal)]))
                logger.info("The warm pool of %s stops at %d: %s", course.code, have, result.refused)
                break
            # It waits powered off unless a session is near (then the take is instant).
            services.lab_operation(lab, Operation.Kind.PROVISION, None, {"reason": "pool", STAY_OFF: not window.warm})
            result.built.append(lab.pk)
    extra = current.count() - target
    if extra > 0:
        idle = current.filter(state=Lab.State.READY).order_by("-created_at", "-pk")[:extra]
        for lab in idle:
            if services.lab_system_delete(lab=lab, reason=SHRINK_REASON, pooled=True) is not None:
                result.drained.append(lab.pk)


def _power(course: Course, window: selectors.PoolWindow, result: PoolTick) -> None:
    ready = selectors.pool_labs(course).filter(state=Lab.State.READY, template_version=course.template_version)
    if window.warm:
        # None is powered on on a vCenter in maintenance: admins are working on it.
        for lab in ready.filter(running_since__isnull=True).exclude(placement.in_maintenance_q()):
            with suppress(Conflict, PermissionDenied, ValidationError):
                _power_on(lab)
                result.powered_on.append(lab.pk)
        return
    for lab in ready.filter(running_since__isnull=False):
        if services.lab_system_power_off(lab=lab, reason=WAITING_REASON, pooled=True) is not None:
            result.powered_off.append(lab.pk)


def _power_on(lab: Lab) -> Operation:
    """Power a ready pool lab on for a session that is near: the class's running slots are
    checked (a pool lab running takes one, as any lab); hours are the course's, not checked."""
    with transaction.atomic():
        quota = quotas.lock_quota(lab.course)
        locked = services.lock_lab(lab)
        if locked.student_id is not None or locked.state != Lab.State.READY or locked.is_running:
            raise ValidationError("The lab left the pool or is not ready.")
        quotas.check_running_slot(quota, locked.course)
        return services.lab_operation(
            locked, Operation.Kind.POWER, None, {"action": "on", "vm": None, "reason": WARM_REASON}
        )


# One tick at a time across workers per course (the nudge after a take and beat's minute).
TICK_LOCK = "nestlab:labs.pools.tick:{}"
TICK_LOCK_TIMEOUT = 5 * 60


@cache
def _redis() -> redis.Redis:
    return redis.Redis.from_url(settings.REDIS_URL)


def course_pool_tick_alone(course_id: int) -> PoolTick | None:
    """``course_pool_tick`` unless another runs for the course (None): the nudge's task."""
    lock = _redis().lock(TICK_LOCK.format(course_id), timeout=TICK_LOCK_TIMEOUT)
    if not lock.acquire(blocking=False):
        return None
    try:
        course = Course.objects.filter(pk=course_id).first()
        return course_pool_tick(course=course) if course is not None else None
    finally:
        with suppress(LockError):
            lock.release()


def tick_alone() -> dict[int, PoolTick | None]:
    """Every course's pool, each under its lock: what beat's task calls."""
    return {course.pk: course_pool_tick_alone(course.pk) for course in _courses_with_pools()}
