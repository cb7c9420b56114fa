"""labs/services.py under concurrent clicks, on PostgreSQL (row locks make the checks atomic).

SQLite serialises every write anyway, so these tests need PostgreSQL to mean something;
CI runs them there.
"""

from __future__ import annotations

import threading
from collections import Counter

import pytest
from django.db import connection, connections

from core.errors import Conflict, QuotaExceeded
from labs import services
from labs.models import Lab, Operation, WarmPool
from tests.factories import open_course

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.integration]


@pytest.fixture(autouse=True)
def postgresql_only():
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL (set DATABASE_URL; CI does)")


@pytest.fixture(autouse=True)
def no_queue(monkeypatch):
    monkeypatch.setattr(services.dispatch, "send_operation", lambda *args, **kwargs: None)


def all_at_once(calls):
    """Run every call on its own thread and database connection, released together."""
    barrier = threading.Barrier(len(calls))
    outcomes: list[object] = [None] * len(calls)

    def run(index, call):
        try:
            barrier.wait()
            outcomes[index] = call()
        except Exception as error:  # noqa: BLE001 - collected and asserted below
            outcomes[index] = error
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(i, call)) for i, call in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return outcomes


def kinds(outcomes):
    return Counter(type(outcome).__name__ for outcome in outcomes)


def test_twenty_snapshot_clicks_on_one_lab_start_exactly_one_operation():
    course = open_course(students=1)
    student = course.enrollments.get().student
    lab = services.lab_start(course=course, student=student, actor=student).lab
    Operation.objects.filter(lab=lab).update(state=Operation.State.SUCCEEDED)
    Lab.objects.filter(pk=lab.pk).update(state=Lab.State.READY)

    outcomes = all_at_once(
        [lambda i=i: services.lab_snapshot_create(lab=lab, actor=student, name=f"snap {i}") for i in range(20)]
    )
    assert kinds(outcomes) == {"Operation": 1, "Conflict": 19}
    assert Operation.objects.filter(lab=lab, kind=Operation.Kind.SNAPSHOT).count() == 1
    assert all("busy" in str(o) for o in outcomes if isinstance(o, Conflict))


def test_fifty_starts_against_a_running_labs_quota_of_ten_start_exactly_ten():
    course = open_course(students=50, quota={"running_labs": 10})
    students = [enrollment.student for enrollment in course.enrollments.all()]

    outcomes = all_at_once([lambda s=s: services.lab_start(course=course, student=s, actor=s) for s in students])
    assert kinds(outcomes) == {"Operation": 10, "QuotaExceeded": 40}
    assert Lab.objects.filter(course=course).count() == 10
    refusal = next(o for o in outcomes if isinstance(o, QuotaExceeded))
    assert "the limit is 10 and 10 are in use" in str(refusal)
    vlans = list(Lab.objects.filter(course=course).values_list("networks__vlan_id", flat=True))
    assert len(set(vlans)) == 10


def _ready_running(lab: Lab) -> Lab:
    """Pretend the provision finished: the lab is ready and powered on."""
    from django.utils import timezone

    Operation.objects.filter(lab=lab).update(state=Operation.State.SUCCEEDED)
    Lab.objects.filter(pk=lab.pk).update(state=Lab.State.READY, running_since=timezone.now())
    lab.refresh_from_db()
    return lab


def test_actions_on_existing_labs_mixed_with_starts_never_deadlock():
    """Snapshot and power clicks lock a lab, starts lock the quota and insert a lab: the same
    order everywhere (quota, then lab) and no lock on the course row, or PostgreSQL answers
    "deadlock detected" (a 500) to one of them."""
    course = open_course(students=24)
    students = [enrollment.student for enrollment in course.enrollments.order_by("student__username")]
    owners, starters = students[:12], students[12:]
    labs = [_ready_running(services.lab_start(course=course, student=s, actor=s).lab) for s in owners]
    # Half the labs are off, so a power-on needs the quota (running slot and hours).
    Lab.objects.filter(pk__in=[lab.pk for lab in labs[6:]]).update(running_since=None)
    for lab in labs:
        lab.refresh_from_db()

    calls = []
    for index, (lab, starter) in enumerate(zip(labs, starters, strict=True)):
        if index < 6:
            calls.append(lambda lab=lab: services.lab_snapshot_create(lab=lab, actor=lab.student, name="before"))
        else:
            calls.append(lambda lab=lab: services.lab_power(lab=lab, actor=lab.student, action="on"))
        calls.append(lambda s=starter: services.lab_start(course=course, student=s, actor=s))
    outcomes = all_at_once(calls)

    unexpected = Counter(
        f"{type(o).__name__}: {str(o).splitlines()[0]}"
        for o in outcomes
        if isinstance(o, Exception) and not isinstance(o, Conflict | QuotaExceeded)
    )
    assert unexpected == Counter()
    assert kinds(outcomes) == {"Operation": 24}


def test_ten_power_ons_at_once_against_three_free_running_slots_start_exactly_three():
    """A lab takes its running slot at the click, not when its VMs come on."""
    from courses import services as course_services
    from tests.factories import AdminFactory

    course = open_course(students=10)
    students = [enrollment.student for enrollment in course.enrollments.all()]
    labs = [_ready_running(services.lab_start(course=course, student=s, actor=s).lab) for s in students]
    Lab.objects.filter(course=course).update(running_since=None)
    course_services.quota_update(course=course, actor=AdminFactory(), running_labs=3)

    outcomes = all_at_once(
        [lambda lab=lab: services.lab_power(lab=lab, actor=lab.student, action="on") for lab in labs]
    )
    assert kinds(outcomes) == {"Operation": 3, "QuotaExceeded": 7}


def _pool_lab(course):
    WarmPool.objects.get_or_create(course=course)  # a course's pool labs come with its pool
    version = course.template_version
    return Lab.objects.create(
        course=course,
        student=None,
        template_version=version,
        endpoint=version.template.endpoint,
        state=Lab.State.READY,
        vcpu=version.vcpu_total,
        memory_mb=version.memory_mb_total,
        disk_gb=version.disk_gb_total,
    )


def test_two_students_racing_for_the_last_pool_lab_one_gets_it_the_other_a_new_build(monkeypatch):
    monkeypatch.setattr(services.dispatch, "pool_nudge", lambda course_id: None)
    course = open_course(students=2)
    pool_lab = _pool_lab(course)
    first, second = [enrollment.student for enrollment in course.enrollments.all()]

    outcomes = all_at_once([lambda s=s: services.lab_start(course=course, student=s, actor=s) for s in (first, second)])
    assert kinds(outcomes) == {"Operation": 2}
    assert sorted(operation.kind for operation in outcomes) == [Operation.Kind.HAND_OVER, Operation.Kind.PROVISION]
    handed = next(operation for operation in outcomes if operation.kind == Operation.Kind.HAND_OVER)
    built = next(operation for operation in outcomes if operation.kind == Operation.Kind.PROVISION)
    assert handed.lab_id == pool_lab.pk and built.lab_id != pool_lab.pk
    pool_lab.refresh_from_db()
    assert pool_lab.student_id in (first.pk, second.pk) and built.lab.student_id != pool_lab.student_id
    assert Operation.objects.filter(lab=pool_lab, kind=Operation.Kind.HAND_OVER).count() == 1, "given once"


def test_ten_starts_against_three_pool_labs_and_the_pools_own_tick_give_each_lab_once(monkeypatch):
    from labs import pools

    monkeypatch.setattr(services.dispatch, "pool_nudge", lambda course_id: None)
    course = open_course(students=10)
    pooled = {_pool_lab(course).pk for _ in range(3)}
    pools.pool_set(course=course, actor=course.instructors.get(), size=3)
    students = [enrollment.student for enrollment in course.enrollments.all()]

    calls = [lambda s=s: services.lab_start(course=course, student=s, actor=s) for s in students]
    outcomes = all_at_once([*calls, lambda: pools.course_pool_tick(course=course)])
    starts = outcomes[:-1]
    assert kinds(starts) == {"Operation": 10}
    handed = [operation.lab_id for operation in starts if operation.kind == Operation.Kind.HAND_OVER]
    assert sorted(handed) == sorted(pooled), "each pool lab given once"
    owners = Lab.objects.filter(course=course, student__isnull=False).values_list("student_id", flat=True)
    assert sorted(owners) == sorted(student.pk for student in students), "one lab per student"
    assert Lab.objects.filter(course=course, student__isnull=True).count() <= 3, "the pool within its size"


def test_starts_in_two_courses_sharing_a_vcenter_never_pass_its_storage_limit_together():
    """Placement runs under each course's quota lock; two courses placing at once both saw the
    same room. The endpoints with limits are locked while the room is weighed, so the limit
    holds across courses."""
    from courses.models import VCenterEndpoint, VersionBaseline

    first, second = open_course(students=10), open_course(students=10)
    endpoint = first.template_version.template.endpoint
    VersionBaseline.objects.filter(version=second.template_version).update(endpoint=endpoint)
    per_lab = first.template_version.disk_gb_total
    assert per_lab == second.template_version.disk_gb_total > 0
    VCenterEndpoint.objects.filter(pk=endpoint.pk).update(max_storage_gb=per_lab * 3)

    starts = [
        lambda course=course, enrollment=enrollment: services.lab_start(
            course=course, student=enrollment.student, actor=enrollment.student
        )
        for course in (first, second)
        for enrollment in course.enrollments.select_related("student")
    ]
    outcomes = all_at_once(starts)
    assert kinds(outcomes) == {"Operation": 3, "ValidationError": 17}, outcomes
    assert Lab.objects.filter(endpoint=endpoint).count() == 3
