"""Labs over time: leases, idle shutdown, course end and deletion after the course.

``tick`` runs every minute (Celery beat). Each rule starts ordinary operations through the
same services as the buttons (as the system: no actor) and tells the student why, in
words; a lab that is busy is looked at again a minute later.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db.models import Q
from django.utils import timezone

from courses import bounds
from courses.models import Course, CourseQuota
from labs import realtime, services, sessions
from labs.models import Lab

logger = logging.getLogger(__name__)

DELETION_WARNING = timedelta(days=1)


@dataclass
class Tick:
    """What one tick started, by rule (lab ids)."""

    lease_ended: list[int] = field(default_factory=list)
    idle: list[int] = field(default_factory=list)
    course_ended: list[int] = field(default_factory=list)
    deleted: list[int] = field(default_factory=list)
    warned: list[int] = field(default_factory=list)


def _system_power_off(lab: Lab, reason: str, now: datetime) -> bool:
    return services.lab_system_power_off(lab=lab, reason=reason, now=now) is not None


def _quotas() -> dict[int, CourseQuota]:
    return {quota.course_id: quota for quota in CourseQuota.objects.all()}


def tick(now: datetime | None = None) -> Tick:
    now = now or timezone.now()
    today = timezone.localdate(now)
    result = Tick()
    quotas = _quotas()
    held = sessions.held_labs(now)
    # Ready labs and labs in error (a failed revert can leave VMs on) that run; busy ones are
    # looked at again next minute.
    # Warm-pool labs are the pool's to power (labs.pools): no lease, idle clock or student to tell.
    running = Lab.objects.filter(
        state__in=services.SETTLED_STATES, running_since__isnull=False, student__isnull=False
    ).select_related("course", "student")

    for lab in running:
        course, quota = lab.course, quotas.get(lab.course_id)
        if course.ends_on < today:
            if _system_power_off(lab, "course_ended", now):
                result.course_ended.append(lab.pk)
                realtime.notify_user(lab.student_id, f"{lab.name} was powered off: {course.title} has ended.")
            continue
        if lab.expires_at is not None and lab.expires_at <= now:
            if _system_power_off(lab, "lease_ended", now):
                result.lease_ended.append(lab.pk)
                realtime.notify_user(
                    lab.student_id,
                    f"{lab.name} was powered off: its lease of {quota.lease_hours} h ended. Power it on to go on.",
                )
            continue
        if quota is not None and quota.idle_minutes is not None:
            # A lab made ready for a class session is not idle before the session starts.
            last = max(filter(None, [lab.last_activity_at, lab.running_since, held.get(lab.pk)]))
            idle = last <= now - bounds.idle_period(quota.idle_minutes)
            if idle and _system_power_off(lab, "idle", now):
                result.idle.append(lab.pk)
                realtime.notify_user(
                    lab.student_id,
                    f"{lab.name} was powered off: nobody used it for {quota.idle_minutes} minutes. "
                    "Your work is kept; power it on to go on.",
                )

    ended = Course.objects.filter(ends_on__lt=today)
    for course in ended:
        quota = quotas.get(course.pk)
        if quota is None or quota.lifetime_days_after_end is None:
            continue
        delete_on = course.ends_on + bounds.lifetime_after_end(quota.lifetime_days_after_end) + timedelta(days=1)
        delete_at = timezone.make_aware(datetime.combine(delete_on, datetime.min.time()))
        labs = Lab.objects.filter(course=course, state__in=Lab.ACTIVE_STATES, student__isnull=False).exclude(
            state=Lab.State.DELETING
        )
        for lab in labs.filter(Q(deletion_notice_at__isnull=True), ~Q(state=Lab.State.PROVISIONING)):
            if now >= delete_at - DELETION_WARNING:
                Lab.objects.filter(pk=lab.pk).update(deletion_notice_at=now)
                result.warned.append(lab.pk)
                realtime.notify_user(
                    lab.student_id,
                    f"{lab.name} will be deleted on {delete_on:%A %d %B %Y}: {course.title} ended on "
                    f"{course.ends_on:%d %B}. Save anything you need before then.",
                )
        if now < delete_at:
            continue
        for lab in labs.filter(deletion_notice_at__isnull=False):
            if services.lab_system_delete(lab=lab, reason="course_lifetime", now=now) is not None:
                result.deleted.append(lab.pk)
    return result
