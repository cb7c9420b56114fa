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


def test_operations_carry_the_words_the_pages_show_so_the_script_repeats_none():
    course = open_course(students=1)
    source = _ready_lab(course)
    clone = services.lab_clone(lab=source, actor=source.student)
    words = realtime.operation_payload(clone)
    assert words["state_label"] == "Queued"
    assert words["step_label"] == "Queued: waiting for a free worker."
    assert words["busy_label"] == "Busy: clone lab is queued for a worker. The buttons come back when it is done."
    assert words["source_busy_label"] == (
        f"Busy: this lab is being copied into {clone.lab.name}. The buttons come back when that is done."
    )
    assert words["outcome_label"] == ""

    Operation.objects.filter(pk=clone.pk).update(state=Operation.State.FAILED, error="vCenter ran out of disk.")
    clone.refresh_from_db()
    ended = realtime.operation_payload(clone)
    assert (ended["state_label"], ended["step_label"], ended["outcome_label"]) == (
        "Failed",
        "vCenter ran out of disk.",
        "It failed.",
    )
    assert ended["busy_label"] == ended["source_busy_label"] == ""


def test_a_ready_labs_words_follow_its_vms_power_and_come_with_each_vm_message(monkeypatch):
    from labs.models import LabVM

    lab = _ready_lab(open_course(students=1))
    LabVM.objects.filter(lab=lab).update(power_state=LabVM.PowerState.OFF)
    assert realtime.lab_payload(lab)["state_label"] == "Ready · powered off"
    sent = []
    monkeypatch.setattr(realtime.realtime, "publish", lambda groups, message: sent.append(message))
    vm = lab.vms.first()
    vm.power_state = LabVM.PowerState.ON
    vm.save(update_fields=["power_state"])
    realtime.vm_changed(vm)
    assert sent[-1]["lab_state_label"] == "Partly running"
