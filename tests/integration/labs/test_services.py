"""labs/services.py: operations are recorded and enqueued on commit, with permission checks."""

import re
from datetime import timedelta

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone

from labs import services
from labs.models import Lab, Operation
from tests.factories import AdminFactory, EndpointFactory, StudentFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def enqueued(monkeypatch):
    sent: list[tuple[int, str]] = []
    monkeypatch.setattr(
        services.dispatch, "send_operation", lambda operation_id, task_id: sent.append((operation_id, task_id))
    )
    return sent


def test_start_enqueues_only_after_commit(enqueued, django_capture_on_commit_callbacks):
    admin, endpoint = AdminFactory(), EndpointFactory()
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        operation = services.endpoint_check_start(endpoint=endpoint, actor=admin)
        assert enqueued == []
    assert len(callbacks) == 2  # the "queued" push and the hand-over to a worker
    assert enqueued == [(operation.pk, operation.celery_task_id)]
    assert operation.state == Operation.State.QUEUED
    assert operation.actor == admin


def test_a_rolled_back_request_leaves_no_row_and_no_message(enqueued, django_capture_on_commit_callbacks):
    admin, endpoint = AdminFactory(), EndpointFactory()
    with django_capture_on_commit_callbacks(execute=True), pytest.raises(RuntimeError), transaction.atomic():
        services.endpoint_check_start(endpoint=endpoint, actor=admin)
        raise RuntimeError("the request failed later")
    assert enqueued == []
    assert not Operation.objects.exists()


def test_with_the_queue_down_the_click_still_succeeds_and_the_failure_is_logged(
    monkeypatch, caplog, django_capture_on_commit_callbacks
):
    """The row is committed before the message is sent: a broker that is down must not turn the
    click into a 500 (the reaper sends queued operations again after five minutes)."""
    from labs import dispatch

    def broker_down(*args, **kwargs):
        raise ConnectionError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    monkeypatch.setattr(dispatch, "send_operation", broker_down)
    admin, endpoint = AdminFactory(), EndpointFactory()
    with caplog.at_level("ERROR", logger="labs.services"), django_capture_on_commit_callbacks(execute=True):
        operation = services.endpoint_check_start(endpoint=endpoint, actor=admin)
    assert Operation.objects.get(pk=operation.pk).state == Operation.State.QUEUED
    [record] = [r for r in caplog.records if r.name == "labs.services"]
    assert f"#{operation.pk}" in record.getMessage() and "sends it again" in record.getMessage()
    assert record.exc_info is not None


def test_students_cannot_check_endpoints(enqueued):
    with pytest.raises(PermissionDenied, match="Only admins"):
        services.endpoint_check_start(endpoint=EndpointFactory(), actor=StudentFactory())
    assert not Operation.objects.exists()


def test_cancel_a_queued_operation_ends_it_at_once(enqueued):
    admin = AdminFactory()
    operation = services.endpoint_check_start(endpoint=EndpointFactory(), actor=admin)
    cancelled = services.operation_cancel(operation=operation, actor=admin)
    assert cancelled.state == Operation.State.CANCELLED
    assert cancelled.finished_at is not None


def test_cancel_a_running_operation_asks_it_to_stop(enqueued):
    admin = AdminFactory()
    operation = services.endpoint_check_start(endpoint=EndpointFactory(), actor=admin)
    Operation.objects.filter(pk=operation.pk).update(state=Operation.State.RUNNING)
    cancelled = services.operation_cancel(operation=operation, actor=admin)
    assert cancelled.state == Operation.State.RUNNING
    assert cancelled.cancel_requested


def test_only_the_actor_or_an_admin_may_cancel(enqueued):
    operation = services.endpoint_check_start(endpoint=EndpointFactory(), actor=AdminFactory())
    with pytest.raises(PermissionDenied):
        services.operation_cancel(operation=operation, actor=StudentFactory())


def test_a_finished_operation_cannot_be_cancelled(enqueued):
    admin = AdminFactory()
    operation = services.endpoint_check_start(endpoint=EndpointFactory(), actor=admin)
    Operation.objects.filter(pk=operation.pk).update(state=Operation.State.SUCCEEDED)
    with pytest.raises(ValidationError, match="already ended"):
        services.operation_cancel(operation=operation, actor=admin)


# Labs: permission, busy and quota checks at the click (no vCenter: nothing is enqueued).

from core.errors import Conflict, QuotaExceeded  # noqa: E402
from labs.models import LabSnapshot  # noqa: E402
from tests.factories import open_course  # noqa: E402


def _student(course, index=0):
    return course.enrollments.order_by("student__username")[index].student


def _ready(lab: Lab) -> Lab:
    """Pretend the provision finished: the lab is ready and running."""
    from django.utils import timezone

    Operation.objects.filter(lab=lab).update(state=Operation.State.SUCCEEDED)
    Lab.objects.filter(pk=lab.pk).update(state=Lab.State.READY, running_since=timezone.now())
    lab.refresh_from_db()
    return lab


def test_a_student_starts_their_own_lab(enqueued):
    course = open_course()
    student = _student(course)
    operation = services.lab_start(course=course, student=student, actor=student)
    lab = operation.lab
    assert (operation.kind, lab.state, lab.student) == (Operation.Kind.PROVISION, Lab.State.PROVISIONING, student)
    assert lab.vms.count() == 2 and lab.vcpu == 5
    [network] = lab.networks.all()
    assert network.vlan_id == lab.endpoint.vlan_min


def test_a_student_cannot_start_a_lab_for_someone_else_or_in_a_course_they_are_not_in(enqueued):
    course, other = open_course(), open_course()
    student, classmate = _student(course, 0), _student(course, 1)
    with pytest.raises(PermissionDenied):
        services.lab_start(course=course, student=classmate, actor=student)
    with pytest.raises(PermissionDenied, match="not enrolled"):
        services.lab_start(course=other, student=student, actor=student)


def test_staff_starting_a_lab_of_their_own_are_told_staff_have_none(enqueued):
    course = open_course()
    for staff in (course.instructors.get(), AdminFactory()):
        with pytest.raises(PermissionDenied) as refused:
            services.lab_start(course=course, student=staff, actor=staff)
        assert "staff have no labs of their own" in str(refused.value)
        assert "not enrolled" not in str(refused.value)
    assert not Lab.objects.exists()


def test_labs_do_not_start_in_a_closed_course(enqueued):
    course = open_course()
    course.state = "closed"
    course.save()
    student = _student(course)
    with pytest.raises(ValidationError, match="labs cannot start"):
        services.lab_start(course=course, student=student, actor=student)


def test_labs_do_not_start_after_the_courses_last_day_even_if_it_is_still_open(enqueued):
    course = open_course()
    course.ends_on = timezone.localdate() - timedelta(days=1)
    course.save()
    student = _student(course)
    with pytest.raises(ValidationError, match=r"ended on .*labs cannot start"):
        services.lab_start(course=course, student=student, actor=student)
    assert not Lab.objects.exists()


@pytest.mark.parametrize("ended", ["closed", "past its last day"])
def test_after_the_course_students_cannot_power_their_lab_on_but_staff_can(enqueued, ended):
    course = open_course()
    student = _student(course)
    lab = _ready(services.lab_start(course=course, student=student, actor=student).lab)
    lab.vms.update(power_state="poweredOff")
    running = LabSnapshot.objects.create(lab=lab, name="running", power_states={"esxi-01": "poweredOn"})
    stopped = LabSnapshot.objects.create(lab=lab, name="stopped", power_states={"esxi-01": "poweredOff"})
    if ended == "closed":
        course.state = "closed"
    else:
        course.ends_on = timezone.localdate() - timedelta(days=1)
    course.save()
    lab.refresh_from_db()

    refused_actions = [
        lambda: services.lab_power(lab=lab, actor=student, action="on"),
        lambda: services.lab_power(lab=lab, actor=student, action="reset"),
        lambda: services.lab_reset(lab=lab, actor=student),
        lambda: services.lab_revert(lab=lab, actor=student, snapshot=running),  # it powers on
    ]
    for action in refused_actions:
        with pytest.raises(PermissionDenied, match="has ended: its labs can no longer be powered on"):
            action()
    assert not Operation.objects.filter(lab=lab).exclude(kind=Operation.Kind.PROVISION).exists()

    # What leaves the lab off is still the student's to do; staff may power it on.
    reverted = services.lab_revert(lab=lab, actor=student, snapshot=stopped)
    Operation.objects.filter(pk=reverted.pk).update(state=Operation.State.SUCCEEDED)
    powered = services.lab_power(lab=lab, actor=course.instructors.get(), action="on")
    assert powered.params["action"] == "on"


def test_vlans_are_unique_and_come_back_when_a_lab_is_deleted(enqueued):
    course = open_course(students=2)
    first = services.lab_start(course=course, student=_student(course, 0), actor=_student(course, 0)).lab
    second = services.lab_start(course=course, student=_student(course, 1), actor=_student(course, 1)).lab
    assert first.networks.get().vlan_id != second.networks.get().vlan_id
    first.networks.update(released=True)
    third = services.lab_start(course=course, student=_student(course, 0), actor=_student(course, 0))
    assert third.lab.networks.get().vlan_id == first.networks.get().vlan_id


def test_a_second_action_on_a_busy_lab_is_refused_naming_the_running_operation(enqueued):
    course = open_course()
    student = _student(course)
    lab = _ready(services.lab_start(course=course, student=student, actor=student).lab)
    running = services.lab_snapshot_create(lab=lab, actor=student, name="before upgrade")
    with pytest.raises(Conflict, match=rf"take snapshot #{running.pk} is queued"):
        services.lab_power(lab=lab, actor=student, action="off")


def test_a_classmate_cannot_touch_my_lab(enqueued):
    course = open_course(students=2)
    me, classmate = _student(course, 0), _student(course, 1)
    lab = _ready(services.lab_start(course=course, student=me, actor=me).lab)
    for action in (
        lambda: services.lab_snapshot_create(lab=lab, actor=classmate, name="x"),
        lambda: services.lab_reset(lab=lab, actor=classmate),
        lambda: services.lab_power(lab=lab, actor=classmate, action="off"),
        lambda: services.lab_clone(lab=lab, actor=classmate),
        lambda: services.lab_delete(lab=lab, actor=classmate),
    ):
        with pytest.raises(PermissionDenied):
            action()


def test_the_instructor_may_act_on_a_students_lab(enqueued):
    course = open_course()
    student = _student(course)
    lab = _ready(services.lab_start(course=course, student=student, actor=student).lab)
    instructor = course.instructors.get()
    assert services.lab_power(lab=lab, actor=instructor, action="off").kind == Operation.Kind.POWER


def test_running_labs_quota_names_the_limit_and_the_usage(enqueued):
    course = open_course(students=3, quota={"running_labs": 2})
    for index in range(2):
        student = _student(course, index)
        services.lab_start(course=course, student=student, actor=student)
    third = _student(course, 2)
    with pytest.raises(QuotaExceeded, match="the limit is 2 and 2 are in use"):
        services.lab_start(course=course, student=third, actor=third)
    assert not Lab.objects.filter(student=third).exists()


def test_zero_means_none_allowed(enqueued):
    course = open_course(quota={"snapshots_per_lab": 0})
    student = _student(course)
    lab = _ready(services.lab_start(course=course, student=student, actor=student).lab)
    with pytest.raises(QuotaExceeded, match="none are allowed"):
        services.lab_snapshot_create(lab=lab, actor=student, name="one")


def test_labs_per_student_counts_clones_and_top_ups_add_to_it(enqueued):
    from courses import services as course_services

    course = open_course(quota={"labs_per_student": 1})
    student = _student(course)
    lab = _ready(services.lab_start(course=course, student=student, actor=student).lab)
    with pytest.raises(QuotaExceeded, match="another lab"):
        services.lab_clone(lab=lab, actor=student)
    course_services.top_up_grant(course=course, actor=course.instructors.get(), student=student, extra_labs=1)
    clone = services.lab_clone(lab=lab, actor=student)
    assert clone.lab.source_lab == lab and clone.lab.number == 2
    with pytest.raises(Conflict, match="busy"):
        services.lab_reset(lab=lab, actor=student)  # the source is read while the clone is made


def test_vcpu_and_memory_totals_of_the_class(enqueued):
    course = open_course(students=2, quota={"vcpu_total": 8})
    first = _student(course, 0)
    services.lab_start(course=course, student=first, actor=first)
    second = _student(course, 1)
    with pytest.raises(QuotaExceeded, match=re.escape("virtual CPUs would be exceeded (this lab needs 5)")):
        services.lab_start(course=course, student=second, actor=second)


def test_no_hours_left_blocks_power_on(enqueued):
    course = open_course(quota={"lab_hours_per_student": 1})
    student = _student(course)
    lab = _ready(services.lab_start(course=course, student=student, actor=student).lab)
    Lab.objects.filter(pk=lab.pk).update(running_since=None, hours_used=1.5)
    lab.refresh_from_db()
    with pytest.raises(QuotaExceeded, match="No lab hours are left"):
        services.lab_power(lab=lab, actor=student, action="on")
    assert services.lab_power(lab=lab, actor=student, action="off").kind == Operation.Kind.POWER


def test_a_quota_lowered_below_usage_blocks_new_work_only(enqueued):
    from courses import services as course_services

    course = open_course(students=2)
    first = _student(course, 0)
    lab = _ready(services.lab_start(course=course, student=first, actor=first).lab)
    course_services.quota_update(course=course, actor=AdminFactory(), running_labs=0)
    second = _student(course, 1)
    with pytest.raises(QuotaExceeded):
        services.lab_start(course=course, student=second, actor=second)
    # The lab that runs keeps working: a snapshot is no new running lab.
    assert services.lab_snapshot_create(lab=lab, actor=first, name="still fine")


def test_the_baseline_cannot_be_deleted(enqueued):
    course = open_course()
    student = _student(course)
    lab = _ready(services.lab_start(course=course, student=student, actor=student).lab)
    baseline = LabSnapshot.objects.create(lab=lab, name="Baseline", is_baseline=True)
    with pytest.raises(ValidationError, match="cannot be deleted"):
        services.lab_snapshot_delete(snapshot=baseline, actor=student)


def test_provision_the_class_starts_one_lab_per_student_and_says_who_was_skipped(enqueued):
    course = open_course(students=3, quota={"running_labs": 2})
    first = _student(course, 0)
    services.lab_start(course=course, student=first, actor=first)
    result = services.course_provision(course=course, actor=course.instructors.get())
    assert len(result.started) == 1
    assert result.skipped[first.username] == "already has a lab"
    [why] = [why for name, why in result.skipped.items() if name != first.username]
    assert "the limit is 2" in why


def test_labs_of_a_student_out_of_hours_are_powered_off_with_a_notice(enqueued, monkeypatch):
    from datetime import timedelta

    from django.utils import timezone

    from labs import realtime as lab_realtime

    notices = []
    monkeypatch.setattr(lab_realtime, "notify_user", lambda user_id, text, level="warning": notices.append(text))
    course = open_course(students=2, quota={"lab_hours_per_student": 2})
    spent, fresh = _student(course, 0), _student(course, 1)
    spent_lab = _ready(services.lab_start(course=course, student=spent, actor=spent).lab)
    fresh_lab = _ready(services.lab_start(course=course, student=fresh, actor=fresh).lab)
    Lab.objects.filter(pk=spent_lab.pk).update(hours_used=1.5, running_since=timezone.now() - timedelta(hours=1))

    started = services.labs_out_of_hours_power_off()
    assert [(op.lab, op.params["action"], op.actor) for op in started] == [(spent_lab, "off", None)]
    assert "used all 2 lab hours" in notices[0]
    assert not Operation.objects.filter(lab=fresh_lab, kind=Operation.Kind.POWER).exists()
    # The next minute finds the lab busy with that power-off and starts nothing twice.
    assert services.labs_out_of_hours_power_off() == []


def test_a_running_lab_in_error_is_powered_off_out_of_hours_too(enqueued):
    from datetime import timedelta

    from django.utils import timezone

    course = open_course(students=1, quota={"lab_hours_per_student": 2})
    student = _student(course)
    lab = _ready(services.lab_start(course=course, student=student, actor=student).lab)
    Lab.objects.filter(pk=lab.pk).update(
        state=Lab.State.ERROR, hours_used=1.5, running_since=timezone.now() - timedelta(hours=1)
    )
    started = services.labs_out_of_hours_power_off()
    assert [(op.lab, op.params["action"]) for op in started] == [(lab, "off")]


# A clone is a new lab that ends powered on: every check a start makes, on the source's version.


def test_no_clones_in_a_closed_course(enqueued):
    course = open_course()
    student = _student(course)
    lab = _ready(services.lab_start(course=course, student=student, actor=student).lab)
    course.state = "closed"
    course.save()
    with pytest.raises(ValidationError, match="labs cannot start"):
        services.lab_clone(lab=lab, actor=student)
    assert Lab.objects.filter(student=student).count() == 1


def test_a_clone_needs_a_free_running_slot_and_lab_hours(enqueued):
    from courses import services as course_services

    course = open_course(students=1)
    student = _student(course)
    lab = _ready(services.lab_start(course=course, student=student, actor=student).lab)
    admin = AdminFactory()
    course_services.quota_update(course=course, actor=admin, running_labs=1)
    with pytest.raises(QuotaExceeded, match="No more labs can run at once"):
        services.lab_clone(lab=lab, actor=student)
    course_services.quota_update(course=course, actor=admin, running_labs=None, lab_hours_per_student=1)
    Lab.objects.filter(pk=lab.pk).update(running_since=None, hours_used=1.5)
    lab.refresh_from_db()
    with pytest.raises(QuotaExceeded, match="No lab hours are left"):
        services.lab_clone(lab=lab, actor=student)
    assert Lab.objects.filter(student=student).count() == 1


def test_a_clone_is_made_of_the_source_labs_version_and_checked_against_it(enqueued):
    """The course moved on to a bigger version: a clone copies the source's VMs, so it has the
    source's roles and sizes (and endpoint), and the quota counts those."""
    from courses import services as course_services
    from tests.factories import published_version

    course = open_course(quota={"vcpu_total": 10})
    student, instructor = _student(course), course.instructors.get()
    lab = _ready(services.lab_start(course=course, student=student, actor=student).lab)
    bigger = published_version(
        owner=instructor, vms=[("esxi-01", 8, 32768), ("esxi-02", 8, 32768), ("router", 1, 1024)]
    )
    course_services.course_update(course=course, actor=instructor, template_version=bigger)

    clone = services.lab_clone(lab=lab, actor=student).lab
    assert clone.template_version == lab.template_version
    assert (clone.vcpu, clone.memory_mb, clone.endpoint) == (lab.vcpu, lab.memory_mb, lab.endpoint)
    assert sorted(clone.vms.values_list("role", flat=True)) == ["esxi-01", "router"]


# Running slots: a lab counts from the click that will power it on, not from when its VMs are on.


def _stopped_labs(course, count):
    labs = []
    for index in range(count):
        student = _student(course, index)
        labs.append(_ready(services.lab_start(course=course, student=student, actor=student).lab))
    Lab.objects.filter(course=course).update(running_since=None)
    for lab in labs:
        lab.refresh_from_db()
    return labs


def test_power_ons_queued_together_do_not_share_one_free_slot(enqueued):
    from courses import services as course_services

    course = open_course(students=3)
    first, second, third = _stopped_labs(course, 3)
    course_services.quota_update(course=course, actor=AdminFactory(), running_labs=1)

    on = services.lab_power(lab=first, actor=first.student, action="on")
    for refused in (
        lambda: services.lab_power(lab=second, actor=second.student, action="on"),
        lambda: services.lab_power(lab=second, actor=second.student, action="reset"),  # powers off VMs on
        lambda: services.lab_reset(lab=third, actor=third.student),
    ):
        with pytest.raises(QuotaExceeded, match="the limit is 1 and 1 are in use"):
            refused()

    # The slot is free again once that power-on is cancelled; a power-off never takes one.
    services.operation_cancel(operation=on, actor=first.student)
    services.lab_power(lab=first, actor=first.student, action="off")
    assert services.lab_power(lab=second, actor=second.student, action="on").kind == Operation.Kind.POWER


def test_a_revert_that_powers_vms_on_holds_a_slot_and_one_that_does_not_holds_none(enqueued):
    from courses import services as course_services

    course = open_course(students=3)
    first, second, third = _stopped_labs(course, 3)
    course_services.quota_update(course=course, actor=AdminFactory(), running_labs=1)
    dark = LabSnapshot.objects.create(lab=first, name="all off", power_states={"1": "poweredOff"})
    services.lab_revert(lab=first, actor=first.student, snapshot=dark)
    lit = LabSnapshot.objects.create(lab=second, name="all on", power_states={"1": "poweredOn"})
    services.lab_revert(lab=second, actor=second.student, snapshot=lit)
    with pytest.raises(QuotaExceeded, match="the limit is 1 and 1 are in use"):
        services.lab_power(lab=third, actor=third.student, action="on")


# Cancelling a build that never started: the lab it was for goes, with its VLANs and its slot.


@pytest.fixture
def pushed_labs(monkeypatch):
    from labs import realtime as lab_realtime

    pushed: list[tuple[int, str]] = []
    original = lab_realtime.lab_changed

    def recorded(lab, **activity):
        pushed.append((lab.pk, lab.state))
        original(lab, **activity)

    monkeypatch.setattr(lab_realtime, "lab_changed", recorded)
    return pushed


def test_cancelling_a_queued_provision_deletes_the_lab_and_frees_its_vlans_and_slot(enqueued, pushed_labs):
    course = open_course(students=2, quota={"running_labs": 1})
    first, second = _student(course, 0), _student(course, 1)
    operation = services.lab_start(course=course, student=first, actor=first)
    lab = operation.lab
    vlan = lab.networks.get().vlan_id
    with pytest.raises(QuotaExceeded):
        services.lab_start(course=course, student=second, actor=second)

    services.operation_cancel(operation=operation, actor=first)
    lab.refresh_from_db()
    assert lab.state == Lab.State.DELETED and lab.deleted_at is not None
    assert list(lab.networks.values_list("released", flat=True)) == [True]
    assert (lab.pk, Lab.State.DELETED) in pushed_labs
    assert services.lab_start(course=course, student=second, actor=second).lab.networks.get().vlan_id == vlan


def test_cancelling_a_queued_clone_deletes_the_clone_and_frees_its_source(enqueued, pushed_labs):
    course = open_course()
    student = _student(course)
    source = _ready(services.lab_start(course=course, student=student, actor=student).lab)
    operation = services.lab_clone(lab=source, actor=student)
    services.operation_cancel(operation=operation, actor=student)
    clone = Lab.objects.get(pk=operation.lab_id)
    assert clone.state == Lab.State.DELETED and clone.networks.filter(released=False).count() == 0
    source.refresh_from_db()
    assert source.state == Lab.State.READY
    assert services.lab_reset(lab=source, actor=student).kind == Operation.Kind.RESET


def test_cancelling_other_operations_or_a_running_build_leaves_the_lab(enqueued):
    course = open_course(students=2)
    student, other = _student(course, 0), _student(course, 1)
    lab = _ready(services.lab_start(course=course, student=student, actor=student).lab)
    services.operation_cancel(operation=services.lab_snapshot_create(lab=lab, actor=student, name="x"), actor=student)
    lab.refresh_from_db()
    assert lab.state == Lab.State.READY
    # A running build is asked to stop; its job removes what it made (labs.jobs.lab_ops).
    building = services.lab_start(course=course, student=other, actor=other)
    Operation.objects.filter(pk=building.pk).update(state=Operation.State.RUNNING)
    services.operation_cancel(operation=building, actor=other)
    assert Lab.objects.get(pk=building.lab_id).state == Lab.State.PROVISIONING


def test_the_watcher_marks_vanished_vms_of_a_lab_in_error_missing_once_and_stops_its_hours(enqueued, monkeypatch):
    """A full resync without the lab's VMs (vCenter lost them) while the lab is in error
    after a failed operation: the rows say missing, the hours stop, the lab says why."""
    pushed: list[str] = []
    monkeypatch.setattr(services.realtime, "lab_changed", lambda lab, **activity: pushed.append(lab.error))
    course = open_course()
    student = _student(course)
    lab = _ready(services.lab_start(course=course, student=student, actor=student).lab)
    for number, vm in enumerate(lab.vms.all()):
        vm.moref, vm.power_state = f"vm-{900 + number}", "poweredOn"
        vm.save(update_fields=["moref", "power_state"])
    Lab.objects.filter(pk=lab.pk).update(state=Lab.State.ERROR, error="Revert stopped part way.")

    services.lab_vms_observed(endpoint_id=lab.endpoint_id, updates=[], full_resync=True)
    lab.refresh_from_db()
    assert lab.state == Lab.State.ERROR
    assert lab.error.endswith("disappeared from vCenter. Reset rebuilds the lab."), lab.error
    assert set(lab.vms.values_list("power_state", flat=True)) == {"missing"}
    assert lab.running_since is None, "a vanished VM does not run: no more hours"

    pushed.clear()
    services.lab_vms_observed(endpoint_id=lab.endpoint_id, updates=[], full_resync=True)
    assert pushed == [], "VMs known missing are not news at the next resync"


def test_a_student_is_told_who_acted_on_their_lab_and_not_about_their_own_clicks(monkeypatch):
    """Issue 10: a reset by an instructor did not say who did it on the student's page."""
    from core.models import Notice
    from tests.factories import open_course

    monkeypatch.setattr(services.dispatch, "send_operation", lambda *args, **kwargs: None)
    course = open_course(students=1)
    student = course.enrollments.get().student
    lab = services.lab_start(course=course, student=student, actor=student).lab
    assert not Notice.objects.filter(user=student).exists(), "their own start is no news to them"
    Operation.objects.filter(lab=lab).update(state=Operation.State.SUCCEEDED)
    Lab.objects.filter(pk=lab.pk).update(state=Lab.State.READY)
    instructor = course.instructors.get()
    services.lab_reset(lab=Lab.objects.get(pk=lab.pk), actor=instructor)
    notice = Notice.objects.get(user=student)
    assert notice.text == f"{instructor.get_full_name()} started “reset lab” on your lab {lab.name}."
    assert notice.level == "info"


def test_a_delete_the_portal_asked_for_that_keeps_failing_is_tried_again_ever_less_often(enqueued):
    """A drained pool lab or a course's lab past its lifetime whose delete fails (vCenter refuses)
    is not asked for again every minute: after 1 min, 2, 4... at most 6 h; an admin's Delete is
    not held back, and anything succeeding on the lab starts the count again."""
    from tests.factories import lab_row, open_course

    course = open_course(students=1)
    lab = lab_row(course, course.enrollments.get().student)
    now = timezone.now()

    def fail_delete(at):
        operation = services.lab_system_delete(lab=lab, reason="course_lifetime", now=at)
        assert operation is not None, f"no delete at {at}"
        Operation.objects.filter(pk=operation.pk).update(
            state=Operation.State.FAILED, finished_at=at, error="vCenter refused the delete."
        )
        Lab.objects.filter(pk=lab.pk).update(state=Lab.State.ERROR)

    fail_delete(now)
    assert services.lab_system_delete(lab=lab, reason="course_lifetime", now=now + timedelta(seconds=59)) is None
    fail_delete(now + timedelta(minutes=1))
    assert services.system_delete_retry_at(lab) == now + timedelta(minutes=3)
    assert services.lab_system_delete(lab=lab, reason="course_lifetime", now=now + timedelta(minutes=2)) is None
    fail_delete(now + timedelta(minutes=3))
    assert services.system_delete_retry_at(lab) == now + timedelta(minutes=7)
    for _ in range(20):
        Operation.objects.create(
            lab=lab, kind=Operation.Kind.DELETE, state=Operation.State.FAILED, finished_at=now, endpoint=lab.endpoint
        )
    assert services.system_delete_retry_at(lab) == now + timedelta(minutes=3, hours=6)  # from the last failure

    # An admin's own Delete is not held back.
    admin_delete = services.lab_delete(lab=lab, actor=AdminFactory())
    assert admin_delete.kind == Operation.Kind.DELETE
    Operation.objects.filter(pk=admin_delete.pk).update(state=Operation.State.SUCCEEDED, finished_at=now)
    assert services.system_delete_retry_at(lab) is None
