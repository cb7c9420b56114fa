"""labs/lifecycle.py: leases, idle shutdown, course end and deletion after the course,
each with a notice to the student; and extending a lease in one click."""

from datetime import datetime, time, timedelta

import pytest
from django.utils import timezone

from core.errors import QuotaExceeded
from core.models import Notice
from labs import lifecycle, services
from labs.models import Lab, Operation
from tests.factories import open_course

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def no_queue(monkeypatch):
    monkeypatch.setattr(services.dispatch, "send_operation", lambda *args, **kwargs: None)


def _running_lab(quota=None, **course_fields):
    course = open_course(students=1, quota=quota)
    for name, value in course_fields.items():
        setattr(course, name, value)
    course.save()
    student = course.enrollments.get().student
    lab = services.lab_start(course=course, student=student, actor=student).lab
    Operation.objects.filter(lab=lab).update(state=Operation.State.SUCCEEDED)
    Lab.objects.filter(pk=lab.pk).update(state=Lab.State.READY)
    lab.vms.update(power_state="poweredOn")
    lab.refresh_from_db()
    return services.lab_power_changed(lab=lab)


def _power_offs(lab):
    return Operation.objects.filter(lab=lab, kind=Operation.Kind.POWER, params__action="off")


def test_a_lab_starts_a_lease_and_is_powered_off_when_it_ends_with_a_notice():
    lab = _running_lab(quota={"lease_hours": 2})
    assert lab.expires_at is not None
    assert abs((lab.expires_at - timezone.now()) - timedelta(hours=2)) < timedelta(minutes=1)
    assert lifecycle.tick().lease_ended == []
    result = lifecycle.tick(now=lab.expires_at + timedelta(seconds=1))
    assert result.lease_ended == [lab.pk]
    assert _power_offs(lab).get().params["reason"] == "lease_ended"
    notice = Notice.objects.get(user=lab.student)
    assert "lease of 2 h ended" in notice.text


def test_a_lease_is_extended_once_in_one_click_where_the_quota_allows():
    lab = _running_lab(quota={"lease_hours": 2, "lease_extensions": 1})
    before = lab.expires_at
    extended = services.lab_extend_lease(lab=lab, actor=lab.student)
    assert extended.expires_at == before + timedelta(hours=2)
    with pytest.raises(QuotaExceeded, match="extended 1 time"):
        services.lab_extend_lease(lab=lab, actor=lab.student)


def test_a_course_without_leases_has_nothing_to_extend():
    from django.core.exceptions import ValidationError

    lab = _running_lab()
    assert lab.expires_at is None
    with pytest.raises(ValidationError, match="no lease to extend"):
        services.lab_extend_lease(lab=lab, actor=lab.student)


def test_an_idle_lab_is_powered_off_and_activity_keeps_it_alive():
    lab = _running_lab(quota={"idle_minutes": 30})
    assert lifecycle.tick(now=timezone.now() + timedelta(minutes=20)).idle == []
    services.lab_touch(lab=lab, user=lab.student)
    assert lifecycle.tick(now=timezone.now() + timedelta(minutes=29)).idle == []
    assert lifecycle.tick(now=timezone.now() + timedelta(minutes=31)).idle == [lab.pk]
    assert "nobody used it for 30 minutes" in Notice.objects.get(user=lab.student).text


def test_an_instructor_looking_does_not_count_as_use():
    lab = _running_lab(quota={"idle_minutes": 30})
    Lab.objects.filter(pk=lab.pk).update(last_activity_at=timezone.now() - timedelta(hours=1))
    services.lab_touch(lab=lab, user=lab.course.instructors.get())
    lab.refresh_from_db()
    assert lab.last_activity_at < timezone.now() - timedelta(minutes=59)


def test_at_course_end_labs_are_powered_off_then_warned_then_deleted():
    lab = _running_lab(quota={"lifetime_days_after_end": 7})
    course = lab.course
    # Noon of a fixed day, not the clock: the deletion falls at midnight, so "six days and an
    # hour later" taken from 23:00 would already be past it.
    noon = timezone.make_aware(datetime.combine(timezone.localdate(), time(12)))
    course.ends_on = noon.date() - timedelta(days=1)
    course.save()
    first = lifecycle.tick(now=noon)
    assert first.course_ended == [lab.pk]
    assert "has ended" in Notice.objects.filter(user=lab.student).first().text

    Operation.objects.filter(lab=lab).update(state=Operation.State.SUCCEEDED)
    Lab.objects.filter(pk=lab.pk).update(running_since=None)
    day_before = noon + timedelta(days=6, hours=1)
    warned = lifecycle.tick(now=day_before)
    assert warned.warned == [lab.pk] and warned.deleted == []
    assert "will be deleted on" in Notice.objects.filter(user=lab.student).last().text

    deleted = lifecycle.tick(now=noon + timedelta(days=8))
    assert deleted.deleted == [lab.pk]
    assert Operation.objects.filter(lab=lab, kind=Operation.Kind.DELETE, actor=None).exists()


def test_notices_are_shown_once_on_the_next_page(client):
    lab = _running_lab(quota={"lease_hours": 1})
    lifecycle.tick(now=lab.expires_at + timedelta(seconds=1))
    client.force_login(lab.student)
    first = client.get("/", HTTP_ACCEPT="text/html")
    assert b"lease of 1 h ended" in first.content
    second = client.get("/", HTTP_ACCEPT="text/html")
    assert b"lease of 1 h ended" not in second.content
    assert Notice.objects.get(user=lab.student).read_at is not None


def _in_error(lab):
    """A failed revert left the lab in error with its VMs still on."""
    Lab.objects.filter(pk=lab.pk).update(state=Lab.State.ERROR, error="The revert stopped part way.")
    lab.refresh_from_db()
    return lab


def test_a_running_lab_in_error_is_powered_off_at_lease_end_idle_and_course_end():
    leased = _in_error(_running_lab(quota={"lease_hours": 2}))
    assert lifecycle.tick(now=leased.expires_at + timedelta(seconds=1)).lease_ended == [leased.pk]

    idle = _in_error(_running_lab(quota={"idle_minutes": 30}))
    assert lifecycle.tick(now=timezone.now() + timedelta(minutes=31)).idle == [idle.pk]

    ended = _in_error(_running_lab())
    ended.course.ends_on = timezone.localdate() - timedelta(days=1)
    ended.course.save()
    assert lifecycle.tick().course_ended == [ended.pk]


def test_busy_and_provisioning_labs_wait_for_their_operation():
    lab = _running_lab(quota={"lease_hours": 2})
    for state in (Lab.State.BUSY, Lab.State.PROVISIONING, Lab.State.DELETING):
        Lab.objects.filter(pk=lab.pk).update(state=state)
        assert lifecycle.tick(now=lab.expires_at + timedelta(seconds=1)).lease_ended == []
    assert not _power_offs(lab).exists()


def test_a_system_power_off_that_failed_is_not_repeated_every_minute():
    """A lab in error may not power off (a VM vanished): one try, then a pause, not a notice a minute."""
    lab = _in_error(_running_lab(quota={"lease_hours": 2}))
    after = lab.expires_at + timedelta(seconds=1)
    assert lifecycle.tick(now=after).lease_ended == [lab.pk]
    _power_offs(lab).update(state=Operation.State.FAILED, finished_at=after)
    assert lifecycle.tick(now=after + timedelta(minutes=1)).lease_ended == []
    assert Notice.objects.filter(user=lab.student).count() == 1
    assert lifecycle.tick(now=after + timedelta(minutes=16)).lease_ended == [lab.pk]


def test_a_lease_stored_out_of_range_never_breaks_a_power_on_or_the_sweep():
    """Issue 10: lease_hours 99999999 once made every power-on fail with OverflowError, and the
    watcher with it. The model refuses it now; a value stored around the model is clamped."""
    from courses.bounds import MAX_IDLE_MINUTES, MAX_LEASE_HOURS
    from courses.models import CourseQuota

    course = open_course(students=1, quota={"lease_hours": 2, "idle_minutes": 30})
    CourseQuota.objects.filter(course=course).update(lease_hours=99_999_999, idle_minutes=10**9)
    student = course.enrollments.get().student
    lab = services.lab_start(course=course, student=student, actor=student).lab
    Lab.objects.filter(pk=lab.pk).update(state=Lab.State.READY)
    lab.vms.update(power_state="poweredOn")
    lab.refresh_from_db()
    lab = services.lab_power_changed(lab=lab)
    assert abs((lab.expires_at - timezone.now()) - timedelta(hours=MAX_LEASE_HOURS)) < timedelta(minutes=1)
    result = lifecycle.tick(now=timezone.now() + timedelta(minutes=MAX_IDLE_MINUTES - 1))
    assert result.idle == [] and result.lease_ended == []
