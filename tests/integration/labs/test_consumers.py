"""labs/consumers.py through the real ASGI application (origin check, session auth) and the
real Redis channel layer: refusals, full state first, deltas in order."""

from __future__ import annotations

import asyncio

import pytest
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.test import Client

from courses import services as course_services
from labs import realtime, services
from labs.consumers import NOT_ALLOWED, NOT_SIGNED_IN
from labs.models import Lab
from portal.asgi import application
from tests.factories import AdminFactory, InstructorFactory, open_course
from tests.support.websocket_schema import check_message

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.integration]
ORIGIN = b"http://127.0.0.1:8000"


@pytest.fixture(autouse=True)
def no_queue(monkeypatch):
    monkeypatch.setattr(services.dispatch, "send_operation", lambda *args, **kwargs: None)


def _cookie(user) -> bytes:
    client = Client()
    client.force_login(user)
    return f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}".encode()


def _headers(user=None, origin=ORIGIN):
    headers = [(b"origin", origin), (b"host", b"127.0.0.1:8000")]
    if user is not None:
        headers.append((b"cookie", _cookie(user)))
    return headers


# One event loop for every client of this module: the channel layer is process-wide and
# refuses to receive on two loops.
LOOP = asyncio.new_event_loop()
OPEN: list[Session] = []


@pytest.fixture(autouse=True)
def close_clients(transactional_db):
    """Disconnect every client while the database still exists (a consumer's disconnect
    closes its database connections)."""
    yield
    while OPEN:
        OPEN.pop().close()


class Session:
    """A WebSocket client for the duration of one test, driven from sync code."""

    def __init__(self, path, headers):
        self.loop = LOOP
        self.communicator = WebsocketCommunicator(application, path, headers=headers)
        self.connected, self.subprotocol = self.run(self.communicator.connect(timeout=5))
        self.closed = False
        OPEN.append(self)

    def run(self, coroutine):
        return self.loop.run_until_complete(coroutine)

    def receive(self, timeout=5):
        return check_message(self.run(self.communicator.receive_json_from(timeout=timeout)))

    def output(self, timeout=5):
        return self.run(self.communicator.receive_output(timeout=timeout))

    def send(self, message):
        self.run(self.communicator.send_json_to(message))

    def close(self):
        if not self.closed:
            self.closed = True
            self.run(self.communicator.disconnect())


def _lab(course, index=0):
    student = course.enrollments.order_by("student__username")[index].student
    return services.lab_start(course=course, student=student, actor=student).lab


def test_without_a_session_the_socket_is_closed_with_4401():
    lab = _lab(open_course())
    ws = Session(f"/ws/labs/{lab.pk}/", _headers())
    assert ws.connected
    assert ws.output() == {"type": "websocket.close", "code": NOT_SIGNED_IN}


def test_a_foreign_origin_is_refused_at_the_handshake():
    lab = _lab(open_course())
    ws = Session(f"/ws/labs/{lab.pk}/", _headers(lab.student, origin=b"https://evil.example"))
    assert not ws.connected


def test_another_students_lab_is_refused_with_4403_before_joining_any_group():
    course = open_course(students=2)
    lab = _lab(course, 0)
    classmate = course.enrollments.order_by("student__username")[1].student
    ws = Session(f"/ws/labs/{lab.pk}/", _headers(classmate))
    assert ws.output() == {"type": "websocket.close", "code": NOT_ALLOWED}


def test_an_instructor_of_another_course_is_refused():
    lab = _lab(open_course())
    ws = Session(f"/ws/labs/{lab.pk}/", _headers(InstructorFactory()))
    assert ws.output() == {"type": "websocket.close", "code": NOT_ALLOWED}


def test_a_warm_pool_labs_socket_is_refused_to_every_student_of_its_course():
    """Held already, pinned here: a pool lab (student NULL) is no student's, so its live channel
    is refused to all of them (a NULL owner never equals a signed-in person)."""
    from labs.models import WarmPool
    from tests.factories import lab_row

    course = open_course(students=2)
    WarmPool.objects.create(course=course, size=1)
    pooled = lab_row(course, None, 0)
    for enrollment in course.enrollments.all():
        ws = Session(f"/ws/labs/{pooled.pk}/", _headers(enrollment.student))
        assert ws.output() == {"type": "websocket.close", "code": NOT_ALLOWED}


def test_the_owner_gets_the_full_state_first_then_deltas_in_order():
    course = open_course()
    lab = _lab(course)
    ws = Session(f"/ws/labs/{lab.pk}/", _headers(lab.student))
    full = ws.receive()
    assert full["type"] == "lab.full"
    assert full["lab"]["id"] == lab.pk and full["lab"]["state"] == "provisioning"
    assert {vm["role"] for vm in full["vms"]} == {"esxi-01", "router"}
    assert full["operation"]["kind"] == "provision"

    Lab.objects.filter(pk=lab.pk).update(state=Lab.State.READY)
    lab.refresh_from_db()
    realtime.lab_changed(lab)
    vm = lab.vms.get(role="router")
    vm.power_state = "poweredOn"
    vm.save()
    realtime.vm_changed(vm)
    realtime.lab_changed(lab)

    first, second, third = ws.receive(), ws.receive(), ws.receive()
    assert (first["type"], second["type"], third["type"]) == ("lab.state", "vm.state", "lab.state")
    assert first["lab"]["state"] == "ready"
    assert second["vm"]["power_state"] == "poweredOn"
    assert full["seq"] < first["seq"] < third["seq"], "a lab's seq only grows"
    ws.close()


def test_a_resync_request_sends_the_full_state_again():
    lab = _lab(open_course())
    ws = Session(f"/ws/labs/{lab.pk}/", _headers(lab.student))
    first = ws.receive()
    ws.send({"type": "resync"})
    again = ws.receive()
    assert again["type"] == "lab.full" and again["seq"] >= first["seq"]
    ws.close()


def test_the_class_socket_is_for_the_courses_instructors_and_admins():
    course = open_course(students=2)
    _lab(course, 0)
    _lab(course, 1)
    instructor = course.instructors.get()
    for person in (instructor, AdminFactory()):
        ws = Session(f"/ws/courses/{course.pk}/", _headers(person))
        full = ws.receive()
        assert full["type"] == "course.full" and len(full["labs"]) == 2
        ws.close()
    student = course.enrollments.first().student
    ws = Session(f"/ws/courses/{course.pk}/", _headers(student))
    assert ws.output() == {"type": "websocket.close", "code": NOT_ALLOWED}


def test_the_class_socket_sees_each_labs_changes():
    course = open_course(students=1)
    lab = _lab(course)
    ws = Session(f"/ws/courses/{course.pk}/", _headers(course.instructors.get()))
    ws.receive()
    realtime.lab_changed(lab)
    assert ws.receive()["lab"]["id"] == lab.pk
    ws.close()


def test_a_malformed_message_fails_where_it_is_built():
    with pytest.raises(AssertionError, match="does not match"):
        realtime.realtime.publish(["lab.1"], {"type": "vm.state", "seq": 1, "vm": {"id": 1}})


def test_a_refused_socket_is_in_the_audit_log_once_and_one_without_a_session_is_not():
    from core.models import AuditEntry

    course = open_course(students=2)
    lab = _lab(course, 0)
    classmate = course.enrollments.order_by("student__username")[1].student
    Session(f"/ws/labs/{lab.pk}/", _headers(classmate)).output()
    Session(f"/ws/courses/{course.pk}/", _headers(classmate)).output()
    Session(f"/ws/labs/{lab.pk}/", _headers()).output()
    lab_refusal, course_refusal = AuditEntry.objects.filter(category="refusal").order_by("id")
    assert (lab_refusal.actor, lab_refusal.action, lab_refusal.source, lab_refusal.result) == (
        classmate,
        "websocket:lab",
        "websocket",
        "refused",
    )
    assert (lab_refusal.target_type, lab_refusal.target_id) == ("lab", str(lab.pk))
    assert lab_refusal.detail == (
        f"Only the lab's student, its course's instructors and admins follow a lab. (/ws/labs/{lab.pk}/)"
    )
    assert (course_refusal.action, course_refusal.target_id) == ("websocket:course", str(course.pk))


# Permission is asked again: on every resync, and when the person's access changes


def _instructor_pair(course):
    """A second instructor for the course, so that the first can be removed."""
    second = InstructorFactory()
    course_services.course_instructor_add(course=course, actor=course.instructors.get(), instructor=second)
    return second


def test_an_instructor_removed_from_the_course_is_closed_with_4403_without_asking():
    course = open_course(students=1)
    lab = _lab(course)
    leaving = course.instructors.get()
    staying = _instructor_pair(course)
    lab_socket = Session(f"/ws/labs/{lab.pk}/", _headers(leaving))
    class_socket = Session(f"/ws/courses/{course.pk}/", _headers(leaving))
    assert lab_socket.receive()["type"] == "lab.full" and class_socket.receive()["type"] == "course.full"

    course_services.course_instructor_remove(course=course, actor=staying, instructor=leaving)

    assert lab_socket.output() == {"type": "websocket.close", "code": NOT_ALLOWED}
    assert class_socket.output() == {"type": "websocket.close", "code": NOT_ALLOWED}
    # They left the groups: nothing of the course reaches them any more.
    realtime.lab_changed(lab)
    assert lab_socket.run(lab_socket.communicator.receive_nothing(timeout=0.5))


def test_a_resync_after_losing_access_is_answered_with_4403():
    course = open_course(students=1)
    lab = _lab(course)
    leaving = course.instructors.get()
    ws = Session(f"/ws/courses/{course.pk}/", _headers(leaving))
    ws.receive()
    course.instructors.remove(leaving)  # behind the services' back: no event, as if it was lost
    assert ws.run(ws.communicator.receive_nothing(timeout=0.3))

    ws.send({"type": "resync"})
    assert ws.output() == {"type": "websocket.close", "code": NOT_ALLOWED}
    lab_socket = Session(f"/ws/labs/{lab.pk}/", _headers(leaving))
    assert lab_socket.output() == {"type": "websocket.close", "code": NOT_ALLOWED}


def test_an_owner_removed_from_the_course_is_told_they_can_no_longer_act_without_asking():
    course = open_course(students=1)
    lab = _lab(course)
    ws = Session(f"/ws/labs/{lab.pk}/", _headers(lab.student))
    assert ws.receive()["can_act"] is True

    course_services.enrollment_remove(enrollment=course.enrollments.get(), actor=course.instructors.get())

    full, notice = ws.receive(), ws.receive()
    assert full["type"] == "lab.full" and full["can_act"] is False and full["lab"]["id"] == lab.pk
    assert notice["type"] == "notice" and "no longer enrolled" in notice["text"]
    # They still read their lab: changes keep coming, and a resync answers the read-only state.
    realtime.lab_changed(lab)
    assert ws.receive()["type"] == "lab.state"
    ws.send({"type": "resync"})
    assert ws.receive()["can_act"] is False


def test_a_resync_sees_a_removal_whose_event_was_lost():
    course = open_course(students=1)
    lab = _lab(course)
    ws = Session(f"/ws/labs/{lab.pk}/", _headers(lab.student))
    ws.receive()
    course.enrollments.all().delete()  # behind the services' back: no event
    ws.send({"type": "resync"})
    assert ws.receive()["can_act"] is False

    course_services.enrollment_add(course=course, actor=course.instructors.get(), student=lab.student)
    ws.send({"type": "resync"})
    assert ws.receive()["can_act"] is True


def test_a_disabled_account_is_closed_with_4401_at_its_next_resync():
    lab = _lab(open_course(students=1))
    ws = Session(f"/ws/labs/{lab.pk}/", _headers(lab.student))
    ws.receive()
    type(lab.student).objects.filter(pk=lab.student.pk).update(is_active=False)
    ws.send({"type": "resync"})
    assert ws.output() == {"type": "websocket.close", "code": NOT_SIGNED_IN}


def test_the_access_event_never_reaches_the_browser():
    course = open_course(students=2)
    lab = _lab(course)
    ws = Session(f"/ws/labs/{lab.pk}/", _headers(lab.student))
    ws.receive()
    # The owner's access did not change (a classmate was removed; or an event for them anyway).
    course_services.enrollment_remove(
        enrollment=course.enrollments.exclude(student=lab.student).get(), actor=course.instructors.get()
    )
    realtime.realtime.access_changed([lab.student.pk])
    assert ws.run(ws.communicator.receive_nothing(timeout=0.5))


@pytest.mark.parametrize("origin", [b"http://127.0.0.1:8001", b"https://127.0.0.1:8000"])
def test_the_same_host_on_another_port_or_scheme_is_refused(origin):
    lab = _lab(open_course())
    ws = Session(f"/ws/labs/{lab.pk}/", _headers(lab.student, origin=origin))
    assert not ws.connected


# Finding 7 (docs/security.md): one person opened 378 sockets


@pytest.fixture
def two_sockets_each(settings):
    import redis

    settings.NESTLAB_WS_PER_USER_LIMIT = 2
    connection = redis.Redis.from_url(settings.REDIS_URL)
    leftovers = list(connection.scan_iter("nestlab:websockets:user:*"))
    if leftovers:
        connection.delete(*leftovers)
    return connection


def test_one_socket_over_the_persons_limit_is_told_why_and_closed_with_4429(two_sockets_each):
    from core.models import AuditEntry
    from labs.consumers import TOO_MANY

    course = open_course(students=1)
    lab = _lab(course)
    first, second = (Session(f"/ws/labs/{lab.pk}/", _headers(lab.student)) for _ in range(2))
    assert first.receive()["type"] == second.receive()["type"] == "lab.full"
    third = Session(f"/ws/courses/{course.pk}/", _headers(lab.student))
    notice = third.receive()
    assert notice["type"] == "notice" and notice["level"] == "error"
    assert "2 live pages open already" in notice["text"] and "Close some" in notice["text"]
    assert third.output() == {"type": "websocket.close", "code": TOO_MANY}
    refusal = AuditEntry.objects.get(category="refusal")
    assert (refusal.actor, refusal.action, refusal.detail) == (
        lab.student,
        "websocket:course",
        f"Too many open live pages. (/ws/courses/{course.pk}/)",
    )
    # Someone else is counted apart, and a closed tab gives its place back.
    other = Session(f"/ws/courses/{course.pk}/", _headers(course.instructors.first()))
    assert other.receive()["type"] == "course.full"
    first.close()
    again = Session(f"/ws/labs/{lab.pk}/", _headers(lab.student))
    assert again.receive()["type"] == "lab.full"
    assert two_sockets_each.zcard(f"nestlab:websockets:user:{lab.student.pk}") == 2


# ws/operations/<id>/: the page of an operation that is not a lab's (issue 10, new user)


def test_an_operation_page_gets_its_state_then_every_change_until_it_ends():
    from labs import realtime as lab_realtime
    from labs.models import Operation

    course = open_course(students=1)
    instructor = course.instructors.get()
    template = course.template_version.template
    course_services.template_update(template=template, actor=instructor, description="Next term's draft")
    operation = services.template_publish(template=template, actor=instructor)
    ws = Session(f"/ws/operations/{operation.pk}/", _headers(instructor))
    first = ws.receive()
    assert first["type"] == "operation.progress" and first["operation"]["id"] == operation.pk
    assert first["operation"]["state"] == "queued"

    Operation.objects.filter(pk=operation.pk).update(state="running", progress=40, step="Checking 2 VMs")
    operation.refresh_from_db()
    lab_realtime.next_seq(operation)  # as the runner does with every change it writes
    lab_realtime.operation_changed(operation)
    delta = ws.receive()
    assert delta["operation"]["state"] == "running" and delta["operation"]["step"] == "Checking 2 VMs"
    # The instructor's other pages (their user group) are not what this socket listens on: one message.
    assert ws.run(ws.communicator.receive_nothing(timeout=0.5))
    ws.send({"type": "resync"})
    assert ws.receive()["operation"]["progress"] == 40


def test_a_labs_operation_is_not_followed_on_the_operation_socket():
    course = open_course(students=1)
    lab = _lab(course)
    operation = lab.operations.get()
    ws = Session(f"/ws/operations/{operation.pk}/", _headers(lab.student))
    assert ws.output() == {"type": "websocket.close", "code": NOT_ALLOWED}


def test_a_warm_pool_labs_socket_is_refused_to_its_courses_instructor_and_admins_too():
    """Every HTTP route answers 404 for a pool lab, its instructor's too (the pool's routes show
    it): the live channel agreed with them for students only, and accepted the instructor."""
    from labs.models import WarmPool
    from tests.factories import lab_row

    course = open_course(students=1)
    WarmPool.objects.create(course=course, size=1)
    pooled = lab_row(course, None, 0)
    for person in (course.instructors.get(), AdminFactory()):
        ws = Session(f"/ws/labs/{pooled.pk}/", _headers(person))
        assert ws.output() == {"type": "websocket.close", "code": NOT_ALLOWED}


def test_a_failed_build_reaches_its_student_live_without_vcenters_host_and_staff_with_it():
    """The same push goes to the lab's group; the student's socket words it for them."""
    from tests.support.failures import VCENTER_HOST, fail_build

    course = open_course()
    lab = _lab(course)
    student_ws = Session(f"/ws/labs/{lab.pk}/", _headers(lab.student))
    staff_ws = Session(f"/ws/labs/{lab.pk}/", _headers(course.instructors.get()))
    student_ws.receive(), staff_ws.receive()  # the full states, before the failure

    operation = fail_build(lab)
    realtime.operation_changed(operation)
    seen = {"student": [student_ws.receive(), student_ws.receive()], "staff": [staff_ws.receive(), staff_ws.receive()]}
    student_ws.send({"type": "resync"})
    seen["student"].append(student_ws.receive())

    assert VCENTER_HOST not in str(seen["student"])
    lab_state = next(message for message in seen["student"] if message["type"] == "lab.state")
    assert "the lab servers could not be reached" in lab_state["lab"]["error"]
    pushed = next(message for message in seen["student"] if message["type"] == "operation.progress")
    assert "could not be reached" in pushed["operation"]["error"]
    assert pushed["operation"]["step_label"] == pushed["operation"]["error"]
    assert "could not be reached" in seen["student"][-1]["lab"]["error"]  # the full state on resync
    assert all(f"{VCENTER_HOST}:443" in str(message) for message in seen["staff"])
