"""labs/realtime.py: the full states a socket sends first, as the services see the lab."""

from __future__ import annotations

import pytest

from labs import realtime, services
from labs.models import Lab, Operation
from tests.factories import open_course

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def no_queue(monkeypatch):
    monkeypatch.setattr(services.dispatch, "send_operation", lambda *args, **kwargs: None)


def _ready_lab(course, index=0) -> Lab:
    student = course.enrollments.order_by("student__username")[index].student
    lab = services.lab_start(course=course, student=student, actor=student).lab
    Operation.objects.filter(lab=lab).update(state=Operation.State.SUCCEEDED)
    Lab.objects.filter(pk=lab.pk).update(state=Lab.State.READY)
    lab.refresh_from_db()
    return lab


def test_a_lab_being_cloned_shows_the_clone_as_its_operation_in_both_full_states():
    """The source lab is busy while a clone is made from it (the services refuse other actions
    with 409): the page must show that operation, not an idle lab."""
    course = open_course(students=1)
    source = _ready_lab(course)
    clone = services.lab_clone(lab=source, actor=source.student)

    lab_state = realtime.lab_full_state(source, can_act=True)
    assert lab_state["operation"]["id"] == clone.pk
    assert lab_state["operation"]["kind"] == "clone"
    rows = {row["id"]: row for row in realtime.course_full_state(course.pk)["labs"]}
    assert rows[source.pk]["operation"]["id"] == clone.pk
    assert rows[clone.lab_id]["operation"]["id"] == clone.pk


def test_the_class_full_state_costs_the_same_few_queries_for_3_or_30_labs(django_assert_max_num_queries):
    small, large = open_course(students=3), open_course(students=30)
    for course in (small, large):
        for index in range(course.enrollments.count()):
            _ready_lab(course, index)
    with django_assert_max_num_queries(5) as small_queries:
        assert len(realtime.course_full_state(small.pk)["labs"]) == 3
    with django_assert_max_num_queries(len(small_queries.captured_queries)):
        assert len(realtime.course_full_state(large.pk)["labs"]) == 30
