"""Every page route, asked by every signed-in role with GET and POST: each refusal writes exactly
one audit entry (issue 12), whichever way the page answers it: a 403 page, a 404 for an object
that exists but is not theirs, or a message after a service's PermissionDenied. The API's and
the WebSockets' matrices are in test_permission_matrix.py and test_websocket_permission_matrix.py.
"""

from __future__ import annotations

import pytest
from django.contrib.messages import get_messages
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.test import Client
from django.urls import URLResolver, get_resolver

from core.models import AuditEntry
from tests.integration.portal.conftest import World

ROLES = ("owner", "classmate", "outsider", "removed", "instructor", "other_instructor", "admin")
# Not pages of the product: the admin site (Django's own), the API (its own matrix), sign-in (and
# django-allauth's identity-provider routes under accounts/), the health probe and the icon.
SKIPPED = ("api/", "admin/", "login/", "logout/", "accounts/", "healthz", "favicon.ico")
# A POST body that gets past form parsing to the permission check on every route.
BODY = {"confirmed": "1", "action": "off", "name": "x", "username": "x", "labs": "", "text": "x"}


def _walk(patterns, prefix=""):
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            yield from _walk(pattern.url_patterns, prefix + str(pattern.pattern))
        else:
            yield prefix + str(pattern.pattern), pattern


def page_routes() -> list[str]:
    return sorted({route for route, _ in _walk(get_resolver().url_patterns) if not route.startswith(SKIPPED)})


def _class_session(w: World):
    from courses.models import ClassSession

    session, _ = ClassSession.objects.get_or_create(
        course=w.course,
        defaults={
            "first_date": "2026-03-10",
            "start_time": "09:00",
            "duration_minutes": 60,
            "time_zone": "Europe/Paris",
        },
    )
    return session


def _path(w: World, role: str, route: str) -> str:
    lab = w.removed_lab if role == "removed" else w.lab
    values = {
        "lab_id": lab.pk,
        "course_id": w.course.pk,
        "template_id": w.template.pk,
        "endpoint_id": w.endpoint.pk,
        "operation_id": (w.removed_operation if role == "removed" else w.operation).pk,
        "snapshot_id": lab.snapshots.get(is_baseline=False).pk,
        "vm_id": (w.template_vm if route.startswith("templates/") else lab.vms.get(role="esxi-01")).pk,
        "network_id": w.spare_network.pk,
        "user_id": w.course.instructors.get().pk,
        "enrollment_id": w.classmate_enrollment.pk,
        "moref": w.source_moref,
        "fragment": "snapshots",
        "key_id": w.owner_key.pk,
        "link_id": w.lti_link.pk,
        "uidb64": "MQ",
        "token": "set-password",
        "step_id": w.guide_step.pk,
        "check_id": w.guide_check.pk,
        "variable_id": w.guide_variable.pk,
        "image_id": w.guide_image.pk,
        "name": w.guide_image.name,
        "session_id": _class_session(w).pk,
    }
    path = "/" + route
    for name, value in values.items():
        for parameter in (f"<int:{name}>", f"<str:{name}>", f"<{name}>"):
            path = path.replace(parameter, str(value))
    assert "<" not in path, f"no value for a parameter of /{route}"
    return path


class RaisedRefusals:
    """The PermissionDenied raised while a request is answered (services, permission checks)."""

    def __init__(self, monkeypatch) -> None:
        self.messages: list[str] = []
        original = PermissionDenied.__init__

        def record(refusal, *args, **kwargs):
            original(refusal, *args, **kwargs)
            self.messages.append(str(refusal))

        monkeypatch.setattr(PermissionDenied, "__init__", record)


def _ask(w: World, role: str, method: str, route: str, raised: RaisedRefusals) -> tuple[int, int, bool]:
    """The status, the refusal entries written, and whether a raised refusal reached the person
    as a message (a page that shows a service's refusal and goes on)."""
    client = Client()
    client.force_login(w.users[role])
    path = _path(w, role, route)
    with transaction.atomic():
        before = AuditEntry.objects.filter(category=AuditEntry.Category.REFUSAL).count()
        raised.messages.clear()
        response = client.post(path, BODY) if method == "post" else client.get(path)
        recorded = AuditEntry.objects.filter(category=AuditEntry.Category.REFUSAL).count() - before
        shown = {str(message) for message in get_messages(response.wsgi_request)}
        refusal_shown = any(refusal in text for refusal in raised.messages for text in shown if refusal)
        transaction.set_rollback(True)
    return response.status_code, recorded, refusal_shown


ROUTES = page_routes()


@pytest.mark.django_db
@pytest.mark.parametrize("route", ROUTES, ids=[f"/{route}" for route in ROUTES])
def test_every_page_refusal_of_a_signed_in_person_is_recorded_once(world, route, monkeypatch):
    raised = RaisedRefusals(monkeypatch)
    wrong = []
    for method in ("get", "post"):
        for role in ROLES:
            status, recorded, refusal_shown = _ask(world, role, method, route, raised)
            refused = status in (403, 404) or refusal_shown
            if (refused and recorded != 1) or recorded > 1:
                wrong.append(f"{method.upper()} as {role}: {status} with {recorded} refusal entries")
    assert not wrong, f"/{route}: " + "; ".join(wrong)


@pytest.mark.django_db
def test_the_walk_sees_refusals_of_each_kind(world, monkeypatch):
    """The matrix is not empty: a 403 page, a 404 for someone else's lab, and a service's refusal
    shown as a message are each seen as refused and recorded once."""
    raised = RaisedRefusals(monkeypatch)
    assert {"labs/<int:lab_id>/reset/", "courses/<int:course_id>/roster/", "people/", "audit/"} <= set(ROUTES)
    assert _ask(world, "owner", "get", "people/", raised) == (403, 1, False)
    assert _ask(world, "classmate", "get", "labs/<int:lab_id>/", raised) == (404, 1, False)
    assert _ask(world, "removed", "post", "labs/<int:lab_id>/reset/", raised) == (302, 1, True)
