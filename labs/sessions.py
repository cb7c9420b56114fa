"""Labs ready before the class walks in (issue 13): a course's class sessions, acted on.

``tick`` runs every minute (Celery beat, like ``labs.lifecycle.tick``). For each meeting of an
open course's sessions that starts within its lead time (the session's ``ready_minutes_before``,
the measured build time of the course's template, ``labs.selectors.template_build_time``, and
the tick's own minute, ``lead_time``),
the portal, as the system (no actor), through the same services and quota checks as the buttons:

- starts a lab for every enrolled student who has none (``services.lab_system_start``; the build
  ends with the lab powered on);
- powers on the student's lab when it is ready but off (``services.lab_system_power_on``).

Both happen at the same moment, the build window: a power-on is quicker than a build, but nested
ESXi hosts and a vCenter appliance take minutes to boot after vCenter reports them on, so the
minutes between a power-on and the start are not wasted; they cost lab hours, which the quota
counts as any run.

Beat's task calls ``tick_alone``: one tick at a time across workers (a Redis lock). A
``SessionPreparation`` row per meeting makes it once: the next tick does nothing for it, and a
tick that died half-way is resumed (both steps are harmless to repeat). A lab busy with an
operation is tried again every minute until the start. A refusal (a quota, a course that cannot
run labs) is the student's outcome in words on the row, in the log, and for a quota in the audit
log (``core.audit.service_refused``), as "provision the class" records it.

After the meeting. The idle rule (``labs.lifecycle``) powers labs off only where the course's quota
sets ``idle_minutes``; many courses leave it blank, and a lab the portal powered on for a student
who never came would then run until its lease or the student's hours ran out. So the labs a
meeting started or powered on that nobody used since (no action, console or page of the student's,
``Lab.last_activity_at``) are powered off ``GRACE_AFTER_END`` after it ends. Labs that were used
are left to the idle rule and leases, as any lab. And a prepared lab's idle clock starts at the
meeting's start at the earliest (``held_labs``): a lab waiting for its class is not idle.

A student who joins after the meeting began starts their lab with the ordinary Start: meetings
that began are not prepared.
"""

from __future__ import annotations

import logging
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cache

import redis
from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone
from redis.exceptions import LockError

from core import audit as portal_audit
from core.errors import Conflict
from courses import selectors as course_selectors
from courses.models import ClassSession, Course
from labs import realtime, selectors, services
from labs.models import Lab, SessionPreparation

logger = logging.getLogger(__name__)

REASON = "class_session"
UNUSED_REASON = "class_session_unused"
# How long after a meeting's end its unused labs are powered off: a class that overruns a little,
# or a student who comes back to it right after, keeps the lab.
GRACE_AFTER_END = timedelta(minutes=15)
# Outcome words of a student whose lab is busy: tried again next minute, until the start.
PENDING = "busy with an operation; tried again next minute"


@dataclass
class SessionTick:
    """What one tick did: preparations begun or resumed, labs started and powered on (lab ids),
    refusals (``course code/username`` -> words), labs powered off after their meeting."""

    prepared: list[int] = field(default_factory=list)
    started: list[int] = field(default_factory=list)
    powered_on: list[int] = field(default_factory=list)
    refused: dict[str, str] = field(default_factory=dict)
    powered_off: list[int] = field(default_factory=list)


# Beat runs the tick every minute: a window that opens just after a tick is seen up to a minute
# late. bench/session_start.py, without it: 81 of 100 labs ready when due (all by the start).
TICK_PERIOD = timedelta(minutes=1)


def lead_time(session: ClassSession, build_time: timedelta) -> timedelta:
    """How long before a meeting's start its labs begin to be made ready: the instructor's lead,
    the measured build time and the tick's period (``selectors.session_lead_time``: the warm pool
    fills ahead of it)."""
    return selectors.session_lead_time(session, build_time)


def _sessions_ahead(now: datetime):
    # Two days back: a meeting that began yesterday in a zone far behind UTC may still run.
    since = timezone.localdate(now) - timedelta(days=2)
    return (
        ClassSession.objects.filter(
            course__state=Course.State.OPEN,
            course__template_version__isnull=False,
        )
        .filter(
            Q(repeat=ClassSession.Repeat.ONCE, first_date__gte=since)
            | Q(repeat=ClassSession.Repeat.WEEKLY, last_date__gte=since)
        )
        .select_related("course__template_version")
    )


def tick(now: datetime | None = None) -> SessionTick:
    """Prepare the meetings whose build window has come, then close those that ended."""
    now = now or timezone.now()
    result = SessionTick()
    build_times: dict[int, timedelta] = {}
    for session in _sessions_ahead(now):
        version = session.course.template_version
        if version.pk not in build_times:
            build_times[version.pk] = selectors.template_build_time(version)
        build = build_times[version.pk]
        until = now + lead_time(session, build)
        for occurrence in course_selectors.session_occurrences(sessions=[session], after=now, until=until):
            _prepare(occurrence, build, now, result)
    _close_ended(now, result)
    return result


# One tick at a time across workers: one that runs past the next minute (a very large class) must
# not meet the next on the same meeting, where both would answer each student and the outcome
# written last would win. The lock expires on its own if a worker dies holding it.
TICK_LOCK = "nestlab:labs.sessions.tick"
TICK_LOCK_TIMEOUT = 15 * 60


@cache
def _redis() -> redis.Redis:
    return redis.Redis.from_url(settings.REDIS_URL)


def tick_alone(now: datetime | None = None) -> SessionTick | None:
    """``tick``, unless another is running (None): what beat's task calls."""
    lock = _redis().lock(TICK_LOCK, timeout=TICK_LOCK_TIMEOUT)
    if not lock.acquire(blocking=False):
        logger.info("A class-session tick is still running; this one is skipped.")
        return None
    try:
        return tick(now)
    finally:
        with suppress(LockError):  # it expired: the tick ran longer than the timeout
            lock.release()


def _preparation(occurrence: course_selectors.Occurrence, build: timedelta, now: datetime) -> SessionPreparation | None:
    """The meeting's row, made now if it is still ahead; None when it is done or began unprepared."""
    found = SessionPreparation.objects.filter(session=occurrence.session, occurrence_start=occurrence.starts_at).first()
    if found is not None:
        return None if found.prepared_at is not None else found
    if occurrence.starts_at <= now:
        return None  # it began without us (made during the class): late joiners press Start
    try:
        with transaction.atomic():
            return SessionPreparation.objects.create(
                session=occurrence.session,
                occurrence_start=occurrence.starts_at,
                occurrence_end=occurrence.ends_at,
                build_minutes=round(build.total_seconds() / 60),
                started_at=now,
            )
    except IntegrityError:  # a tick running at the same time took it
        return None


def _prepare(occurrence: course_selectors.Occurrence, build: timedelta, now: datetime, result: SessionTick) -> None:
    preparation = _preparation(occurrence, build, now)
    if preparation is None:
        return
    session, course = occurrence.session, occurrence.session.course
    result.prepared.append(preparation.pk)
    ready_at = timezone.localtime(occurrence.starts_at, session.zone)
    when = f"{ready_at:%H:%M} ({session.time_zone})"
    first_labs: dict[int, Lab] = {}
    for lab in Lab.objects.filter(course=course, state__in=Lab.ACTIVE_STATES).order_by("-number"):
        first_labs[lab.student_id] = lab  # the lowest number wins: the student's own lab, not a clone
    outcome = dict(preparation.outcome)
    pending = False
    for enrollment in course.enrollments.select_related("student"):
        student = enrollment.student
        if outcome.get(student.username, PENDING) != PENDING:
            continue  # done by the tick that died half-way
        lab = first_labs.get(student.pk)
        try:
            if lab is None:
                operation = services.lab_system_start(course=course, student=student, reason=REASON)
                preparation.labs.add(operation.lab)
                result.started.append(operation.lab_id)
                words = "lab started"
                realtime.notify_user(
                    student.pk, f"Your lab for {course.title} is being built, to be ready for {when}.", level="info"
                )
            elif lab.is_running:
                words = "already running"
            elif lab.state == Lab.State.PROVISIONING:
                words = "being built already"
            elif lab.state == Lab.State.READY:
                services.lab_system_power_on(lab=lab, reason=REASON)
                preparation.labs.add(lab)
                result.powered_on.append(lab.pk)
                words = "powered on"
                realtime.notify_user(
                    student.pk, f"{lab.name} is being powered on for {course.title} at {when}.", level="info"
                )
            elif lab.state == Lab.State.BUSY:
                raise Conflict(PENDING)
            else:
                words = f"not made ready: {lab.name} is {lab.get_state_display().lower()}"
        except services.AlreadyHasLab:
            words = "already has a lab"
        except Conflict:
            words, pending = PENDING, True
        except (PermissionDenied, ValidationError) as refusal:
            words = "not made ready: " + " ".join(getattr(refusal, "messages", None) or [str(refusal)])
            result.refused[f"{course.code}/{student.username}"] = words
            logger.info("Class session of %s at %s: %s %s", course.code, occurrence.starts_at, student.username, words)
            if isinstance(refusal, PermissionDenied):  # a quota refused it, as in "provision the class"
                portal_audit.service_refused(
                    actor=None, action="lab.session", target=course, reason=f"{student.username}: {refusal}"
                )
        outcome[student.username] = words
        # Kept per student: a tick that dies half-way is resumed where it stopped.
        SessionPreparation.objects.filter(pk=preparation.pk).update(outcome=outcome)
    preparation.outcome = outcome
    # Busy labs are tried again each minute until the start; after it, the student's own clicks do.
    if not pending or now >= occurrence.starts_at:
        preparation.prepared_at = now
    preparation.save(update_fields=["outcome", "prepared_at"])


def _close_ended(now: datetime, result: SessionTick) -> None:
    """Power off the labs ended meetings started or powered on and nobody used since."""
    ended = SessionPreparation.objects.filter(closed_at__isnull=True, occurrence_end__lte=now - GRACE_AFTER_END)
    for preparation in ended.select_related("session__course"):
        unused = preparation.labs.filter(running_since__isnull=False, state__in=services.SETTLED_STATES).filter(
            Q(last_activity_at__isnull=True) | Q(last_activity_at__lt=preparation.started_at)
        )
        for lab in unused.select_related("course", "student"):
            if services.lab_system_power_off(lab=lab, reason=UNUSED_REASON, now=now) is not None:
                result.powered_off.append(lab.pk)
                realtime.notify_user(
                    lab.student_id,
                    f"{lab.name} was powered off: it was made ready for {lab.course.title}'s session, "
                    "which ended, and nobody used it. Your work is kept; power it on to go on.",
                )
        # A busy lab is not waited for: the idle rule and its lease look after it from here.
        SessionPreparation.objects.filter(pk=preparation.pk).update(closed_at=now)


def held_labs(now: datetime) -> dict[int, datetime]:
    """Labs made ready for a meeting, each with the meeting's start: their idle clock starts there
    at the earliest (``labs.lifecycle``), so a lab waiting for its class is not powered off as idle."""
    through = SessionPreparation.labs.through
    rows = through.objects.filter(sessionpreparation__occurrence_end__gt=now - GRACE_AFTER_END).values_list(
        "lab_id", "sessionpreparation__occurrence_start"
    )
    held: dict[int, datetime] = {}
    for lab_id, start in rows:
        held[lab_id] = max(start, held.get(lab_id, start))
    return held


def course_preparations(*, course: Course, limit: int = 5):
    """The course's latest prepared meetings, for its instructors' page."""
    return SessionPreparation.objects.filter(session__course=course).select_related("session")[:limit]
