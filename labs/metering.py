"""What workers and the watcher record about a lab as vCenter changes it, in one copy: a power
change (the lab's hours, lease and idle clock), and VMs that vanished from vCenter (the lab in
error, in words). The request-side services, the watcher's updates and the jobs all call these.
"""

from __future__ import annotations

from django.db import transaction
from django.db.models import Count, OuterRef, Subquery
from django.db.models.functions import Coalesce
from django.utils import timezone

from courses import bounds
from courses.models import CourseQuota
from labs import realtime
from labs.models import Lab, LabRun, LabVM


def select_lab_for_update(lab: Lab, *, power_counts: bool = False) -> Lab:
    """Lock the lab row, and only it, for this transaction.

    Lock order, everywhere: the course's quota row first (``quotas.lock_quota``), then the lab.
    ``of=("self",)`` matters on PostgreSQL: without it the joined course, student and version
    rows would be locked FOR UPDATE too, and every new lab (``lab_start``, under the quota lock)
    needs a key-share lock on its course row: a snapshot click waiting for the quota while a
    start waits for the course row was a deadlock.

    ``power_counts``: with its VMs' count and how many are on (what ``Lab.power_summary`` reads
    for the lab's words), in the same query, for a caller that changes no VM in its transaction.
    """
    locked = Lab.objects.select_for_update(of=("self",)).select_related(
        "course", "student", "template_version", "endpoint"
    )
    if power_counts:
        vms = LabVM.objects.filter(lab=OuterRef("pk")).values("lab")
        locked = locked.annotate(
            vm_count=Coalesce(Subquery(vms.annotate(n=Count("pk")).values("n")), 0),
            vms_on=Coalesce(
                Subquery(vms.filter(power_state=LabVM.PowerState.ON).annotate(n=Count("pk")).values("n")), 0
            ),
        )
    return locked.get(pk=lab.pk)


def lab_power_changed(*, lab: Lab) -> Lab:
    """Meter hours from the VMs' power states: a lab runs while any of its VMs is on."""
    now = timezone.now()
    any_on = lab.vms.filter(power_state=LabVM.PowerState.ON).exists()
    with transaction.atomic():
        locked = select_lab_for_update(lab)
        if any_on and locked.running_since is None:
            locked.running_since = now
            # Every start begins a lease (when the course has one) and a fresh idle clock. The
            # quota is only read: locking it after the lab would break the lock order.
            lease = CourseQuota.objects.filter(course_id=locked.course_id).values_list("lease_hours", flat=True).first()
            locked.expires_at = now + bounds.lease(lease) if lease is not None else None
            locked.lease_extensions_used = 0
            locked.last_activity_at = now
        elif not any_on and locked.running_since is not None:
            locked.hours_used += (now - locked.running_since).total_seconds() / 3600
            LabRun.objects.create(lab=locked, started_at=locked.running_since, ended_at=now)  # for usage reports
            locked.running_since = None
            locked.expires_at = None
        else:
            return locked
        locked.save(
            update_fields=["running_since", "hours_used", "expires_at", "lease_extensions_used", "last_activity_at"]
        )
    lab.running_since, lab.hours_used, lab.expires_at = locked.running_since, locked.hours_used, locked.expires_at
    realtime.lab_changed(locked)
    return locked


def vanished_words(roles: list[str]) -> str:
    """Why a lab is in error when VMs of it are gone from vCenter."""
    return f"{', '.join(sorted(roles))} disappeared from vCenter. Reset rebuilds the lab."


def lab_vms_vanished(*, lab: Lab, roles: list[str]) -> Lab:
    """VMs of a settled lab are gone from vCenter (seen by the watcher or the reconciler): they are
    marked missing, the lab is in error with the words, browsers are told, and its hours stop."""
    for vm in LabVM.objects.filter(lab=lab, role__in=roles).exclude(power_state=LabVM.PowerState.MISSING):
        vm.power_state = LabVM.PowerState.MISSING
        vm.save(update_fields=["power_state"])
        realtime.vm_changed(vm)
    Lab.objects.filter(pk=lab.pk).update(state=Lab.State.ERROR, error=vanished_words(roles))
    lab.refresh_from_db()
    realtime.lab_changed(lab)
    return lab_power_changed(lab=lab)  # a vanished VM no longer runs: stop metering its hours
