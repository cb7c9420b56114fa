"""labs/usage.py: the usage reports' figures, exactly, from known run periods, snapshots and
labs; who may read them; and a bounded number of queries whatever the class's size.

Labs are made as rows (the reports only read them); the one test of the ledger the reports
read goes through ``labs.services.lab_power_changed``."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from django.core.exceptions import PermissionDenied
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from courses import services as course_services
from courses.models import Course
from labs import services, usage
from labs.models import Lab, LabRun, LabSnapshot, LabVM, Operation
from tests.factories import (
    AdminFactory,
    EndpointFactory,
    InstructorFactory,
    StudentFactory,
    UserFactory,
    lab_row,
    open_course,
    published_version,
)

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 10, 10, 12, 0, tzinfo=UTC)
OCTOBER = usage.Period(date(2026, 10, 1), date(2026, 10, 10))


@pytest.fixture(autouse=True)
def portal_in_utc(settings):
    """The figures below are reckoned in UTC days: pinned, so a portal run with TIME_ZONE set
    (Europe/Berlin, America/New_York) splits the same runs at the same midnights."""
    settings.TIME_ZONE = "UTC"


def at(day: int, hour: int, minute: int = 0, month: int = 10) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=UTC)


def make_lab(course: Course, student, number: int = 1, *, state=Lab.State.READY, created=None, **fields) -> Lab:
    return lab_row(course, student, number, state=state, created_at=created or at(15, 9, month=9), **fields)


def run(lab: Lab, start: datetime, end: datetime) -> None:
    LabRun.objects.create(lab=lab, started_at=start, ended_at=end)


def snapshot_operation(lab: Lab, finished: datetime, state=Operation.State.SUCCEEDED) -> None:
    Operation.objects.create(
        kind=Operation.Kind.SNAPSHOT, state=state, endpoint=lab.endpoint, lab=lab, finished_at=finished
    )


@pytest.fixture
def course():
    """alice runs a lab now and ran it before; bob deleted a lab and cloned another; carol has
    none; dave left the course and kept his lab. Known to the minute; see each test."""
    course = open_course(
        students=0,
        code="vsp8-usage",
        quota={
            "lab_hours_per_student": 20,
            "labs_per_student": 1,
            "vcpu_total": 12,
            "memory_gb_total": 64,
            "snapshots_per_lab": 3,
        },
    )
    # Fixed dates, as the figures below are: the factory's term moves with the day the tests run.
    Course.objects.filter(pk=course.pk).update(starts_on=date(2026, 9, 1), ends_on=date(2027, 1, 31))
    course.refresh_from_db()
    instructor = course.instructors.get()
    people = {name: StudentFactory(username=name) for name in ("alice", "bob", "carol", "dave")}
    for person in people.values():
        course_services.enrollment_add(course=course, actor=instructor, student=person)
    course_services.top_up_grant(
        course=course, actor=instructor, student=people["alice"], extra_lab_hours=10, extra_labs=1, reason="outage"
    )

    # alice: 4 h across the night into the period (2 h inside), 3.5 h on the 3rd, 1 h metered before
    # the ledger existed, and running since 10:00 on the 10th (2 h by NOW).
    alice = make_lab(course, people["alice"], hours_used=4 + 3.5 + 1, running_since=at(10, 10))
    run(alice, at(30, 22, month=9), at(1, 2))
    run(alice, at(3, 10), at(3, 13, 30))
    LabSnapshot.objects.create(lab=alice, name="baseline", is_baseline=True)
    LabSnapshot.objects.create(lab=alice, name="vcsa installed")
    LabSnapshot.objects.create(lab=alice, name="cluster made")
    snapshot_operation(alice, at(5, 9))
    snapshot_operation(alice, at(20, 9, month=9))  # before the period
    snapshot_operation(alice, at(6, 9), state=Operation.State.FAILED)

    # bob: a deleted lab that ran 3 h on the 2nd, and a second lab made on the 4th, never run.
    gone = make_lab(course, people["bob"], state=Lab.State.DELETED, hours_used=3, created=at(10, 9, month=9))
    run(gone, at(2, 8), at(2, 11))
    LabSnapshot.objects.create(lab=gone, name="left behind")  # a deleted lab's rows hold nothing
    make_lab(course, people["bob"], 2, created=at(4, 8))

    # dave: removed from the course; his lab stays and still holds resources.
    make_lab(course, people["dave"])
    course_services.enrollment_remove(actor=instructor, enrollment=course.enrollments.get(student=people["dave"]))
    return course


def rows_by_name(report) -> dict:
    return {row.username: row for row in report.students}


def test_each_student_s_figures_are_exact(course):
    report = usage.course_usage_report(course=course, user=AdminFactory(), period=OCTOBER, now=NOW)
    rows = rows_by_name(report)
    assert [row.username for row in report.students] == ["alice", "bob", "carol", "dave"]

    alice = rows["alice"]
    assert (alice.lab_hours, alice.lab_hours_total, alice.lab_hours_limit) == (7.5, 10.5, 30)
    assert (alice.labs, alice.labs_limit, alice.labs_started, alice.running) == (1, 2, 0, 1)
    assert (alice.snapshots, alice.snapshots_most_in_a_lab, alice.snapshots_taken) == (2, 2, 1)
    assert (alice.vcpu, alice.memory_gb, alice.storage_gb) == (5, 17.0, 40.0)
    assert alice.enrolled

    bob = rows["bob"]
    assert (bob.lab_hours, bob.lab_hours_total, bob.lab_hours_limit) == (3.0, 3.0, 20)
    assert (bob.labs, bob.labs_limit, bob.labs_started, bob.running) == (1, 1, 1, 0)
    assert (bob.snapshots, bob.snapshots_taken) == (0, 0)
    assert (bob.vcpu, bob.memory_gb, bob.storage_gb) == (5, 17.0, 40.0)

    carol = rows["carol"]
    assert (carol.lab_hours, carol.lab_hours_total, carol.labs, carol.vcpu, carol.labs_limit) == (0, 0, 0, 0, 1)

    dave = rows["dave"]
    assert not dave.enrolled
    assert (dave.labs, dave.vcpu, dave.lab_hours) == (1, 5, 0)


def test_the_class_totals_and_limits(course):
    report = usage.course_usage_report(course=course, user=AdminFactory(), period=OCTOBER, now=NOW)
    totals = report.totals
    assert (totals.lab_hours, totals.lab_hours_total) == (10.5, 13.5)
    assert (totals.labs, totals.labs_started, totals.running) == (3, 1, 1)
    assert (totals.snapshots, totals.snapshots_most_in_a_lab, totals.snapshots_taken) == (2, 2, 1)
    assert (totals.vcpu, totals.memory_gb, totals.storage_gb) == (15, 51.0, 120.0)
    assert (report.limits.vcpu_total, report.limits.memory_gb_total, report.limits.storage_gb_total) == (12, 64, None)
    assert report.limits.snapshots_per_lab == 3


def test_lab_hours_per_day_split_at_midnight_and_every_day_listed(course):
    report = usage.course_usage_report(course=course, user=AdminFactory(), period=OCTOBER, now=NOW)
    days = {item.day: item.hours for item in report.days}
    assert list(days) == OCTOBER.days
    assert days == {
        date(2026, 10, 1): 2.0,
        date(2026, 10, 2): 3.0,
        date(2026, 10, 3): 3.5,
        **{date(2026, 10, n): 0.0 for n in range(4, 10)},
        date(2026, 10, 10): 2.0,
    }
    assert sum(days.values()) == report.totals.lab_hours


def test_days_follow_the_portal_s_time_zone(course, settings):
    """In Paris (UTC+2 in October) alice's night run is 02:00-04:00 on the 1st: wholly inside."""
    settings.TIME_ZONE = "Europe/Paris"
    report = usage.course_usage_report(course=course, user=AdminFactory(), period=OCTOBER, now=NOW)
    days = {item.day: item.hours for item in report.days}
    assert days[date(2026, 10, 1)] == 4.0
    assert rows_by_name(report)["alice"].lab_hours == 9.5


def test_a_period_cuts_runs_and_leaves_out_the_future(course):
    """The 3rd from 12:00 on: the last 1.5 h of alice's run; the running lab counts up to now only."""
    report = usage.course_usage_report(
        course=course, user=AdminFactory(), period=usage.Period(date(2026, 10, 3), date(2026, 10, 31)), now=NOW
    )
    rows = rows_by_name(report)
    assert rows["alice"].lab_hours == 3.5 + 2
    assert rows["bob"].lab_hours == 0
    assert rows["alice"].lab_hours_total == 10.5  # all time, whatever the period
    assert len(report.days) == 29 and report.days[-1].hours == 0


def test_the_default_period_is_the_course_s_dates(course):
    report = usage.course_usage_report(course=course, user=AdminFactory(), now=NOW)
    assert report.period == usage.Period(course.starts_on, course.ends_on)
    rows = rows_by_name(report)
    assert (rows["alice"].labs_started, rows["bob"].labs_started) == (1, 2)  # September's labs count now
    assert rows["alice"].lab_hours == 4 + 3.5 + 2  # the night of 30 Sep wholly inside


def test_across_courses_by_course_and_by_vcenter(course):
    other_endpoint = EndpointFactory(name="vCenter B")
    other = open_course(students=1, code="nsx-101")
    version = published_version(endpoint=other_endpoint)
    Course.objects.filter(pk=other.pk).update(template_version=version)
    other.refresh_from_db()
    lab = make_lab(other, other.enrollments.get().student, running_since=at(10, 11))
    snapshot_operation(lab, at(10, 11, 30))
    Course.objects.create(title="Draft", code="draft-1", starts_on=date(2026, 9, 1), ends_on=date(2026, 12, 1))

    report = usage.usage_report(user=AdminFactory(), period=OCTOBER, now=NOW)
    courses = {row.code: row for row in report.courses}
    assert set(courses) == {"vsp8-usage", "nsx-101"}  # the empty draft is left out
    mine = courses["vsp8-usage"]
    assert (mine.lab_hours, mine.lab_hours_total, mine.labs, mine.running, mine.students) == (10.5, 13.5, 3, 1, 3)
    assert (mine.vcpu, mine.vcpu_limit, mine.memory_gb_limit, mine.storage_gb_limit) == (15, 12, 64, None)
    assert mine.endpoints == [course.template_version.template.endpoint.name]
    assert (courses["nsx-101"].lab_hours, courses["nsx-101"].snapshots_taken) == (1.0, 1)

    endpoints = {row.name: row for row in report.endpoints}
    assert endpoints["vCenter B"].lab_hours == 1.0
    assert (endpoints["vCenter B"].courses, endpoints["vCenter B"].labs) == (1, 1)
    assert endpoints[mine.endpoints[0]].lab_hours == 10.5
    assert (report.totals.lab_hours, report.totals.labs) == (11.5, 4)
    assert {item.day: item.hours for item in report.days}[date(2026, 10, 10)] == 3.0


def test_an_archived_course_with_use_in_the_period_is_listed(course):
    Course.objects.filter(pk=course.pk).update(state=Course.State.ARCHIVED)
    report = usage.usage_report(user=AdminFactory(), period=OCTOBER, now=NOW)
    assert [row.code for row in report.courses] == ["vsp8-usage"]


def test_the_default_period_across_courses_is_the_last_30_days():
    report = usage.usage_report(user=AdminFactory(), now=NOW)
    assert report.period == usage.Period(date(2026, 9, 11), date(2026, 10, 10))


@pytest.mark.parametrize("who", ["student", "other_instructor", "nobody"])
def test_only_the_course_s_instructors_and_admins_read_its_report(course, who):
    person = {
        "student": lambda: course.enrollments.first().student,
        "other_instructor": InstructorFactory,
        "nobody": UserFactory,
    }[who]()
    with pytest.raises(PermissionDenied, match="Only this course's instructors and admins"):
        usage.course_usage_report(course=course, user=person)
    assert usage.course_usage_report(course=course, user=course.instructors.get()).students


@pytest.mark.parametrize("who", [InstructorFactory, StudentFactory])
def test_only_admins_read_the_report_across_courses(who):
    with pytest.raises(PermissionDenied, match="Only admins"):
        usage.usage_report(user=who())


def _queries(read) -> int:
    read()  # the reader's roles are cached on the user after the first read
    with CaptureQueriesContext(connection) as captured:
        read()
    return len(captured)


def test_the_course_report_runs_the_same_queries_for_4_or_40_students(course, django_assert_max_num_queries):
    admin = AdminFactory()
    instructor = course.instructors.get()

    def read():
        return usage.course_usage_report(course=course, user=admin, period=OCTOBER, now=NOW)

    few = _queries(read)
    for n in range(36):
        student = StudentFactory()
        course_services.enrollment_add(course=course, actor=instructor, student=student)
        lab = make_lab(course, student, running_since=at(10, 9))
        run(lab, at(2, 8), at(2, 9))
        LabSnapshot.objects.create(lab=lab, name=f"s{n}")
        snapshot_operation(lab, at(2, 10))
    gone = Lab.objects.get(state=Lab.State.DELETED)
    course_services.enrollment_remove(actor=instructor, enrollment=course.enrollments.get(student=gone.student))
    assert _queries(read) == few
    with django_assert_max_num_queries(10):
        report = read()
    assert len(report.students) == 40


def test_the_report_across_courses_runs_the_same_queries_for_1_or_8_courses(course, django_assert_max_num_queries):
    admin = AdminFactory()

    def read():
        return usage.usage_report(user=admin, period=OCTOBER, now=NOW)

    few = _queries(read)
    for n in range(7):
        other = open_course(students=1, code=f"more-{n}")
        lab = make_lab(other, other.enrollments.get().student, running_since=at(10, 9))
        run(lab, at(2, 8), at(2, 9))
    assert _queries(read) == few
    with django_assert_max_num_queries(10):
        assert len(read().courses) == 8


# The ledger the reports read (labs.services.lab_power_changed)


def test_a_lab_that_stops_leaves_its_run_in_the_ledger(course):
    lab = Lab.objects.get(student__username="alice")
    started = timezone.now() - timedelta(hours=2)
    Lab.objects.filter(pk=lab.pk).update(running_since=started, hours_used=0)
    LabVM.objects.create(lab=lab, role="esxi-01", name="esxi-01", moref="vm-1", power_state="poweredOff")
    before = LabRun.objects.filter(lab=lab).count()

    services.lab_power_changed(lab=lab)

    lab.refresh_from_db()
    latest = LabRun.objects.filter(lab=lab).latest("ended_at")
    assert LabRun.objects.filter(lab=lab).count() == before + 1
    assert latest.started_at == started
    assert lab.running_since is None
    assert latest.hours == pytest.approx(lab.hours_used)
    assert latest.hours == pytest.approx(2, abs=0.01)


def test_a_lab_that_starts_opens_no_run_until_it_stops(course):
    lab = Lab.objects.get(student__username="bob", number=2)
    LabVM.objects.create(lab=lab, role="esxi-01", name="esxi-01", moref="vm-2", power_state="poweredOn")
    services.lab_power_changed(lab=lab)
    lab.refresh_from_db()
    assert lab.running_since is not None
    assert not LabRun.objects.filter(lab=lab).exists()
