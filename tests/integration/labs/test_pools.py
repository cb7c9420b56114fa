"""labs/pools.py: a course's warm pool built ahead in the simulator and handed over on Start
(renamed in vCenter, owner set, powered on, no clone), refilled behind; sized within its cap and
the quota; drained when the course moves to a new version or ends; refusals in words."""

from __future__ import annotations

import datetime
from datetime import timedelta

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from pyVim.connect import Disconnect, SmartConnect
from pyVmomi import vim, vmodl

from core.errors import QuotaExceeded
from courses import services as course_services
from courses.models import Course
from labs import dispatch, pools, quotas, selectors, services, usage
from labs.jobs import execute
from labs.models import LAB_ATTRIBUTE, Lab, Operation, WarmPool
from portal import demo, simulator
from tests.factories import InstructorFactory, StudentFactory, lab_row, open_course, published_version


@pytest.fixture
def nudges(monkeypatch):
    """Operations are run by hand here; the nudge after a take is recorded, not sent."""
    sent = []
    monkeypatch.setattr(services.dispatch, "send_operation", lambda *args, **kwargs: None)
    monkeypatch.setattr(dispatch, "pool_nudge", sent.append)
    return sent


def _run(operation: Operation) -> Operation:
    execute(operation.pk)
    operation.refresh_from_db()
    return operation


def _instructor(course: Course):
    return course.instructors.get()


def _students(course: Course):
    return [enrollment.student for enrollment in course.enrollments.select_related("student").order_by("pk")]


# In the simulator, end to end


@pytest.fixture
def sim():
    """A simulator of this test's own: the demo course's labs are named after it."""
    server = simulator.start(args=["-demo"])
    yield server
    server.stop()


def _props(si, obj, *paths):
    spec = vmodl.query.PropertyCollector.FilterSpec(
        objectSet=[vmodl.query.PropertyCollector.ObjectSpec(obj=obj)],
        propSet=[vmodl.query.PropertyCollector.PropertySpec(type=type(obj), pathSet=list(paths))],
    )
    [result] = si.content.propertyCollector.RetrieveContents([spec])
    return {prop.name: prop.val for prop in result.propSet}


@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
def test_a_start_takes_the_ready_pool_lab_renamed_owned_and_on_and_the_pool_refills(sim, nudges):
    course = demo.seed_demo(vcenter_url=sim.url, vcenter_user=sim.username, vcenter_password=sim.password)
    pools.pool_set(course=course, actor=_instructor(course), size=1)
    built = pools.course_pool_tick(course=course).built
    assert len(built) == 1
    pool_lab = Lab.objects.get(pk=built[0])
    assert pool_lab.student is None and pool_lab.name == f"{course.code}-pool-{pool_lab.pk}"
    build = pool_lab.operations.get()
    assert _run(build).state == Operation.State.SUCCEEDED, build.error
    pool_lab.refresh_from_db()
    assert pool_lab.state == Lab.State.READY and not pool_lab.is_running, "it waits powered off"
    assert selectors.pool_status(course.pk).ready == 1

    student = _students(course)[0]
    assert nudges == [course.pk], "sizing the pool fills it at once"
    take = services.lab_start(course=course, student=student, actor=student)
    assert take.kind == Operation.Kind.HAND_OVER and take.lab_id == pool_lab.pk
    assert nudges == [course.pk, course.pk], "and a take refills it at once"
    lab = Lab.objects.get(pk=pool_lab.pk)
    assert lab.student == student and lab.number == 1 and lab.given_at is not None
    assert lab.name == f"{course.code}-{student.username}-1"
    assert Operation.objects.filter(lab=lab, kind=Operation.Kind.PROVISION).count() == 1, "no clone"
    assert _run(take).state == Operation.State.SUCCEEDED, take.error
    lab.refresh_from_db()
    assert lab.state == Lab.State.READY and lab.is_running

    si = SmartConnect(host=sim.host, port=sim.port, protocol="http", user=sim.username, pwd=sim.password)
    try:
        content = si.RetrieveContent()
        folder = content.searchIndex.FindByInventoryPath(f"DC0/vm/Nestlab Labs/{course.code}/{lab.name}")
        assert folder is not None, "the folder has the student's lab name"
        fields = {field.key: field.name for field in content.customFieldsManager.field}
        for vm in lab.vms.all():
            values = _props(si, vim.VirtualMachine(vm.moref, si._stub), "name", "customValue", "runtime.powerState")
            assert values["name"] == f"{lab.name}-{vm.role}"
            custom = {fields[value.key]: value.value for value in values["customValue"]}
            assert custom[LAB_ATTRIBUTE] == str(lab.pk) and custom["nestlab.owner"] == student.username
            assert values["runtime.powerState"] == "poweredOn"
    finally:
        Disconnect(si)

    refill = pools.course_pool_tick(course=course)
    assert len(refill.built) == 1 and refill.built[0] != lab.pk
    status = selectors.pool_status(course.pk)
    assert (status.building, status.given_today) == (1, 1)


# The rules, on database rows (nothing in vCenter)


pytestmark = pytest.mark.django_db


def _pool_lab(course, **fields):
    WarmPool.objects.get_or_create(course=course)  # a course's pool labs come with its pool
    version = course.template_version
    return Lab.objects.create(
        course=course,
        student=None,
        template_version=version,
        endpoint=version.template.endpoint,
        state=fields.pop("state", Lab.State.READY),
        vcpu=version.vcpu_total,
        memory_mb=version.memory_mb_total,
        disk_gb=version.disk_gb_total,
        **fields,
    )


def test_a_pool_never_exceeds_its_size(nudges):
    course = open_course(students=2)
    pools.pool_set(course=course, actor=_instructor(course), size=3)
    assert len(pools.course_pool_tick(course=course).built) == 3
    assert pools.course_pool_tick(course=course).built == [], "full: nothing more"
    assert selectors.pool_labs(course).count() == 3
    builds = Operation.objects.filter(lab__course=course, kind=Operation.Kind.PROVISION)
    assert all(op.actor is None and op.params == {"reason": "pool", "stay_off": True} for op in builds)

    Lab.objects.filter(course=course).update(state=Lab.State.READY)
    Operation.objects.filter(lab__course=course).update(state=Operation.State.SUCCEEDED)
    pools.pool_set(course=course, actor=_instructor(course), size=1)
    shrink = pools.course_pool_tick(course=course)
    assert len(shrink.drained) == 2 and shrink.built == []
    deletes = Operation.objects.filter(lab__course=course, kind=Operation.Kind.DELETE)
    assert deletes.count() == 2 and all(op.params == {"reason": pools.SHRINK_REASON} for op in deletes)


def test_a_pool_never_exceeds_its_cap_or_the_quota_and_says_why(nudges):
    version_vcpu = 5  # the factory's version: 4 + 1 vCPU
    course = open_course(students=2, quota={"pool_labs": 2, "vcpu_total": 3 * version_vcpu})
    pools.pool_set(course=course, actor=_instructor(course), size=5)
    first = pools.course_pool_tick(course=course)
    assert len(first.built) == 2
    assert first.refused == "The class's warm pool cannot hold another lab: the limit is 2 and 2 are in use."
    assert "the quota caps the pool at 2" in selectors.pool_status(course.pk).words

    # A student's lab uses the class's last vCPUs: the pool's cap is not reached, the quota is.
    course_services.quota_update(course=course, actor=_admin(), pool_labs=None, vcpu_total=3 * version_vcpu)
    lab_row(course, _students(course)[0])
    more = pools.course_pool_tick(course=course)
    assert more.built == [] and more.refused.startswith("The class's virtual CPUs would be exceeded")
    assert selectors.pool_labs(course).count() == 2


def test_a_pool_lab_in_error_is_drained_and_replaced_not_kept_as_part_of_the_pool(nudges):
    """A failed pool build (or a failed power-on of a waiting lab) left a lab in error that no Start
    takes, no shrink removes, no page shows, and that the refill counted as one of the pool's: the
    pool stayed short for good and its vCenter resources and quota were held."""
    course = open_course(students=1)
    pools.pool_set(course=course, actor=_instructor(course), size=1)
    broken = _pool_lab(course, state=Lab.State.ERROR)
    tick = pools.course_pool_tick(course=course)
    assert tick.drained == [broken.pk]
    delete = Operation.objects.get(lab=broken, kind=Operation.Kind.DELETE)
    assert delete.params == {"reason": pools.DRAIN_REASON}
    assert len(tick.built) == 1 and tick.built[0] != broken.pk, "a new one takes its place"


def test_a_pool_lab_on_a_vcenter_the_course_no_longer_uses_is_not_given_and_is_drained(nudges):
    """The course's vCenters narrowed (its instructor chose others) after its pool was built: a
    Start handed over a lab on a vCenter the course left, and the pool kept it for good."""
    from courses.models import VersionBaseline
    from tests.factories import EndpointFactory

    course = open_course(students=1)
    pools.pool_set(course=course, actor=_instructor(course), size=1)
    stale = _pool_lab(course)
    other = EndpointFactory()
    VersionBaseline.objects.create(version=course.template_version, endpoint=other, state=VersionBaseline.State.READY)
    course_services.course_update(course=course, actor=_instructor(course), endpoints=[other])

    student = _students(course)[0]
    start = services.lab_start(course=course, student=student, actor=student)
    assert start.kind == Operation.Kind.PROVISION and start.lab_id != stale.pk, "built anew, on the course's vCenter"
    assert start.lab.endpoint_id == other.pk
    tick = pools.course_pool_tick(course=course)
    assert stale.pk in tick.drained
    assert Operation.objects.get(lab=stale, kind=Operation.Kind.DELETE).params == {"reason": pools.DRAIN_REASON}


def test_a_schedule_sized_pool_never_targets_more_than_the_bound_of_a_pool(nudges):
    """The size is at most 1000 (courses.bounds.MAX_POOL_LABS) on every path, but with schedule
    sizing the target added the students without a lab on top: past the bound, with no quota of
    the pool's own, the refill built that many labs."""
    from courses import bounds

    course = open_course(students=3)
    pool = pools.pool_set(course=course, actor=_instructor(course), size=bounds.MAX_POOL_LABS, sizing="schedule")
    near = selectors.PoolWindow(filling=True)
    assert selectors.pool_target(course, pool, near) == bounds.MAX_POOL_LABS
    pool.size = 2
    assert selectors.pool_target(course, pool, near) == 5, "below the bound, one per student without a lab"


def test_a_pool_lab_handed_over_while_the_tick_drains_or_shrinks_is_not_deleted(nudges):
    """The tick reads the labs to drain or shrink, then deletes them one by one without the
    course's quota lock: a Start that took one of them in between (its quick hand-over done)
    saw the student's new lab deleted. The delete checks, under the lab's lock, that it is
    still the pool's."""
    from django.utils import timezone

    course = open_course(students=1)
    pools.pool_set(course=course, actor=_instructor(course), size=1)
    stale = _pool_lab(course)  # as the tick read it
    student = _students(course)[0]
    take = services.lab_start(course=course, student=student, actor=student)
    assert take.lab_id == stale.pk
    Operation.objects.filter(pk=take.pk).update(state=Operation.State.SUCCEEDED)
    assert services.lab_system_delete(lab=stale, reason=pools.SHRINK_REASON, pooled=True) is None
    assert not Operation.objects.filter(lab=stale, kind=Operation.Kind.DELETE).exists()
    # Nor powered off as a pool lab waiting outside a session's window.
    Lab.objects.filter(pk=stale.pk).update(running_since=timezone.now())
    assert services.lab_system_power_off(lab=stale, reason=pools.WAITING_REASON, pooled=True) is None
    assert not Operation.objects.filter(lab=stale, kind=Operation.Kind.POWER).exists()


def test_a_pool_lab_on_a_vcenter_in_maintenance_is_not_handed_over(nudges):
    """Maintenance means no new labs on that vCenter (docs/deployment.md: set it before working on
    it); a hand-over renames and powers on a lab there for a student, a new lab of theirs."""
    from courses.models import VCenterEndpoint

    course = open_course(students=1)
    pools.pool_set(course=course, actor=_instructor(course), size=1)
    waiting = _pool_lab(course)
    VCenterEndpoint.objects.filter(pk=waiting.endpoint_id).update(in_maintenance=True)
    student = _students(course)[0]
    with pytest.raises(ValidationError, match="No vCenter can take a new lab"):
        services.lab_start(course=course, student=student, actor=student)
    waiting.refresh_from_db()
    assert waiting.student is None and not Operation.objects.filter(lab=waiting).exists()


def test_pool_labs_on_a_vcenter_in_maintenance_are_kept_but_not_counted_nor_powered_on(nudges):
    """No Start may take them, so the pool refills elsewhere (here there is no elsewhere: the
    refill says so in words); they count again when the maintenance ends."""
    from courses.models import VCenterEndpoint

    course = open_course(students=1)
    pools.pool_set(course=course, actor=_instructor(course), size=1)
    waiting = _pool_lab(course)
    VCenterEndpoint.objects.filter(pk=waiting.endpoint_id).update(in_maintenance=True)
    warm = selectors.PoolWindow(warm=True, filling=False)
    tick = pools.PoolTick()
    pools._refill(course, warm, tick)
    pools._power(course, warm, tick)
    assert tick.built == [] and "No vCenter can take a new lab" in tick.refused
    assert tick.powered_on == [] and not Operation.objects.filter(lab=waiting).exists()
    status = selectors.pool_status(course.pk)
    assert status.ready == 0 and "1 more wait on a vCenter in maintenance" in status.words
    waiting.refresh_from_db()
    assert waiting.state == Lab.State.READY and waiting.student is None  # kept

    VCenterEndpoint.objects.filter(pk=waiting.endpoint_id).update(in_maintenance=False)
    after = pools.PoolTick()
    pools._refill(course, warm, after)
    assert after.built == [] and after.refused == "" and after.drained == []
    assert selectors.pool_status(course.pk).ready == 1


def _admin():
    from tests.factories import AdminFactory

    return AdminFactory()


def test_pool_labs_count_in_the_class_quota_but_hold_no_students_place(nudges):
    course = open_course(students=1, quota={"labs_per_student": 1})
    _pool_lab(course)
    _pool_lab(course)
    usage = quotas.course_usage(course)
    assert usage.labs == 2 and usage.vcpu == 10 and usage.max_labs_per_student == 0
    student = _students(course)[0]
    quotas.check_student_lab(quotas.lock_quota(course), course, student)  # no refusal: the pool is nobody's
    assert selectors.lab_list(user=_instructor(course), course=course.pk).count() == 0


def test_a_start_without_a_ready_pool_lab_builds_and_a_busy_or_old_one_is_not_given(nudges):
    course = open_course(students=1)
    _pool_lab(course, state=Lab.State.PROVISIONING)
    busy = _pool_lab(course)
    Operation.objects.create(kind=Operation.Kind.POWER, endpoint=busy.endpoint, lab=busy, params={"action": "on"})
    student = _students(course)[0]
    operation = services.lab_start(course=course, student=student, actor=student)
    assert operation.kind == Operation.Kind.PROVISION and operation.lab.student == student
    assert selectors.pool_labs(course).count() == 2 and nudges == []


def test_a_take_is_refused_in_words_when_the_student_has_no_room_and_the_lab_stays_in_the_pool(nudges):
    course = open_course(students=1, quota={"running_labs": 0})
    pool_lab = _pool_lab(course)
    student = _students(course)[0]
    with pytest.raises(QuotaExceeded, match="No more labs can run at once in this class"):
        services.lab_start(course=course, student=student, actor=student)
    pool_lab.refresh_from_db()
    assert pool_lab.student is None and pool_lab.given_at is None


def test_the_hours_a_pool_lab_ran_are_the_courses_not_the_students(nudges):
    from django.utils import timezone

    course = open_course(students=1)
    started = timezone.now() - timedelta(hours=2)
    pool_lab = _pool_lab(course, running_since=started, hours_used=3.0)
    student = _students(course)[0]
    services.lab_start(course=course, student=student, actor=student)
    pool_lab.refresh_from_db()
    assert pool_lab.student == student and pool_lab.hours_used == 0
    assert quotas.student_hours(course, student) < 0.01
    assert pool_lab.runs.get().started_at == started
    report = usage.course_usage_report(course=course, user=_instructor(course))
    [row] = [row for row in report.students if row.student_id == student.pk]
    assert row.lab_hours < 0.01 and row.lab_hours_total < 0.01, "the pool's two hours are not the student's"
    assert sum(day.hours for day in report.days) == pytest.approx(2, abs=0.01), "they are the course's"


def test_a_running_pool_lab_handed_over_gets_a_fresh_lease_not_the_pools(nudges):
    """A pool lab powered on before a session started its lease then: handed over after the lease
    ran out, the student's lab was powered off at the next minute ("its lease ended")."""
    from django.utils import timezone

    from labs import lifecycle

    course = open_course(students=1, quota={"lease_hours": 1})
    now = timezone.now()
    pool_lab = _pool_lab(
        course, running_since=now - timedelta(hours=3), expires_at=now - timedelta(hours=2), lease_extensions_used=2
    )
    student = _students(course)[0]
    services.lab_start(course=course, student=student, actor=student)
    pool_lab.refresh_from_db()
    assert pool_lab.student == student
    assert pool_lab.expires_at >= now + timedelta(minutes=59) and pool_lab.lease_extensions_used == 0
    Operation.objects.filter(lab=pool_lab).update(state=Operation.State.SUCCEEDED)
    assert pool_lab.pk not in lifecycle.tick().lease_ended


def test_a_pool_is_drained_when_the_course_moves_to_a_new_version(nudges):
    course = open_course(students=1)
    instructor = _instructor(course)
    old = [_pool_lab(course), _pool_lab(course, state=Lab.State.PROVISIONING)]
    pools.pool_set(course=course, actor=instructor, size=2)
    newer = published_version(owner=instructor)
    course_services.course_update(course=course, actor=instructor, template_version=newer)
    Operation.objects.create(kind=Operation.Kind.PROVISION, endpoint=old[1].endpoint, lab=old[1])
    result = pools.course_pool_tick(course=course)
    assert result.drained == [old[0].pk], "the ready one now; the one being built when its build ends"
    assert Operation.objects.get(lab=old[0], kind=Operation.Kind.DELETE).params == {"reason": pools.DRAIN_REASON}
    assert len(result.built) == 2
    assert {lab.template_version for lab in Lab.objects.filter(pk__in=result.built)} == {newer}


def test_a_pool_is_drained_and_not_refilled_when_the_course_ends(nudges):
    course = open_course(students=1)
    pools.pool_set(course=course, actor=_instructor(course), size=1)
    pool_lab = _pool_lab(course)
    Course.objects.filter(pk=course.pk).update(ends_on=datetime.date.today() - timedelta(days=1))
    result = pools.course_pool_tick(course=course)
    assert result.drained == [pool_lab.pk] and result.built == []
    assert selectors.pool_status(course.pk).target == 0


def test_only_the_courses_instructors_and_admins_see_and_size_the_pool_in_words(nudges):
    course = open_course(students=1)
    other = InstructorFactory()
    for person in (other, _students(course)[0], StudentFactory()):
        with pytest.raises(PermissionDenied, match="Only this course's instructors and admins"):
            pools.pool_set(course=course, actor=person, size=1)
        with pytest.raises(PermissionDenied):
            pools.pool_get(course=course, actor=person)
    assert not WarmPool.objects.exists()
    with pytest.raises(ValidationError) as refused:
        pools.pool_set(course=course, actor=_instructor(course), size=100_000)
    assert "less than or equal to 1000" in str(refused.value)
    with pytest.raises(ValidationError):
        pools.pool_set(course=course, actor=_admin(), size=1, sizing="sometimes")
    assert pools.pool_set(course=course, actor=_admin(), size=4).size == 4


def test_a_schedule_sized_pool_holds_one_per_student_without_a_lab_before_a_session_and_warms(nudges):
    course = open_course(students=3)
    instructor = _instructor(course)
    lab_row(course, _students(course)[0])
    pools.pool_set(course=course, actor=instructor, size=1, sizing=WarmPool.Sizing.SCHEDULE)
    day = datetime.date.today() + timedelta(days=1)
    course_services.class_session_create(
        course=course,
        actor=instructor,
        first_date=day,
        start_time=datetime.time(9, 0),
        duration_minutes=60,
        time_zone="UTC",
        ready_minutes_before=10,
    )
    start = datetime.datetime.combine(day, datetime.time(9, 0), tzinfo=datetime.UTC)
    pool = WarmPool.objects.get()
    far = selectors.pool_window(course, start - timedelta(hours=3))
    assert selectors.pool_target(course, pool, far) == 1, "the fixed number only, far from a session"
    # The session's window opens 21 minutes ahead (10 + 10 min build + 1); the pool fills one build before it.
    filling = selectors.pool_window(course, start - timedelta(minutes=30))
    assert filling.filling and not filling.warm
    assert selectors.pool_target(course, pool, filling) == 1 + 2
    warm = selectors.pool_window(course, start - timedelta(minutes=20))
    assert warm.warm
    result = pools.course_pool_tick(course=course, now=start - timedelta(minutes=20))
    assert len(result.built) == 3
    assert all(op.params["stay_off"] is False for op in Operation.objects.filter(lab__in=result.built)), (
        "built powered on: a session is near"
    )
