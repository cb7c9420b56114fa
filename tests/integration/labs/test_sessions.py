"""labs/sessions.py: a class session's labs started and powered on before its start (time moved
forward with ``now``), once; refusals in words; unused labs off after it; the idle clock held."""

import datetime
from datetime import timedelta

import pytest
from django.utils import timezone

from core.models import AuditEntry, Notice
from courses import services as course_services
from labs import lifecycle, selectors, services, sessions
from labs.models import Lab, Operation, SessionPreparation
from tests.factories import lab_row, open_course

pytestmark = pytest.mark.django_db

UTC = datetime.UTC
DAY = datetime.date.today() + timedelta(days=1)
START = datetime.datetime.combine(DAY, datetime.time(9, 0), tzinfo=UTC)
# ready 10 minutes before, the default build time of 10 minutes and the tick's minute: from 08:39.
BUILDS_BEGIN = START - timedelta(minutes=21)


@pytest.fixture(autouse=True)
def no_queue(monkeypatch):
    monkeypatch.setattr(services.dispatch, "send_operation", lambda *args, **kwargs: None)


def _course_with_session(students=3, quota=None, **fields):
    course = open_course(students=students, quota=quota)
    session = course_services.class_session_create(
        course=course,
        actor=course.instructors.get(),
        **{
            "first_date": DAY,
            "start_time": datetime.time(9, 0),
            "duration_minutes": 60,
            "time_zone": "UTC",
            "ready_minutes_before": 10,
            **fields,
        },
    )
    return course, session


def _students(course):
    return [enrollment.student for enrollment in course.enrollments.select_related("student")]


def _builds(course):
    return Operation.objects.filter(lab__course=course, kind=Operation.Kind.PROVISION)


def _power_ons(course):
    return Operation.objects.filter(lab__course=course, kind=Operation.Kind.POWER, params__action="on")


def test_labs_are_started_when_the_build_window_opens_not_before_and_once():
    course, _ = _course_with_session()
    assert sessions.tick(now=BUILDS_BEGIN - timedelta(minutes=1)).started == []
    assert not _builds(course).exists() and not SessionPreparation.objects.exists()

    result = sessions.tick(now=BUILDS_BEGIN + timedelta(seconds=30))
    assert len(result.started) == 3
    builds = _builds(course)
    assert {op.lab.student for op in builds} == set(_students(course))
    assert all(op.actor is None and op.params == {"reason": "class_session"} for op in builds)
    preparation = SessionPreparation.objects.get()
    assert preparation.occurrence_start == START and preparation.prepared_at is not None
    assert preparation.build_minutes == 10
    assert set(preparation.labs.values_list("pk", flat=True)) == set(result.started)
    assert set(preparation.outcome.values()) == {"lab started"}
    assert Notice.objects.filter(text__contains="to be ready for 09:00 (UTC)").count() == 3

    again = sessions.tick(now=BUILDS_BEGIN + timedelta(minutes=1))
    assert again.started == [] and again.prepared == []
    assert _builds(course).count() == 3


def test_ready_labs_that_are_off_are_powered_on_and_running_ones_left_alone():
    course, _ = _course_with_session()
    off, running, missing = _students(course)
    lab_off = lab_row(course, off)
    lab_running = lab_row(course, running, running_since=START - timedelta(hours=1))
    result = sessions.tick(now=BUILDS_BEGIN)
    assert result.powered_on == [lab_off.pk]
    assert [Lab.objects.get(pk=pk).student for pk in result.started] == [missing]
    assert _power_ons(course).get().lab == lab_off
    assert not _power_ons(course).filter(lab=lab_running).exists()
    outcome = SessionPreparation.objects.get().outcome
    assert outcome == {off.username: "powered on", running.username: "already running", missing.username: "lab started"}


def test_a_lab_busy_at_the_first_tick_is_powered_on_when_it_is_free_before_the_start():
    course, _ = _course_with_session(students=1)
    [student] = _students(course)
    lab = lab_row(course, student)
    snapshot = services.lab_snapshot_create(lab=lab, actor=student, name="before class")
    first = sessions.tick(now=BUILDS_BEGIN)
    assert first.powered_on == [] and first.started == []
    preparation = SessionPreparation.objects.get()
    assert preparation.prepared_at is None, "a busy lab keeps the meeting open"
    assert preparation.outcome[student.username] == sessions.PENDING

    Operation.objects.filter(pk=snapshot.pk).update(state=Operation.State.SUCCEEDED)
    later = sessions.tick(now=BUILDS_BEGIN + timedelta(minutes=5))
    assert later.powered_on == [lab.pk]
    preparation.refresh_from_db()
    assert preparation.prepared_at is not None and preparation.outcome[student.username] == "powered on"


def test_a_tick_that_died_half_way_is_resumed_without_doing_anything_twice():
    course, session = _course_with_session()
    first, *rest = _students(course)
    services.lab_system_start(course=course, student=first, reason=sessions.REASON)
    SessionPreparation.objects.create(
        session=session,
        occurrence_start=START,
        occurrence_end=START + timedelta(hours=1),
        build_minutes=10,
        started_at=BUILDS_BEGIN,
        outcome={first.username: "lab started"},
    )
    result = sessions.tick(now=BUILDS_BEGIN + timedelta(minutes=1))
    assert sorted(Lab.objects.get(pk=pk).student.pk for pk in result.started) == sorted(s.pk for s in rest)
    assert _builds(course).count() == 3
    assert SessionPreparation.objects.get().prepared_at is not None


def test_a_quota_refusal_is_the_students_outcome_in_words_and_audited():
    course, _ = _course_with_session(students=2, quota={"running_labs": 1})
    result = sessions.tick(now=BUILDS_BEGIN)
    assert len(result.started) == 1
    [(who, words)] = result.refused.items()
    assert who.startswith(f"{course.code}/") and "not made ready" in words and "can run at once" in words
    entry = AuditEntry.objects.get(action="lab.session")
    assert entry.actor is None and entry.result == "refused" and who.split("/")[1] in entry.detail
    assert SessionPreparation.objects.get().prepared_at is not None, "a refusal is an answer, not a retry"


def test_the_class_labs_page_shows_what_the_tick_did_and_why_not(client):
    from django.urls import reverse

    course, _ = _course_with_session(students=2, quota={"running_labs": 1})
    sessions.tick(now=BUILDS_BEGIN)
    client.force_login(course.instructors.get())
    page = client.get(reverse("labs:class-labs", args=[course.pk])).content.decode()
    assert "Class sessions: labs made ready" in page
    assert "1 lab started · 1 not made ready" in page
    assert "not made ready: No more labs can run at once in this class" in page


def test_one_tick_at_a_time_across_workers():
    course, _ = _course_with_session(students=1)
    held = sessions._redis().lock(sessions.TICK_LOCK, timeout=30)
    assert held.acquire(blocking=False)
    try:
        assert sessions.tick_alone(now=BUILDS_BEGIN) is None
        assert not _builds(course).exists()
    finally:
        held.release()
    assert len(sessions.tick_alone(now=BUILDS_BEGIN).started) == 1


def test_the_measured_build_time_opens_the_window_earlier():
    course, _ = _course_with_session(students=1)
    version = course.template_version
    [student] = _students(course)
    # Earlier builds of this version (labs since deleted) took 30 to 40 minutes, click to ready.
    for minutes in (30, 31, 32, 33, 34, 35, 36, 37, 38, 40):
        lab = lab_row(course, student, number=minutes, state=Lab.State.DELETED)
        Operation.objects.create(
            kind=Operation.Kind.PROVISION,
            state=Operation.State.SUCCEEDED,
            endpoint=lab.endpoint,
            lab=lab,
            created_at=START - timedelta(days=7),
            finished_at=START - timedelta(days=7) + timedelta(minutes=minutes),
        )
    assert selectors.template_build_time(version) == timedelta(minutes=38)
    assert sessions.tick(now=START - timedelta(minutes=50)).started == []
    assert len(sessions.tick(now=START - timedelta(minutes=48)).started) == 1
    assert SessionPreparation.objects.get().build_minutes == 38


def test_a_meeting_that_began_unprepared_is_left_to_the_students_start():
    _course_with_session()
    assert sessions.tick(now=START + timedelta(minutes=5)).started == []
    assert not SessionPreparation.objects.exists()


def test_after_the_meeting_unused_labs_are_powered_off_and_used_ones_kept():
    course, _ = _course_with_session(students=2)
    used, unused = _students(course)
    lab_used, lab_unused = lab_row(course, used), lab_row(course, unused)
    sessions.tick(now=BUILDS_BEGIN)
    Lab.objects.filter(pk__in=[lab_used.pk, lab_unused.pk]).update(running_since=timezone.now())
    Operation.objects.update(state=Operation.State.SUCCEEDED)
    Lab.objects.filter(pk=lab_used.pk).update(last_activity_at=START + timedelta(minutes=10))

    end = START + timedelta(hours=1)
    assert sessions.tick(now=end + timedelta(minutes=14)).powered_off == []
    result = sessions.tick(now=end + sessions.GRACE_AFTER_END)
    assert result.powered_off == [lab_unused.pk]
    assert Operation.objects.get(lab=lab_unused, params__action="off").params["reason"] == "class_session_unused"
    assert SessionPreparation.objects.get().closed_at is not None
    assert sessions.tick(now=end + timedelta(minutes=30)).powered_off == []


def test_a_lab_waiting_for_its_class_is_not_idle_before_the_start():
    course, _ = _course_with_session(students=1, quota={"idle_minutes": 15})
    [student] = _students(course)
    lab = lab_row(course, student)
    sessions.tick(now=BUILDS_BEGIN)
    Operation.objects.update(state=Operation.State.SUCCEEDED)
    Lab.objects.filter(pk=lab.pk).update(running_since=timezone.now())
    # Long after it came on, nobody touched it: not idle, the class has not started.
    assert lifecycle.tick(now=START - timedelta(minutes=1)).idle == []
    assert lifecycle.tick(now=START + timedelta(minutes=14)).idle == []
    assert lifecycle.tick(now=START + timedelta(minutes=15)).idle == [lab.pk]


# Against the simulator: the operations the tick starts run in-process (as in jobs/test_lab_ops.py).


@pytest.fixture
def demo_course(monkeypatch):
    from portal import demo, simulator

    server = simulator.start(args=["-demo"])
    try:
        yield demo.seed_demo(vcenter_url=server.url, vcenter_user=server.username, vcenter_password=server.password)
    finally:
        server.stop()


def _run_all(course) -> None:
    from labs.jobs import execute

    while (operation := Operation.objects.filter(lab__course=course, state=Operation.State.QUEUED).first()) is not None:
        execute(operation.pk)


@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
def test_in_vcenter_every_students_lab_is_built_or_powered_on_before_the_session_starts(demo_course):
    course = demo_course
    first, *others = _students(course)
    # student1's lab exists already, built and then powered off after an earlier class.
    built = services.lab_start(course=course, student=first, actor=first)
    _run_all(course)
    lab = Lab.objects.get(pk=built.lab_id)
    services.lab_power(lab=lab, actor=first, action="off")
    _run_all(course)
    lab.refresh_from_db()
    assert lab.state == Lab.State.READY and not lab.is_running

    start = (timezone.now() + timedelta(minutes=30)).replace(second=0, microsecond=0)
    course_services.class_session_create(
        course=course,
        actor=course.instructors.first(),
        first_date=start.date(),
        start_time=start.time(),
        duration_minutes=60,
        time_zone="UTC",
        ready_minutes_before=10,
    )
    session = course.sessions.get()
    lead = sessions.lead_time(session, selectors.template_build_time(course.template_version))
    assert sessions.tick(now=start - lead - timedelta(minutes=1)).prepared == []
    result = sessions.tick(now=start - lead)
    assert result.powered_on == [lab.pk] and len(result.started) == len(others)
    _run_all(course)

    labs = Lab.objects.filter(course=course, state__in=Lab.ACTIVE_STATES)
    assert {each.student for each in labs} == {first, *others}
    for each in labs:
        assert each.state == Lab.State.READY and each.is_running, each.error
        assert {vm.power_state for vm in each.vms.all()} == {"poweredOn"}
    prepared = Operation.objects.filter(lab__course=course, params__reason=sessions.REASON)
    ends = prepared.values_list("state", "finished_at")
    assert {state for state, _ in ends} == {Operation.State.SUCCEEDED}
    assert max(finished for _, finished in ends) < start - timedelta(minutes=10)
