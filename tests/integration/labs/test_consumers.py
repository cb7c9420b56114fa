"""labs/consumers.py through the real ASGI application (origin check, session auth) and the
real Redis channel layer: refusals, full state first, deltas in order."""

from __future__ import annotations

import asyncio

import pytest
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.test import Client

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
    monkeypatch.setattr(services, "_enqueue", lambda *args: None)


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
    from portal.models import AuditEntry

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
