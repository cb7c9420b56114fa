"""The permission matrix of the REST API as a whole (portal/urls.py): every API route and method,
asked by every role, answers exactly the status code in EXPECTED.

The routes are read from the URL resolver, not from a list kept here: a route added later
without a row in EXPECTED (and its target in TARGETS) fails ``test_every_api_route_has_a_row``
by name, and its own matrix test says what to add.

Who asks (ROLES): nobody signed in; the student who owns the lab (enrolled); a classmate
(enrolled in the same course, not the owner); a student of another course; a student removed
from the course who still owns a lab there (they ask about their own lab and their own
operation); the course's instructor; another course's instructor; an admin.

The policy the table holds (docs/api.md, "Who may see what: 403 or 404"):
- anonymous: 403 everywhere but the token route and the schema;
- a route reserved to a role (vCenter endpoints and the picker: admins, or instructors for
  the picker and the endpoint names; templates: instructors and admins; instructors: admins)
  answers 403 to everyone else before anything is looked up;
- an object the caller may not see (another student's lab, another instructor's course, an
  operation on either) is 404, exactly as if it did not exist;
- an object the caller sees but may not act on is 403 in words (an enrolled student and an
  instructor's action, a removed student and their lab, an instructor and another's template).

Each cell runs in a transaction rolled back afterwards, so every role meets the same world;
nothing reaches vCenter but the picker, which asks the test simulator.
"""

from __future__ import annotations

import re

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import transaction
from django.urls import URLResolver, get_resolver
from rest_framework.test import APIClient

from labs.models import Lab, Operation
from tests.factories import DEFAULT_PASSWORD
from tests.integration.portal.conftest import PNG_1X1, World

pytestmark = pytest.mark.integration

ROLES = ("anonymous", "owner", "classmate", "outsider", "removed", "instructor", "other_instructor", "admin")
METHODS = ("get", "post", "put", "patch", "delete")


# The routes, from the URL resolver


def _walk(patterns, prefix=""):
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            yield from _walk(pattern.url_patterns, prefix + str(pattern.pattern))
        else:
            yield prefix + str(pattern.pattern), pattern.callback


def _route(raw: str) -> str:
    """``api/v1/^labs/(?P<pk>\\d+)/$`` and ``api/v1/courses/<int:course_id>/`` as ``api/v1/labs/{pk}/``."""
    route = re.sub(r"\(\?P<(\w+)>[^)]*\)", r"{\1}", raw.replace("^", "").replace("$", ""))
    return re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", route)


def _methods(callback) -> list[str]:
    actions = getattr(callback, "actions", None)  # a viewset's route: its method -> action map
    if actions:
        return sorted(actions)
    view = getattr(callback, "cls", None) or getattr(callback, "view_class", None)
    if view is None:  # a plain Django view: it may answer anything
        return list(METHODS)
    return sorted(method for method in METHODS if hasattr(view, method))


def api_routes() -> list[tuple[str, str]]:
    """Every (method, route) under /api/ that the URL conf answers."""
    found = set()
    for raw, callback in _walk(get_resolver().url_patterns):
        route = _route(raw)
        if route.startswith("api/"):
            found.update((method, route) for method in _methods(callback))
    return sorted(found, key=lambda item: (item[1], METHODS.index(item[0])))


# What each route is asked about: its path parameters, per role


def _lab_of(w: World, role: str) -> Lab:
    """The removed student asks about their own lab; everyone else about the owner's."""
    return w.removed_lab if role == "removed" else w.lab


def _lab_target(w: World, role: str) -> dict:
    lab = _lab_of(w, role)
    return {
        "pk": lab.pk,
        "snapshot_id": lab.snapshots.get(is_baseline=False).pk,
        "vm_id": lab.vms.get(role="esxi-01").pk,
    }


TARGETS = {
    "api/docs/": lambda w, role: {},
    "api/schema/": lambda w, role: {},
    "api/v1/auth/token/": lambda w, role: {},
    "api/v1/instructors/": lambda w, role: {},
    "api/v1/account/keys/": lambda w, role: {},
    "api/v1/account/keys/{pk}/": lambda w, role: {"pk": w.owner_key.pk},
    "api/v1/endpoints/": lambda w, role: {},
    "api/v1/endpoint-loads/": lambda w, role: {},
    "api/v1/endpoints/{pk}/": lambda w, role: {"pk": w.spare_endpoint.pk},
    "api/v1/endpoints/{endpoint_id}/check/": lambda w, role: {"endpoint_id": w.spare_endpoint.pk},
    "api/v1/endpoints/{endpoint_id}/reconcile/": lambda w, role: {"endpoint_id": w.spare_endpoint.pk},
    "api/v1/endpoints/{endpoint_id}/inventory/": lambda w, role: {"endpoint_id": w.endpoint.pk},
    "api/v1/endpoints/{endpoint_id}/vms/{moref}/": lambda w, role: {
        "endpoint_id": w.endpoint.pk,
        "moref": w.source_moref,
    },
    "api/v1/templates/": lambda w, role: {},
    "api/v1/templates/{pk}/": lambda w, role: {"pk": w.template.pk},
    "api/v1/templates/{template_id}/publish/": lambda w, role: {"template_id": w.template.pk},
    "api/v1/templates/{template_id}/prepare/": lambda w, role: {"template_id": w.template.pk},
    "api/v1/templates/{template_id}/networks/": lambda w, role: {"template_id": w.template.pk},
    "api/v1/templates/{template_id}/networks/{pk}/": lambda w, role: {
        "template_id": w.template.pk,
        "pk": w.spare_network.pk,
    },
    "api/v1/templates/{template_id}/vms/": lambda w, role: {"template_id": w.template.pk},
    "api/v1/templates/{template_id}/vms/{pk}/": lambda w, role: {"template_id": w.template.pk, "pk": w.template_vm.pk},
    "api/v1/templates/{template_id}/versions/": lambda w, role: {"template_id": w.template.pk},
    "api/v1/templates/{template_id}/versions/{pk}/": lambda w, role: {"template_id": w.template.pk, "pk": w.version.pk},
    "api/v1/templates/{template_id}/guide/steps/": lambda w, role: {"template_id": w.template.pk},
    "api/v1/templates/{template_id}/guide/steps/{pk}/": lambda w, role: {
        "template_id": w.template.pk,
        "pk": w.guide_step.pk,
    },
    "api/v1/templates/{template_id}/guide/steps/{step_id}/checks/": lambda w, role: {
        "template_id": w.template.pk,
        "step_id": w.guide_step.pk,
    },
    "api/v1/templates/{template_id}/guide/steps/{step_id}/checks/{pk}/": lambda w, role: {
        "template_id": w.template.pk,
        "step_id": w.guide_step.pk,
        "pk": w.guide_check.pk,
    },
    "api/v1/templates/{template_id}/guide/variables/": lambda w, role: {"template_id": w.template.pk},
    "api/v1/templates/{template_id}/guide/variables/{pk}/": lambda w, role: {
        "template_id": w.template.pk,
        "pk": w.guide_variable.pk,
    },
    "api/v1/templates/{template_id}/guide/images/": lambda w, role: {"template_id": w.template.pk},
    "api/v1/templates/{template_id}/guide/images/{pk}/": lambda w, role: {
        "template_id": w.template.pk,
        "pk": w.guide_image.pk,
    },
    "api/v1/courses/": lambda w, role: {},
    "api/v1/courses/join/": lambda w, role: {},
    "api/v1/courses/{pk}/": lambda w, role: {"pk": w.course.pk},
    "api/v1/courses/{pk}/join-code/": lambda w, role: {"pk": w.course.pk},
    "api/v1/courses/{pk}/roster/": lambda w, role: {"pk": w.course.pk},
    "api/v1/courses/{pk}/top-ups/": lambda w, role: {"pk": w.course.pk},
    "api/v1/courses/{pk}/usage/": lambda w, role: {"pk": w.course.pk},
    "api/v1/courses/{course_id}/quota/": lambda w, role: {"course_id": w.course.pk},
    "api/v1/courses/{course_id}/enrollments/": lambda w, role: {"course_id": w.course.pk},
    "api/v1/courses/{course_id}/enrollments/{pk}/": lambda w, role: {
        "course_id": w.course.pk,
        "pk": w.classmate_enrollment.pk,
    },
    "api/v1/courses/{course_id}/provision/": lambda w, role: {"course_id": w.course.pk},
    "api/v1/courses/{course_id}/labs/bulk/": lambda w, role: {"course_id": w.course.pk},
    "api/v1/operations/": lambda w, role: {},
    "api/v1/operations/{pk}/": lambda w, role: {"pk": _operation_of(w, role).pk},
    "api/v1/operations/{pk}/cancel/": lambda w, role: {"pk": _operation_of(w, role).pk},
    "api/v1/labs/": lambda w, role: {},
    "api/v1/labs/{pk}/": _lab_target,
    "api/v1/labs/{pk}/snapshots/": _lab_target,
    "api/v1/labs/{pk}/snapshots/{snapshot_id}/": _lab_target,
    "api/v1/labs/{pk}/revert/": _lab_target,
    "api/v1/labs/{pk}/reset/": _lab_target,
    "api/v1/labs/{pk}/extend/": _lab_target,
    "api/v1/labs/{pk}/clone/": _lab_target,
    "api/v1/labs/{pk}/power/": _lab_target,
    "api/v1/labs/{pk}/vms/{vm_id}/console/": _lab_target,
    "api/v1/labs/{pk}/guide/": _lab_target,
    "api/v1/labs/{pk}/guide/check/": _lab_target,
    "api/v1/labs/{pk}/guide/position/": _lab_target,
    "api/v1/labs/{pk}/guide/steps/{step_key}/done/": lambda w, role: {
        "pk": _lab_of(w, role).pk,
        "step_key": w.plain_step_key,
    },
    "api/v1/courses/{course_id}/guide/progress/": lambda w, role: {"course_id": w.course.pk},
    "api/v1/courses/{course_id}/guide/progress.csv": lambda w, role: {"course_id": w.course.pk},
    "api/v1/courses/{course_id}/guide/check/": lambda w, role: {"course_id": w.course.pk},
    "api/v1/courses/{course_id}/guide/scores/": lambda w, role: {"course_id": w.course.pk},
    "api/v1/console-sessions/": lambda w, role: {},
    "api/v1/console-sessions/{pk}/": lambda w, role: {"pk": w.console_session.pk},
    "api/v1/console-sessions/{pk}/close/": lambda w, role: {"pk": w.console_session.pk},
    "api/v1/audit/": lambda w, role: {},
    "api/v1/audit/export/": lambda w, role: {},
    "api/v1/usage/": lambda w, role: {},
    "api/v1/usage.csv": lambda w, role: {},
    "api/v1/courses/{course_id}/usage/report/": lambda w, role: {"course_id": w.course.pk},
    "api/v1/courses/{course_id}/usage/report.csv": lambda w, role: {"course_id": w.course.pk},
    "api/v1/identity/sources/": lambda w, role: {},
    "api/v1/lti/platforms/": lambda w, role: {},
    "api/v1/lti/platforms/{pk}/": lambda w, role: {"pk": w.lti_platform.pk},
    "api/v1/lti/links/": lambda w, role: {},
    "api/v1/lti/links/{pk}/": lambda w, role: {"pk": w.lti_link.pk},
    "api/v1/lti/links/{link_id}/sync/": lambda w, role: {"link_id": w.lti_link.pk},
    "api/v1/lti/links/{link_id}/scores/": lambda w, role: {"link_id": w.lti_link.pk},
    "api/v1/lti/keys/rotate/": lambda w, role: {},
}


def _operation_of(w: World, role: str) -> Operation:
    return w.removed_operation if role == "removed" else w.operation


# What each request sends (JSON unless the body is a callable's multipart dict)


def _lab_start(w: World, role: str) -> dict:
    if role in ("instructor", "other_instructor", "admin"):  # staff start one for a student
        return {"course": w.course.pk, "student": w.users["classmate"].username}
    return {"course": w.course.pk}


def _token_body(w: World, role: str) -> dict:
    username = w.users[role].username if role in w.users else "nobody"
    return {"username": username, "password": DEFAULT_PASSWORD}


def _endpoint_body(w: World, role: str) -> dict:
    return {
        "name": "Another vCenter",
        "url": "https://vc2.example.edu",
        "username": "administrator@vsphere.local",
        "password": "secret",
        "verify_tls": False,
        "datacenter": "DC0",
        "compute_path": "/DC0/host/DC0_C0",
        "datastore": "LocalDS_0",
        "lab_switch": "vSwitch0",
        "vlan_min": 2100,
        "vlan_max": 2199,
        "concurrency_limit": 4,
    }


def _course_body(w: World, role: str) -> dict:
    return {"title": "Storage", "code": f"stor-{role}", "starts_on": "2026-09-01", "ends_on": "2027-01-31"}


def _template_body(w: World, role: str) -> dict:
    endpoint = w.template.endpoint_id  # a template with VMs stays on its vCenter
    return {"name": "Another lab", "endpoint": endpoint, "description": "", "manual": "", "linked_clones": True}


def _roster(w: World, role: str) -> dict:
    return {"file": SimpleUploadedFile("class.csv", b"username,email\nnewcomer,newcomer@example.edu\n", "text/csv")}


GUIDE_QUESTION = {"kind": "question", "label": "Gateway", "prompt": "Which gateway?", "answer": "10.0.0.254"}

QUOTA = dict.fromkeys(
    (
        "running_labs",
        "labs_per_student",
        "snapshots_per_lab",
        "vcpu_total",
        "memory_gb_total",
        "storage_gb_total",
        "lab_hours_per_student",
        "lifetime_days_after_end",
        "lease_hours",
        "lease_extensions",
        "idle_minutes",
        "pool_labs",
    )
)

BODIES = {
    ("post", "api/v1/auth/token/"): _token_body,
    ("post", "api/v1/instructors/"): lambda w, role: {"username": "new-teacher", "password": "Tr1cky-Passw0rd-92"},
    ("post", "api/v1/account/keys/"): lambda w, role: {"name": "a script"},
    ("post", "api/v1/endpoints/"): _endpoint_body,
    ("put", "api/v1/endpoints/{pk}/"): _endpoint_body,
    ("patch", "api/v1/endpoints/{pk}/"): lambda w, role: {"concurrency_limit": 2},
    ("post", "api/v1/templates/"): _template_body,
    ("put", "api/v1/templates/{pk}/"): _template_body,
    ("patch", "api/v1/templates/{pk}/"): lambda w, role: {"description": "Three hosts."},
    ("post", "api/v1/templates/{template_id}/networks/"): lambda w, role: {"name": "storage"},
    ("post", "api/v1/templates/{template_id}/vms/"): lambda w, role: {
        "role": "esxi-02",
        "source_moref": "vm-950",
        "source_name": "esxi-02",
        "nic_networks": ["lab"],
    },
    ("put", "api/v1/templates/{template_id}/vms/{pk}/"): lambda w, role: {"role": "gateway", "boot_order": 2},
    ("patch", "api/v1/templates/{template_id}/vms/{pk}/"): lambda w, role: {"boot_order": 3},
    ("post", "api/v1/templates/{template_id}/guide/steps/"): lambda w, role: {"title": "Another step"},
    ("put", "api/v1/templates/{template_id}/guide/steps/{pk}/"): lambda w, role: {"title": "Renamed", "points": 1},
    ("patch", "api/v1/templates/{template_id}/guide/steps/{pk}/"): lambda w, role: {"position": 1},
    ("post", "api/v1/templates/{template_id}/guide/steps/{step_id}/checks/"): lambda w, role: GUIDE_QUESTION,
    ("put", "api/v1/templates/{template_id}/guide/steps/{step_id}/checks/{pk}/"): lambda w, role: GUIDE_QUESTION,
    ("patch", "api/v1/templates/{template_id}/guide/steps/{step_id}/checks/{pk}/"): lambda w, role: {"label": "Which"},
    ("post", "api/v1/templates/{template_id}/guide/variables/"): lambda w, role: {
        "name": "site",
        "kind": "choice",
        "choices": ["paris", "oslo"],
    },
    ("put", "api/v1/templates/{template_id}/guide/variables/{pk}/"): lambda w, role: {
        "name": "vlan",
        "kind": "number",
        "minimum": 1,
        "maximum": 9,
    },
    ("patch", "api/v1/templates/{template_id}/guide/variables/{pk}/"): lambda w, role: {"length": 10},
    ("post", "api/v1/labs/{pk}/guide/check/"): lambda w, role: {"step": w.checked_step_key},
    ("put", "api/v1/labs/{pk}/guide/position/"): lambda w, role: {"position": 2},
    ("patch", "api/v1/labs/{pk}/guide/position/"): lambda w, role: {"position": 1},
    ("post", "api/v1/courses/{course_id}/guide/check/"): lambda w, role: {"step": w.checked_step_key},
    ("post", "api/v1/courses/"): _course_body,
    ("put", "api/v1/courses/{pk}/"): _course_body,
    ("patch", "api/v1/courses/{pk}/"): lambda w, role: {"description": "Bring a laptop."},
    ("post", "api/v1/courses/join/"): lambda w, role: {"code": w.course.join_code},
    ("post", "api/v1/courses/{pk}/join-code/"): lambda w, role: {"enabled": True},
    ("post", "api/v1/courses/{pk}/top-ups/"): lambda w, role: {
        "student": w.users["classmate"].username,
        "extra_labs": 1,
    },
    ("put", "api/v1/courses/{course_id}/quota/"): lambda w, role: QUOTA,
    ("patch", "api/v1/courses/{course_id}/quota/"): lambda w, role: {"running_labs": 5},
    ("post", "api/v1/courses/{course_id}/enrollments/"): lambda w, role: {"username": w.users["outsider"].username},
    ("post", "api/v1/courses/{course_id}/provision/"): lambda w, role: {},
    ("post", "api/v1/courses/{course_id}/labs/bulk/"): lambda w, role: {"action": "power_off", "labs": [w.lab.pk]},
    ("post", "api/v1/labs/"): _lab_start,
    ("post", "api/v1/labs/{pk}/snapshots/"): lambda w, role: {"name": "before upgrade"},
    ("post", "api/v1/labs/{pk}/revert/"): lambda w, role: {
        "snapshot": _lab_of(w, role).snapshots.get(is_baseline=True).pk
    },
    ("post", "api/v1/labs/{pk}/power/"): lambda w, role: {"action": "off"},
}


def _platform_body(w: World, role: str) -> dict:
    return {
        "name": "Canvas",
        "issuer": "https://canvas.example.edu",
        "client_id": "10000000000001",
        "deployment_ids": ["1:abc"],
        "auth_login_url": "https://canvas.example.edu/api/lti/authorize_redirect",
        "auth_token_url": "https://canvas.example.edu/login/oauth2/token",
        "key_set_url": "https://canvas.example.edu/api/lti/security/jwks",
    }


BODIES.update(
    {
        ("post", "api/v1/lti/platforms/"): _platform_body,
        ("put", "api/v1/lti/platforms/{pk}/"): _platform_body,
        ("patch", "api/v1/lti/platforms/{pk}/"): lambda w, role: {"is_active": False},
        ("post", "api/v1/lti/links/{link_id}/scores/"): lambda w, role: {
            "student": w.users["classmate"].pk,
            "score_given": 1,
            "score_maximum": 2,
        },
    }
)
MULTIPART = {
    ("post", "api/v1/courses/{pk}/roster/"): _roster,
    ("post", "api/v1/templates/{template_id}/guide/images/"): lambda w, role: {
        "file": SimpleUploadedFile("topology.png", PNG_1X1, "image/png")
    },
}


# The table: per route and method, the status each role gets.
Y, N, H = 200, 403, 404  # yes; no (403: not signed in, not your role, or seen but not yours to act on); hidden
EXPECTED: dict[tuple[str, str], tuple[int, ...]] = {
    #                                                   anon owner mate  out  rmvd inst oinst admin
    ("get", "api/docs/"):                                (Y,   Y,   Y,   Y,   Y,   Y,   Y,   Y),
    ("get", "api/schema/"):                              (Y,   Y,   Y,   Y,   Y,   Y,   Y,   Y),
    ("post", "api/v1/auth/token/"):                      (400, Y,   Y,   Y,   Y,   Y,   Y,   Y),
    # vCenter endpoints: admins; instructors list their names and use the picker
    ("get", "api/v1/endpoints/"):                        (N,   N,   N,   N,   N,   Y,   Y,   Y),
    ("post", "api/v1/endpoints/"):                       (N,   N,   N,   N,   N,   N,   N,   201),
    ("get", "api/v1/endpoints/{pk}/"):                   (N,   N,   N,   N,   N,   N,   N,   Y),
    ("put", "api/v1/endpoints/{pk}/"):                   (N,   N,   N,   N,   N,   N,   N,   Y),
    ("patch", "api/v1/endpoints/{pk}/"):                 (N,   N,   N,   N,   N,   N,   N,   Y),
    ("delete", "api/v1/endpoints/{pk}/"):                (N,   N,   N,   N,   N,   N,   N,   204),
    ("post", "api/v1/endpoints/{endpoint_id}/check/"):   (N,   N,   N,   N,   N,   N,   N,   202),
    ("get", "api/v1/endpoint-loads/"):                   (N,   N,   N,   N,   N,   N,   N,   Y),
    ("post", "api/v1/endpoints/{endpoint_id}/reconcile/"): (N, N,   N,   N,   N,   N,   N,   202),
    ("get", "api/v1/endpoints/{endpoint_id}/inventory/"): (N,  N,   N,   N,   N,   Y,   Y,   Y),
    ("get", "api/v1/endpoints/{endpoint_id}/vms/{moref}/"): (N, N,  N,   N,   N,   Y,   Y,   Y),
    ("post", "api/v1/instructors/"):                     (N,   N,   N,   N,   N,   N,   N,   201),
    # Your own API keys: everyone signed in has theirs; someone else's does not exist for you
    ("get", "api/v1/account/keys/"):                     (N,   Y,   Y,   Y,   Y,   Y,   Y,   Y),
    ("post", "api/v1/account/keys/"):                    (N,   201, 201, 201, 201, 201, 201, 201),
    ("delete", "api/v1/account/keys/{pk}/"):             (N,   204, H,   H,   H,   H,   H,   H),
    # Templates: instructors and admins read all; owners (the course's instructor) and admins change
    ("get", "api/v1/templates/"):                        (N,   N,   N,   N,   N,   Y,   Y,   Y),
    ("post", "api/v1/templates/"):                       (N,   N,   N,   N,   N,   201, 201, 201),
    ("get", "api/v1/templates/{pk}/"):                   (N,   N,   N,   N,   N,   Y,   Y,   Y),
    ("put", "api/v1/templates/{pk}/"):                   (N,   N,   N,   N,   N,   Y,   N,   Y),
    ("patch", "api/v1/templates/{pk}/"):                 (N,   N,   N,   N,   N,   Y,   N,   Y),
    ("post", "api/v1/templates/{template_id}/publish/"): (N,   N,   N,   N,   N,   202, N,   202),
    ("get", "api/v1/templates/{template_id}/prepare/"):  (N,   N,   N,   N,   N,   Y,   N,   Y),
    ("post", "api/v1/templates/{template_id}/prepare/"): (N,   N,   N,   N,   N,   202, N,   202),
    ("get", "api/v1/templates/{template_id}/networks/"): (N,   N,   N,   N,   N,   Y,   Y,   Y),
    ("post", "api/v1/templates/{template_id}/networks/"): (N,  N,   N,   N,   N,   201, N,   201),
    ("delete", "api/v1/templates/{template_id}/networks/{pk}/"): (N, N, N, N,  N,   204, N,   204),
    ("get", "api/v1/templates/{template_id}/vms/"):      (N,   N,   N,   N,   N,   Y,   Y,   Y),
    ("post", "api/v1/templates/{template_id}/vms/"):     (N,   N,   N,   N,   N,   201, N,   201),
    ("get", "api/v1/templates/{template_id}/vms/{pk}/"): (N,   N,   N,   N,   N,   Y,   Y,   Y),
    ("put", "api/v1/templates/{template_id}/vms/{pk}/"): (N,   N,   N,   N,   N,   Y,   N,   Y),
    ("patch", "api/v1/templates/{template_id}/vms/{pk}/"): (N, N,   N,   N,   N,   Y,   N,   Y),
    ("delete", "api/v1/templates/{template_id}/vms/{pk}/"): (N, N,  N,   N,   N,   204, N,   204),
    ("get", "api/v1/templates/{template_id}/versions/"): (N,   N,   N,   N,   N,   Y,   Y,   Y),
    ("get", "api/v1/templates/{template_id}/versions/{pk}/"): (N, N, N,  N,   N,   Y,   Y,   Y),
    # A template's guide: its owners and admins only, reads too (checks carry their answers)
    ("get", "api/v1/templates/{template_id}/guide/steps/"): (N, N, N,  N,   N,   Y,   N,   Y),
    ("post", "api/v1/templates/{template_id}/guide/steps/"): (N, N, N, N,   N,   201, N,   201),
    ("get", "api/v1/templates/{template_id}/guide/steps/{pk}/"): (N, N, N, N, N,  Y,   N,   Y),
    ("put", "api/v1/templates/{template_id}/guide/steps/{pk}/"): (N, N, N, N, N,  Y,   N,   Y),
    ("patch", "api/v1/templates/{template_id}/guide/steps/{pk}/"): (N, N, N, N, N, Y,   N,   Y),
    ("delete", "api/v1/templates/{template_id}/guide/steps/{pk}/"): (N, N, N, N, N, 204, N,   204),
    ("get", "api/v1/templates/{template_id}/guide/steps/{step_id}/checks/"): (N, N, N, N, N, Y, N, Y),
    ("post", "api/v1/templates/{template_id}/guide/steps/{step_id}/checks/"): (N, N, N, N, N, 201, N, 201),
    ("get", "api/v1/templates/{template_id}/guide/steps/{step_id}/checks/{pk}/"): (N, N, N, N, N, Y, N, Y),
    ("put", "api/v1/templates/{template_id}/guide/steps/{step_id}/checks/{pk}/"): (N, N, N, N, N, Y, N, Y),
    ("patch", "api/v1/templates/{template_id}/guide/steps/{step_id}/checks/{pk}/"): (N, N, N, N, N, Y, N, Y),
    ("delete", "api/v1/templates/{template_id}/guide/steps/{step_id}/checks/{pk}/"): (N, N, N, N, N, 204, N, 204),
    ("get", "api/v1/templates/{template_id}/guide/variables/"): (N, N, N, N,  N,   Y,   N,   Y),
    ("post", "api/v1/templates/{template_id}/guide/variables/"): (N, N, N, N, N,   201, N,   201),
    ("get", "api/v1/templates/{template_id}/guide/variables/{pk}/"): (N, N, N, N, N, Y,   N,   Y),
    ("put", "api/v1/templates/{template_id}/guide/variables/{pk}/"): (N, N, N, N, N, Y,   N,   Y),
    ("patch", "api/v1/templates/{template_id}/guide/variables/{pk}/"): (N, N, N, N, N, Y,  N,   Y),
    ("delete", "api/v1/templates/{template_id}/guide/variables/{pk}/"): (N, N, N, N, N, 204, N, 204),
    ("get", "api/v1/templates/{template_id}/guide/images/"): (N, N, N, N,  N,   Y,   N,   Y),
    ("post", "api/v1/templates/{template_id}/guide/images/"): (N, N, N, N,  N,   201, N,   201),
    ("delete", "api/v1/templates/{template_id}/guide/images/{pk}/"): (N, N, N, N, N, 204, N,   204),
    # Courses: hidden from those not in them; seen but not changed by their students
    ("get", "api/v1/courses/"):                          (N,   Y,   Y,   Y,   Y,   Y,   Y,   Y),
    ("post", "api/v1/courses/"):                         (N,   N,   N,   N,   N,   201, 201, 201),
    ("post", "api/v1/courses/join/"):                    (N,   Y,   Y,   Y,   Y,   N,   N,   N),
    ("get", "api/v1/courses/{pk}/"):                     (N,   Y,   Y,   H,   H,   Y,   H,   Y),
    ("put", "api/v1/courses/{pk}/"):                     (N,   N,   N,   H,   H,   Y,   H,   Y),
    ("patch", "api/v1/courses/{pk}/"):                   (N,   N,   N,   H,   H,   Y,   H,   Y),
    ("post", "api/v1/courses/{pk}/join-code/"):          (N,   N,   N,   H,   H,   Y,   H,   Y),
    ("post", "api/v1/courses/{pk}/roster/"):             (N,   N,   N,   H,   H,   Y,   H,   Y),
    ("post", "api/v1/courses/{pk}/top-ups/"):            (N,   N,   N,   H,   H,   201, H,   201),
    ("get", "api/v1/courses/{pk}/usage/"):               (N,   Y,   Y,   H,   H,   Y,   H,   Y),
    ("get", "api/v1/courses/{course_id}/quota/"):        (N,   Y,   Y,   H,   H,   Y,   H,   Y),
    ("put", "api/v1/courses/{course_id}/quota/"):        (N,   N,   N,   H,   H,   N,   H,   Y),
    ("patch", "api/v1/courses/{course_id}/quota/"):      (N,   N,   N,   H,   H,   N,   H,   Y),
    ("get", "api/v1/courses/{course_id}/enrollments/"):  (N,   N,   N,   H,   H,   Y,   H,   Y),
    ("post", "api/v1/courses/{course_id}/enrollments/"): (N,   N,   N,   H,   H,   201, H,   201),
    ("delete", "api/v1/courses/{course_id}/enrollments/{pk}/"): (N, N, N, H,  H,   204, H,   204),
    ("post", "api/v1/courses/{course_id}/provision/"):   (N,   N,   N,   H,   H,   202, H,   202),
    ("post", "api/v1/courses/{course_id}/labs/bulk/"):   (N,   N,   N,   H,   H,   202, H,   202),
    # Labs: hidden from all but the owner, the course's instructors and admins; a removed owner
    # still reads their lab but acts on nothing. Starting one names a course in the body: a
    # course the caller cannot see is a 400 there ("No course with that id."), like any bad id.
    ("get", "api/v1/labs/"):                             (N,   Y,   Y,   Y,   Y,   Y,   Y,   Y),
    ("post", "api/v1/labs/"):                            (N,   202, 202, 400, 400, 202, 400, 202),
    ("get", "api/v1/labs/{pk}/"):                        (N,   Y,   H,   H,   Y,   Y,   H,   Y),
    ("delete", "api/v1/labs/{pk}/"):                     (N,   202, H,   H,   N,   202, H,   202),
    ("post", "api/v1/labs/{pk}/snapshots/"):             (N,   202, H,   H,   N,   202, H,   202),
    ("delete", "api/v1/labs/{pk}/snapshots/{snapshot_id}/"): (N, 202, H, H,   N,   202, H,   202),
    ("post", "api/v1/labs/{pk}/revert/"):                (N,   202, H,   H,   N,   202, H,   202),
    ("post", "api/v1/labs/{pk}/reset/"):                 (N,   202, H,   H,   N,   202, H,   202),
    ("post", "api/v1/labs/{pk}/extend/"):                (N,   Y,   H,   H,   N,   Y,   H,   Y),
    ("post", "api/v1/labs/{pk}/clone/"):                 (N,   202, H,   H,   N,   202, H,   202),
    ("post", "api/v1/labs/{pk}/power/"):                 (N,   202, H,   H,   N,   202, H,   202),
    # A lab's guide: read like the lab; "Check my work", a step done and the place kept by whoever
    # may act on it. The class's grid, check and scores: the course's staff
    ("get", "api/v1/labs/{pk}/guide/"):                  (N,   Y,   H,   H,   Y,   Y,   H,   Y),
    ("post", "api/v1/labs/{pk}/guide/check/"):           (N,   202, H,   H,   N,   202, H,   202),
    ("post", "api/v1/labs/{pk}/guide/steps/{step_key}/done/"): (N, Y, H, H,   N,   Y,   H,   Y),
    ("put", "api/v1/labs/{pk}/guide/position/"):         (N,   Y,   H,   H,   N,   Y,   H,   Y),
    ("patch", "api/v1/labs/{pk}/guide/position/"):       (N,   Y,   H,   H,   N,   Y,   H,   Y),
    ("get", "api/v1/courses/{course_id}/guide/progress/"): (N, N,   N,   H,   H,   Y,   H,   Y),
    ("get", "api/v1/courses/{course_id}/guide/progress.csv"): (N, N, N,  H,   H,   Y,   H,   Y),
    ("post", "api/v1/courses/{course_id}/guide/check/"): (N,   N,   N,   H,   H,   202, H,   202),
    ("post", "api/v1/courses/{course_id}/guide/scores/"): (N,  N,   N,   H,   H,   Y,   H,   Y),
    # Consoles: controlled by whoever may act on the lab; a session is seen and closed by its person,
    # the course's instructors and admins (the owner's console of their lab here)
    ("post", "api/v1/labs/{pk}/vms/{vm_id}/console/"):   (N,   201, H,   H,   N,   201, H,   201),
    ("get", "api/v1/console-sessions/"):                 (N,   Y,   Y,   Y,   Y,   Y,   Y,   Y),
    ("get", "api/v1/console-sessions/{pk}/"):            (N,   Y,   H,   H,   H,   Y,   H,   Y),
    ("post", "api/v1/console-sessions/{pk}/close/"):     (N,   Y,   H,   H,   H,   Y,   H,   Y),
    # Operations: seen by whoever sees their lab; cancelled by their actor while they may still
    # act on the lab (not a removed owner), or an admin
    ("get", "api/v1/operations/"):                       (N,   Y,   Y,   Y,   Y,   Y,   Y,   Y),
    ("get", "api/v1/operations/{pk}/"):                  (N,   Y,   H,   H,   Y,   Y,   H,   Y),
    ("post", "api/v1/operations/{pk}/cancel/"):          (N,   Y,   H,   H,   N,   N,   H,   Y),
    # The audit log and usage across courses: admins; a course's usage report: its staff (its
    # students are told it is for staff, others do not see the course)
    ("get", "api/v1/audit/"):                            (N,   N,   N,   N,   N,   N,   N,   Y),
    ("get", "api/v1/audit/export/"):                     (N,   N,   N,   N,   N,   N,   N,   Y),
    ("get", "api/v1/usage/"):                            (N,   N,   N,   N,   N,   N,   N,   Y),
    ("get", "api/v1/usage.csv"):                         (N,   N,   N,   N,   N,   N,   N,   Y),
    ("get", "api/v1/courses/{course_id}/usage/report/"): (N,   N,   N,   H,   H,   Y,   H,   Y),
    ("get", "api/v1/courses/{course_id}/usage/report.csv"): (N, N,  N,   H,   H,   Y,   H,   Y),
    # LMS platforms (LTI 1.3) and Nestlab's signing key: admins. A course's LMS links: its
    # instructors and admins (hidden from others); this one's LMS offers no roster or grade book,
    # which a sync or a score is told in words (400)
    ("get", "api/v1/identity/sources/"):                 (N,   N,   N,   N,   N,   N,   N,   Y),
    ("get", "api/v1/lti/platforms/"):                    (N,   N,   N,   N,   N,   N,   N,   Y),
    ("post", "api/v1/lti/platforms/"):                   (N,   N,   N,   N,   N,   N,   N,   201),
    ("get", "api/v1/lti/platforms/{pk}/"):               (N,   N,   N,   N,   N,   N,   N,   Y),
    ("put", "api/v1/lti/platforms/{pk}/"):               (N,   N,   N,   N,   N,   N,   N,   Y),
    ("patch", "api/v1/lti/platforms/{pk}/"):             (N,   N,   N,   N,   N,   N,   N,   Y),
    ("delete", "api/v1/lti/platforms/{pk}/"):            (N,   N,   N,   N,   N,   N,   N,   204),
    ("post", "api/v1/lti/keys/rotate/"):                 (N,   N,   N,   N,   N,   N,   N,   201),
    ("get", "api/v1/lti/links/"):                        (N,   Y,   Y,   Y,   Y,   Y,   Y,   Y),
    ("get", "api/v1/lti/links/{pk}/"):                   (N,   H,   H,   H,   H,   Y,   H,   Y),
    ("delete", "api/v1/lti/links/{pk}/"):                (N,   H,   H,   H,   H,   204, H,   204),
    ("post", "api/v1/lti/links/{link_id}/sync/"):        (N,   H,   H,   H,   H,   400, H,   400),
    ("post", "api/v1/lti/links/{link_id}/scores/"):      (N,   H,   H,   H,   H,   400, H,   400),
}  # fmt: skip


# Class sessions (courses/api/sessions.py): read by whoever sees the course, changed by its staff.
SESSION = {"first_date": "2026-03-10", "start_time": "09:00", "duration_minutes": 60, "time_zone": "Europe/Paris"}


def _session_target(w: World, role: str) -> dict:
    from courses.models import ClassSession

    session, _ = ClassSession.objects.get_or_create(course=w.course, defaults=SESSION)
    return {"course_id": w.course.pk, "pk": session.pk}


TARGETS.update(
    {
        "api/v1/courses/{course_id}/sessions/": lambda w, role: {"course_id": w.course.pk},
        "api/v1/courses/{course_id}/sessions/upcoming/": lambda w, role: {"course_id": w.course.pk},
        "api/v1/courses/{course_id}/sessions/{pk}/": _session_target,
    }
)
BODIES.update(
    {
        ("post", "api/v1/courses/{course_id}/sessions/"): lambda w, role: SESSION,
        ("put", "api/v1/courses/{course_id}/sessions/{pk}/"): lambda w, role: SESSION,
        ("patch", "api/v1/courses/{course_id}/sessions/{pk}/"): lambda w, role: {"ready_minutes_before": 20},
    }
)
EXPECTED.update(
    {
        #                                                       anon owner mate out rmvd inst oinst admin
        ("get", "api/v1/courses/{course_id}/sessions/"):          (N, Y, Y, H, H, Y, H, Y),
        ("post", "api/v1/courses/{course_id}/sessions/"):         (N, N, N, H, H, 201, H, 201),
        ("get", "api/v1/courses/{course_id}/sessions/upcoming/"): (N, Y, Y, H, H, Y, H, Y),
        ("get", "api/v1/courses/{course_id}/sessions/{pk}/"):     (N, Y, Y, H, H, Y, H, Y),
        ("put", "api/v1/courses/{course_id}/sessions/{pk}/"):     (N, N, N, H, H, Y, H, Y),
        ("patch", "api/v1/courses/{course_id}/sessions/{pk}/"):   (N, N, N, H, H, Y, H, Y),
        ("delete", "api/v1/courses/{course_id}/sessions/{pk}/"):  (N, N, N, H, H, 204, H, 204),
    }
)  # fmt: skip


def _ask(w: World, role: str, method: str, route: str) -> int:
    client = APIClient()
    if role != "anonymous":
        client.credentials(HTTP_AUTHORIZATION=f"Token {w.tokens[role]}")
    path = "/" + route.format(**TARGETS[route](w, role))
    with transaction.atomic():
        if (method, route) in MULTIPART:
            response = getattr(client, method)(path, MULTIPART[method, route](w, role), format="multipart")
        else:
            body = BODIES.get((method, route), lambda w, role: None)(w, role)
            response = getattr(client, method)(path, body, format="json")
        transaction.set_rollback(True)
    return response.status_code


ALL = api_routes()


def test_every_api_route_has_a_row():
    missing = [f"{method.upper()} /{route}" for method, route in ALL if (method, route) not in EXPECTED]
    untargeted = sorted({f"/{route}" for _, route in ALL if route not in TARGETS})
    stale = [f"{method.upper()} /{route}" for method, route in EXPECTED if (method, route) not in ALL]
    assert not missing, "API routes without a row in EXPECTED (who may call them?): " + ", ".join(missing)
    assert not untargeted, "API routes without a target in TARGETS (which object to ask about?): " + ", ".join(
        untargeted
    )
    assert not stale, "Rows in EXPECTED for routes the URL conf no longer has: " + ", ".join(stale)


@pytest.mark.django_db
@pytest.mark.parametrize(("method", "route"), ALL, ids=[f"{m.upper()} /{r}" for m, r in ALL])
def test_each_role_gets_exactly_the_expected_answer(world, method, route):
    if route not in TARGETS or (method, route) not in EXPECTED:
        pytest.fail(f"{method.upper()} /{route} has no row in EXPECTED or no target in TARGETS: add them.")
    got = tuple(_ask(world, role, method, route) for role in ROLES)
    expected = EXPECTED[method, route]
    wrong = [f"{role}: {g} (expected {e})" for role, g, e in zip(ROLES, got, expected, strict=True) if g != e]
    assert not wrong, f"{method.upper()} /{route}: " + "; ".join(wrong)


REFUSED = (403, 404)


def _refusals_recorded(w: World, role: str, method: str, route: str) -> tuple[int, int]:
    """The status a signed-in role gets, and how many refusals the audit log gained meanwhile."""
    from core.models import AuditEntry

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {w.tokens[role]}")
    path = "/" + route.format(**TARGETS[route](w, role))
    with transaction.atomic():
        before = AuditEntry.objects.filter(category="refusal").count()
        if (method, route) in MULTIPART:
            response = getattr(client, method)(path, MULTIPART[method, route](w, role), format="multipart")
        else:
            body = BODIES.get((method, route), lambda w, role: None)(w, role)
            response = getattr(client, method)(path, body, format="json")
        recorded = AuditEntry.objects.filter(category="refusal").count() - before
        transaction.set_rollback(True)
    return response.status_code, recorded


@pytest.mark.django_db
@pytest.mark.parametrize(("method", "route"), ALL, ids=[f"{m.upper()} /{r}" for m, r in ALL])
def test_every_refusal_of_a_signed_in_person_is_recorded_once(world, method, route):
    """Issue 12: a refusal answered anywhere (a route, a permission class, a service) writes
    exactly one audit entry; anonymous callers are asked to sign in, not recorded."""
    if route not in TARGETS or (method, route) not in EXPECTED:
        pytest.fail(f"{method.upper()} /{route} has no row in EXPECTED or no target in TARGETS: add them.")
    wrong = []
    for role, expected in zip(ROLES, EXPECTED[method, route], strict=True):
        if role == "anonymous" or expected not in REFUSED:
            continue
        status, recorded = _refusals_recorded(world, role, method, route)
        if status in REFUSED and recorded != 1:
            wrong.append(f"{role}: {status} with {recorded} audit entries")
    assert not wrong, f"{method.upper()} /{route}: " + "; ".join(wrong)


# The warm pool (issue 13): its course's instructors and admins; others of the course 403, outsiders 404.
TARGETS["api/v1/courses/{course_id}/pool/"] = lambda w, role: {"course_id": w.course.pk}
BODIES[("put", "api/v1/courses/{course_id}/pool/")] = lambda w, role: {"size": 0}
EXPECTED.update(
    {
        #                                                anon owner mate out rmvd inst oinst admin
        ("get", "api/v1/courses/{course_id}/pool/"):       (N, N, N, H, H, Y, H, Y),
        ("put", "api/v1/courses/{course_id}/pool/"):       (N, N, N, H, H, Y, H, Y),
    }
)  # fmt: skip
