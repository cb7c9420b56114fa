"""Every page route, asked by every signed-in role with GET and POST: each refusal writes exactly
one audit entry (issue 12), whichever way the page answers it: a 403 page, a 404 for an object
that exists but is not theirs, or a message after a service's PermissionDenied. The API's and
the WebSockets' matrices are in test_permission_matrix.py and test_websocket_permission_matrix.py.
"""

from __future__ import annotations

import re
from dataclasses import fields

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


# A route parameter `<thing_id>` is found in the World (_world_pk); these are the rest: values
# that are no World field's, or that depend on the route.
def _special(w: World, role: str, route: str) -> dict[str, object]:
    lab = w.removed_lab if role == "removed" else w.lab
    return {
        "snapshot_id": lambda: lab.snapshots.get(is_baseline=False).pk,
        "vm_id": lambda: (w.template_vm if route.startswith("templates/") else lab.vms.get(role="esxi-01")).pk,
        "user_id": lambda: w.course.instructors.get().pk,
        "session_id": lambda: _class_session(w).pk,  # a class session (w.console_session is a console's)
        "moref": lambda: w.source_moref,
        "fragment": lambda: "snapshots",
        "uidb64": lambda: "MQ",
        "token": lambda: "set-password",
        "name": lambda: w.guide_image.name,
    }


def _world_pk(w: World, role: str, parameter: str) -> int | None:
    """`<thing_id>` from the World the permission matrix builds: the role's own (`removed_lab` for
    the removed student), else the field `thing`, else the one object field ending in `_thing`
    (`guide_step`, `spare_network`, `lti_link`); None when there is none, or more than one."""
    if not parameter.endswith("_id"):
        return None
    thing = parameter.removesuffix("_id")
    objects = {field.name: getattr(w, field.name) for field in fields(World)}
    objects = {name: value for name, value in objects.items() if hasattr(value, "pk")}
    for name in (f"{role}_{thing}", thing):
        if name in objects:
            return objects[name].pk
    endings = [value for name, value in objects.items() if name.endswith(f"_{thing}")]
    return endings[0].pk if len(endings) == 1 else None


def _path(w: World, role: str, route: str) -> str:
    special = _special(w, role, route)
    path = "/" + route
    for parameter in re.findall(r"<(?:\w+:)?(\w+)>", route):
        value = special[parameter]() if parameter in special else _world_pk(w, role, parameter)
        assert value is not None, (
            f"no value for <{parameter}> of /{route}: give the World (tests/integration/portal/conftest.py) "
            f"a field named after it, or add it to _special"
        )
        path = re.sub(rf"<(?:\w+:)?{parameter}>", str(value), path)
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


@pytest.mark.django_db
def test_a_new_routes_parameter_is_found_in_the_world_or_fails_the_walk_in_words(world):
    assert _path(world, "removed", "labs/<int:lab_id>/links/<int:link_id>/") == (
        f"/labs/{world.removed_lab.pk}/links/{world.lti_link.pk}/"
    )
    with pytest.raises(AssertionError, match="no value for <widget_id> of /widgets/<int:widget_id>/"):
        _path(world, "owner", "widgets/<int:widget_id>/")
