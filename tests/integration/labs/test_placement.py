"""labs/placement.py: new labs spread over a course's vCenters, against two real simulators.

Builds run in-process (``labs.jobs.execute``), one at a time, so which endpoint a lab is placed on
depends only on what the database and Redis say, never on a worker's timing.
"""

import logging

import pytest
from django.core.exceptions import ValidationError

from courses import services as course_services
from courses.models import Course, VCenterEndpoint, VersionBaseline
from labs import capacity, placement, services
from labs.endpoints import endpoint_client
from labs.jobs import execute
from labs.models import Lab, Operation
from portal import simulator
from tests.factories import (
    TERM_END,
    TERM_START,
    AdminFactory,
    EndpointFactory,
    InstructorFactory,
    StudentFactory,
    open_course,
    simulator_endpoint,
)

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.integration]
LAB_FOLDER = "/DC0/vm/Nestlab Templates/Nested vSphere 8 Lab"


@pytest.fixture(scope="module")
def first_sim():
    """Publishing leaves baseline snapshots on the source VMs: simulators of this module's own."""
    server = simulator.start(args=["-demo"])
    yield server
    server.stop()


@pytest.fixture
def second_sim():
    """Per test: one test stops it."""
    server = simulator.start(args=["-demo"])
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def no_queue(monkeypatch):
    monkeypatch.setattr(services.dispatch, "send_operation", lambda *args, **kwargs: None)


def _forget_redis(endpoint):
    """Another test of this run may have used the same endpoint id (the database rolls back, Redis does not)."""
    connection = capacity._redis()
    connection.delete(*capacity._keys(endpoint.pk), *capacity._build_keys(endpoint.pk))
    placement.endpoint_reachable_mark(endpoint_id=endpoint.pk)


def two_vcenter_course(first_sim, second_sim, students: int) -> Course:
    """An open course on a version published to both simulators (the router VM: a quick clone)."""
    owner = InstructorFactory()
    first = simulator_endpoint(first_sim, name=f"first-{owner.pk}")
    second = simulator_endpoint(second_sim, name=f"second-{owner.pk}")
    for endpoint in (first, second):
        _forget_redis(endpoint)
    template = course_services.template_create(actor=owner, endpoint=first, name="Two vCenters")
    course_services.template_vm_add(
        template=template,
        actor=owner,
        role="router",
        source_moref=endpoint_client(first).get(f"{LAB_FOLDER}/router").moref,
        source_name="router",
        nic_networks=["lab"],
    )
    course_services.template_update(template=template, actor=owner, extra_endpoints=[second])
    publish = services.template_publish(template=template, actor=owner)
    execute(publish.pk)
    publish.refresh_from_db()
    assert publish.state == Operation.State.SUCCEEDED, publish.error
    course = course_services.course_create(
        actor=owner,
        title="Two vCenters",
        code=f"two-{owner.pk}",
        starts_on=TERM_START,
        ends_on=TERM_END,
        template_version=publish.template_version,
    )
    course_services.course_update(course=course, actor=owner, state=Course.State.OPEN)
    for _ in range(students):
        course_services.enrollment_add(course=course, actor=owner, student=StudentFactory())
    return course


def _endpoints(course):
    version = course.template_version
    return [version.template.endpoint, version.template.extra_endpoints.get()]


def _start(course, index) -> Operation:
    student = course.enrollments.order_by("pk")[index].student
    return services.lab_start(course=course, student=student, actor=student)


def _built(operation) -> Lab:
    execute(operation.pk)
    operation.refresh_from_db()
    assert operation.state == Operation.State.SUCCEEDED, operation.error
    return Lab.objects.get(pk=operation.lab_id)


def test_new_labs_go_to_the_vcenter_with_the_most_room_and_are_built_there(first_sim, second_sim):
    course = two_vcenter_course(first_sim, second_sim, students=2)
    first, second = _endpoints(course)

    # Both have all their slots free: the second lab goes where fewer labs are being built.
    operations = [_start(course, 0), _start(course, 1)]
    assert [operation.endpoint_id for operation in operations] == [first.pk, second.pk]

    for operation in operations:
        lab = _built(operation)
        vm = lab.vms.get()
        assert endpoint_client(lab.endpoint).find(vm.moref).name == vm.name, "built on its own vCenter"
        network = lab.networks.get()
        assert network.endpoint_id == lab.endpoint_id, "its VLAN is the endpoint's"
    loads = {load.endpoint.pk: load for load in placement.endpoint_loads([first, second])}
    assert (loads[first.pk].labs_running, loads[second.pk].labs_running) == (1, 1)
    assert (loads[first.pk].vms, loads[first.pk].memory_mb) == (1, course.template_version.memory_mb_total)


def test_maintenance_and_limits_are_skipped_and_none_left_is_a_refusal_in_words(first_sim, second_sim, caplog):
    course = two_vcenter_course(first_sim, second_sim, students=3)
    first, second = _endpoints(course)
    second.in_maintenance = True
    second.save(update_fields=["in_maintenance"])
    first.max_running_vms = 1
    first.full_clean()
    first.save(update_fields=["max_running_vms"])

    assert _start(course, 0).endpoint_id == first.pk, "the one in maintenance takes no new lab"
    with pytest.raises(ValidationError) as refused:
        _start(course, 1)
    assert refused.value.messages == [
        f"No vCenter can take a new lab of {course.code} now. Try again in a few minutes, or ask an admin."
    ]
    assert f"{first.name} is at its limit of 1 running VMs (1 now); {second.name} is in maintenance" in caplog.text, (
        "the details are in the log (and the admins' endpoint loads), not in a student's words"
    )
    assert Lab.objects.filter(course=course).count() == 1, "a refused start leaves no lab"

    second.in_maintenance = False
    second.save(update_fields=["in_maintenance"])
    assert _start(course, 1).endpoint_id == second.pk, "out of maintenance, it takes labs again"

    first.max_running_vms = 0
    with pytest.raises(ValidationError) as bounded:
        first.full_clean()
    assert "max_running_vms" in bounded.value.message_dict


def test_a_course_limited_to_one_vcenter_stays_there_and_may_name_only_those_its_version_serves(first_sim, second_sim):
    course = two_vcenter_course(first_sim, second_sim, students=2)
    first, second = _endpoints(course)
    admin = AdminFactory()
    course_services.course_update(course=course, actor=admin, endpoints=[second])
    assert [_start(course, i).endpoint_id for i in range(2)] == [second.pk, second.pk]

    elsewhere = simulator_endpoint(first_sim, name=f"elsewhere-{admin.pk}")
    with pytest.raises(ValidationError) as refused:
        course_services.course_update(course=course, actor=admin, endpoints=[first, elsewhere])
    assert refused.value.message_dict["endpoints"] == [
        f"{course.template_version} is not published to {elsewhere.name}: publish the template there first "
        "(its extra vCenters), or leave them out."
    ]


def test_a_stopped_vcenter_takes_no_new_labs_and_nothing_is_lost(first_sim, second_sim):
    course = two_vcenter_course(first_sim, second_sim, students=4)
    first, second = _endpoints(course)
    on_first, on_second = _built(_start(course, 0)), _built(_start(course, 1))
    assert (on_first.endpoint_id, on_second.endpoint_id) == (first.pk, second.pk)

    second_sim.stop()
    # Both hold one lab: the next two are spread, the second of them to the stopped vCenter.
    third, fourth = _start(course, 2), _start(course, 3)
    assert (third.endpoint_id, fourth.endpoint_id) == (first.pk, second.pk)
    execute(fourth.pk)
    fourth.refresh_from_db()
    assert fourth.state == Operation.State.FAILED
    moved = Operation.objects.get(pk=fourth.result["moved_to"]["operation"])
    assert moved.endpoint_id == first.pk and moved.lab_id == fourth.lab_id
    lab = _built(moved)
    assert lab.state == Lab.State.READY and lab.endpoint_id == first.pk, "built on the other, nothing lost"
    assert lab.networks.get().endpoint_id == first.pk
    assert _built(third).endpoint_id == first.pk

    load = placement.endpoint_loads([second])[0]
    assert load.unreachable and load.refusal.startswith(f"{second.name} could not be reached lately")
    assert placement.lab_endpoint(course=course, version=course.template_version) == first
    on_second.refresh_from_db()
    assert on_second.state == Lab.State.READY, "the lab already on the stopped vCenter is kept as it was"


def test_a_refused_start_does_not_tell_the_student_which_vcenters_or_hosts_refused_and_why(caplog):
    """The words a Start gets back reach the student: they named every vCenter, its limits and
    load, and the connection error of one not reached (the vCenter's host and port). The admins'
    loads (``GET /api/v1/endpoint-loads/``) and the log keep the details."""
    course = open_course(students=1)
    version = course.template_version
    first = version.template.endpoint
    second = EndpointFactory(name="vc-b-secret")
    VersionBaseline.objects.create(version=version, endpoint=second, state=VersionBaseline.State.READY)
    VCenterEndpoint.objects.filter(pk=first.pk).update(name="vc-a-secret", in_maintenance=True)
    reason = "Cannot talk to vCenter at vc-b.internal.example.edu:443: connection refused."
    placement.endpoint_unreachable_mark(endpoint_id=second.pk, reason=reason)
    student = course.enrollments.get().student
    try:
        with pytest.raises(ValidationError) as refused, caplog.at_level(logging.INFO, logger="labs.placement"):
            services.lab_start(course=course, student=student, actor=student)
    finally:
        placement.endpoint_reachable_mark(endpoint_id=second.pk)
    words = " ".join(refused.value.messages)
    assert words == f"No vCenter can take a new lab of {course.code} now. Try again in a few minutes, or ask an admin."
    for secret in ("vc-a-secret", "vc-b-secret", "vc-b.internal", "maintenance"):
        assert secret not in words
    assert "vc-b.internal.example.edu:443" in caplog.text and "vc-a-secret is in maintenance" in caplog.text


def test_a_moved_build_tells_the_student_neither_the_connection_error_nor_the_vcenters(monkeypatch):
    """A build moved off an unreachable vCenter told its student why in vCenter's own words (the
    host and port) and both vCenters' names."""
    course = open_course(students=1)
    version = course.template_version
    first = version.template.endpoint
    VCenterEndpoint.objects.filter(pk=first.pk).update(name="vc-a-secret")
    second = EndpointFactory(name="vc-b-secret")
    VersionBaseline.objects.create(version=version, endpoint=second, state=VersionBaseline.State.READY)
    for endpoint in (first, second):
        _forget_redis(endpoint)
    student = course.enrollments.get().student
    build = services.lab_start(course=course, student=student, actor=student)
    Lab.objects.filter(pk=build.lab_id).update(endpoint=first)
    told = []
    monkeypatch.setattr(services.realtime, "notify_user", lambda user_id, text, **kwargs: told.append((user_id, text)))
    reason = "Cannot talk to vCenter at vc-a.internal.example.edu:443: connection refused."
    moved = services.lab_build_move(lab=build.lab, failed=build, reason=reason)
    assert moved is not None and moved.lab.endpoint_id == second.pk
    [(user_id, text)] = told
    assert user_id == student.pk and text.startswith(f"Your lab {moved.lab.name} is being built on another vCenter")
    for secret in ("vc-a-secret", "vc-b-secret", "vc-a.internal", "443"):
        assert secret not in text
