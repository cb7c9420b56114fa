"""labs/permissions.py: who may see and act on which lab, and the services that ask it."""

from datetime import timedelta

import pytest
from django.core.exceptions import PermissionDenied
from django.utils import timezone

from courses import services as course_services
from labs import permissions, services
from labs.models import Lab, Operation
from tests.factories import AdminFactory, open_course

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def no_queue(monkeypatch):
    monkeypatch.setattr(services.dispatch, "send_operation", lambda *args, **kwargs: None)


def _ready_lab(course, student) -> Lab:
    lab = services.lab_start(course=course, student=student, actor=student).lab
    Operation.objects.filter(lab=lab).update(state=Operation.State.SUCCEEDED)
    Lab.objects.filter(pk=lab.pk).update(state=Lab.State.READY, running_since=timezone.now())
    lab.refresh_from_db()
    return lab


def _remove(course, student) -> None:
    course_services.enrollment_remove(
        enrollment=course.enrollments.get(student=student), actor=course.instructors.get()
    )


def test_the_enrolled_owner_the_courses_instructors_and_admins_see_and_act_a_classmate_neither():
    course = open_course(students=2)
    owner, classmate = (e.student for e in course.enrollments.order_by("student__username"))
    lab = _ready_lab(course, owner)
    for user in (owner, course.instructors.get(), AdminFactory()):
        assert permissions.can_view_lab(user, lab) and permissions.can_act_on_lab(user, lab)
    assert not permissions.can_view_lab(classmate, lab)
    assert not permissions.can_act_on_lab(classmate, lab)


def test_a_student_removed_from_the_course_still_sees_their_lab_but_cannot_act_on_it():
    course = open_course(students=1)
    student = course.enrollments.get().student
    lab = _ready_lab(course, student)
    _remove(course, student)

    assert permissions.can_view_lab(student, lab)
    assert not permissions.can_act_on_lab(student, lab)
    for action in (
        lambda: services.lab_snapshot_create(lab=lab, actor=student, name="after removal"),
        lambda: services.lab_power(lab=lab, actor=student, action="off"),
        lambda: services.lab_reset(lab=lab, actor=student),
        lambda: services.lab_clone(lab=lab, actor=student),
        lambda: services.lab_delete(lab=lab, actor=student),
        lambda: services.lab_extend_lease(lab=lab, actor=student),
    ):
        with pytest.raises(PermissionDenied, match="no longer enrolled"):
            action()
    assert list(Operation.objects.filter(lab__student=student).values_list("kind", flat=True)) == ["provision"]
    assert Lab.objects.filter(student=student).count() == 1  # no clone either

    # The course's instructors (and admins) still act on it: they power it off or delete it.
    instructor = course.instructors.get()
    assert permissions.can_act_on_lab(instructor, lab)
    assert services.lab_power(lab=lab, actor=instructor, action="off").kind == Operation.Kind.POWER


def test_a_removed_student_looking_at_their_lab_does_not_keep_it_from_idling():
    course = open_course(students=1)
    student = course.enrollments.get().student
    lab = _ready_lab(course, student)
    hour_ago = timezone.now() - timedelta(hours=1)
    Lab.objects.filter(pk=lab.pk).update(last_activity_at=hour_ago)
    _remove(course, student)
    services.lab_touch(lab=lab, user=student)
    lab.refresh_from_db()
    assert lab.last_activity_at == hour_ago
