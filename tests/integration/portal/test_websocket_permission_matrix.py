"""The permission matrix of the WebSocket routes as a whole (portal/routing.py): every route,
asked by every role of the API matrix (test_permission_matrix.py), through the real ASGI
application (origin check, session cookie, the consumers of labs/consumers.py).

The routes are read from ``portal.routing.websocket_urlpatterns``: a route added without a row
in EXPECTED fails by name. An accepted connection must send the full state first; a lab's says
whether the person may act on it (``can_act``: false for its owner once removed from the course).
"""

from __future__ import annotations

import json
import re

import pytest

from core.models import AuditEntry
from courses import services as course_services
from labs import console, services, vsphere
from labs.models import Lab, LabVM
from portal.routing import websocket_urlpatterns
from tests.factories import AdminFactory, open_course
from tests.integration.labs.test_consumers import Session, _headers, close_clients  # noqa: F401
from tests.support.websocket_schema import check_message

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.integration]

ROLES = ("anonymous", "owner", "classmate", "outsider", "removed", "instructor", "other_instructor", "admin")
ACTS, READS, FULL = "lab.full, can act", "lab.full, reads only", "course.full"
PROGRESS = "operation.progress"  # an operation's socket starts with its state as it is now

# Per route, what each role gets, in ROLES order: the full state, or the close code
# (4401 not signed in, 4403 not allowed). The removed student asks about their own lab.
EXPECTED = {
    # anonymous, owner, classmate, outsider, removed, instructor, other_instructor, admin
    "ws/labs/{lab_id}/": (4401, ACTS, 4403, 4403, READS, ACTS, 4403, ACTS),
    "ws/courses/{course_id}/": (4401, 4403, 4403, 4403, 4403, FULL, 4403, FULL),
    # A publish the course's instructor started: for them and admins.
    "ws/operations/{operation_id}/": (4401, 4403, 4403, 4403, 4403, PROGRESS, 4403, PROGRESS),
    # A console the owner opened: a key is one person's, once. The owner is admitted; the relay
    # then finds no vCenter in this test (HOST_FAILED, 4502), which only an admitted one reaches.
    "ws/console/{key}/": (4401, 4502, 4403, 4403, 4403, 4403, 4403, 4403),
}


def _route(pattern) -> str:
    return re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", str(pattern.pattern))


ROUTES = sorted(_route(pattern) for pattern in websocket_urlpatterns)


@pytest.fixture(autouse=True)
def no_queue(monkeypatch):
    monkeypatch.setattr(services.dispatch, "send_operation", lambda *args, **kwargs: None)


@pytest.fixture(autouse=True)
def no_vcenter(monkeypatch):
    def unreachable(session):
        raise vsphere.Unreachable("There is no vCenter in this test.")

    monkeypatch.setattr(console, "console_ticket", unreachable)


def _world():
    course, other_course = open_course(students=3), open_course(students=1)
    owner, classmate, removed = (e.student for e in course.enrollments.order_by("pk"))
    instructor = course.instructors.get()
    lab = services.lab_start(course=course, student=owner, actor=owner).lab
    Lab.objects.filter(pk=lab.pk).update(state=Lab.State.READY)
    LabVM.objects.filter(lab=lab).update(power_state="poweredOn", moref="vm-1")
    console_key = console.console_open(lab=lab, vm=lab.vms.first(), actor=owner).key
    removed_lab = services.lab_start(course=course, student=removed, actor=removed).lab
    course_services.enrollment_remove(enrollment=course.enrollments.get(student=removed), actor=instructor)
    template = course.template_version.template
    course_services.template_update(template=template, actor=instructor, description="Next term's draft")
    publish = services.template_publish(template=template, actor=instructor)
    users = {
        "anonymous": None,
        "owner": owner,
        "classmate": classmate,
        "outsider": other_course.enrollments.get().student,
        "removed": removed,
        "instructor": instructor,
        "other_instructor": other_course.instructors.get(),
        "admin": AdminFactory(),
    }
    targets = {
        role: {
            "lab_id": (removed_lab if role == "removed" else lab).pk,
            "course_id": course.pk,
            "operation_id": publish.pk,
            "key": console_key,
        }
        for role in ROLES
    }
    return users, targets


def _answer(ws) -> str | int:
    first = ws.output()
    if first["type"] == "websocket.close":
        return first["code"]
    message = check_message(json.loads(first["text"]))
    if message["type"] == "lab.full":
        return ACTS if message["can_act"] else READS
    return message["type"]


def test_every_websocket_route_has_a_row():
    assert not set(ROUTES) - set(EXPECTED), f"WebSocket routes without a row in EXPECTED: {set(ROUTES) - set(EXPECTED)}"
    assert not set(EXPECTED) - set(ROUTES), (
        f"Rows for routes portal/routing.py no longer has: {set(EXPECTED) - set(ROUTES)}"
    )


@pytest.mark.parametrize("route", ROUTES)
def test_each_role_gets_exactly_the_expected_answer(route):
    if route not in EXPECTED:
        pytest.fail(f"ws/{route} has no row in EXPECTED: who may connect?")
    users, targets = _world()
    got, unrecorded = [], []
    for role in ROLES:
        before = AuditEntry.objects.filter(category="refusal").count()
        ws = Session("/" + route.format(**targets[role]), _headers(users[role]))
        assert ws.connected, f"{role}: the handshake itself was refused"
        answer = _answer(ws)
        got.append(answer)
        ws.close()
        recorded = AuditEntry.objects.filter(category="refusal").count() - before
        if answer == 4403 and recorded != 1:  # a refused signed-in person is recorded once (issue 12)
            unrecorded.append(f"{role}: 4403 with {recorded} audit entries")
    wrong = [f"{role}: {g} (expected {e})" for role, g, e in zip(ROLES, got, EXPECTED[route], strict=True) if g != e]
    assert not wrong, f"/{route}: " + "; ".join(wrong)
    assert not unrecorded, f"/{route}: " + "; ".join(unrecorded)
