"""The REST API against its own OpenAPI schema (/api/schema/), fuzzed with schemathesis through
the in-process WSGI application, signed in with a token as a student and as an instructor.

Every operation of the schema gets generated requests (valid ones, mostly about the real
objects of the seeded world, some about ids that do not exist) and every answer must be no
server error, a documented status code, a documented content type, and a body that matches
the documented schema. A failure here is a bug in a view, a serializer or a schema annotation,
never a reason to loosen the checks.

The stateful phase chains operations: schemathesis infers the links between them from the
schema (a create's ``id`` feeds the detail, nested and action routes named after it; a list's
items feed their details; an accepted action's operation feeds /operations/{id}/), runs
sequences of them as one signed-in person, and adds two checks of its own: a deleted object
is gone (use after free) and a created one can be read back (resource availability).

Bounded for CI: a few fuzzed examples per operation, the coverage phase with valid data only
and a few short sequences, derandomized (the same cases every run, so a red run is
reproducible). A wider search: NESTLAB_API_FUZZ_EXAMPLES=200 NESTLAB_API_FUZZ_COVERAGE=all
NESTLAB_API_FUZZ_SEQUENCES=100 (bench/api_fuzz_wide.py).
"""

from __future__ import annotations

import os
import re
from datetime import timedelta

import pytest
import schemathesis
from django.core import signals
from django.db import close_old_connections, transaction
from hypothesis import HealthCheck, Phase, settings
from schemathesis.checks import not_a_server_error
from schemathesis.config import SchemathesisConfig
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    ensure_resource_availability,
    response_schema_conformance,
    status_code_conformance,
    use_after_free,
)

from portal.wsgi import application

pytestmark = pytest.mark.integration

EXAMPLES = int(os.environ.get("NESTLAB_API_FUZZ_EXAMPLES", "6"))
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
SEQUENCES = int(os.environ.get("NESTLAB_API_FUZZ_SEQUENCES", "4"))
STATEFUL_CHECKS = [*CHECKS, use_after_free, ensure_resource_availability]

# The coverage phase (boundary values of every field, methods the route does not have) with
# valid data only: its invalid-data cases are thousands of requests; fuzzing sends invalid data too.
COVERAGE = os.environ.get("NESTLAB_API_FUZZ_COVERAGE", "positive")
CONFIG = SchemathesisConfig.from_dict({"phases": {"coverage": {"generation": {"mode": COVERAGE}}}})
schema = schemathesis.openapi.from_wsgi("/api/schema/", application, config=CONFIG)

# Real ids of the world, per kind of path parameter, filled by the ``real_ids`` fixture:
# a generated id that is not negative is replaced by one of these (picked by its value), so
# most requests are about objects that exist, the rest (negative ids) about ones that do not.
REAL: dict[str, list] = {}


def _kind(path: str, name: str) -> str:
    if name != "id":
        return name
    before = re.search(r"/(\w[\w-]*)/\{id\}", path)
    return before.group(1) if before else name


@schema.hook
def map_path_parameters(context, path_parameters):
    if not path_parameters:
        return path_parameters
    path = context.operation.path
    for name, value in path_parameters.items():
        choices = REAL.get(_kind(path, name))
        if choices and isinstance(value, int) and value >= 0:
            path_parameters[name] = choices[value % len(choices)]
        elif choices and name in ("moref", "step_key") and isinstance(value, str) and len(value) % 2 == 0:
            path_parameters[name] = choices[0]
    return path_parameters


@pytest.fixture(autouse=True)
def keep_the_test_connection():
    """Requests go through the real WSGI handler, whose request signals close the database
    connection, and with it the test's transaction (Django's test client does the same)."""
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


@pytest.fixture
def real_ids(world):
    REAL.clear()
    REAL.update(
        {
            "labs": [world.lab.pk, world.removed_lab.pk],
            "snapshot_id": list(world.lab.snapshots.values_list("pk", flat=True)),
            "vm_id": list(world.lab.vms.values_list("pk", flat=True)),
            "courses": [world.course.pk, world.other_course.pk],
            "course_id": [world.course.pk, world.other_course.pk],
            "enrollments": list(world.course.enrollments.values_list("pk", flat=True)),
            "templates": [world.template.pk],
            "template_id": [world.template.pk],
            "networks": [world.spare_network.pk],
            "vms": [world.template_vm.pk],
            "versions": [world.version.pk],
            "endpoints": [world.endpoint.pk, world.spare_endpoint.pk],
            "endpoint_id": [world.endpoint.pk],
            "moref": [world.esxi_moref],
            "operations": [world.operation.pk, world.removed_operation.pk],
            "console-sessions": [world.console_session.pk],
            "keys": [world.owner_key.pk],
            "steps": [world.guide_step.pk],
            "step_id": [world.guide_step.pk],
            "checks": [world.guide_check.pk],
            "variables": [world.guide_variable.pk],
            "images": [world.guide_image.pk],
            "step_key": [world.plain_step_key, world.checked_step_key],
        }
    )
    yield REAL
    REAL.clear()


@pytest.fixture(params=["owner", "instructor"], ids=["student", "instructor"])
def token(request, world, real_ids) -> str:
    return world.tokens[request.param]


@pytest.mark.django_db
@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    deadline=timedelta(seconds=20),  # a loaded CI machine; the examples bound the run
    derandomize=True,
    database=None,
    phases=[Phase.explicit, Phase.generate, Phase.shrink],
    suppress_health_check=list(HealthCheck),
)
def test_the_api_answers_as_its_schema_says(case, token):
    case.call_and_validate(headers={"Authorization": f"Token {token}"}, checks=CHECKS)


class SignedInWorkflow(schema.as_state_machine()):
    """Sequences of operations chained through the schema's inferred links, as one person."""

    token = ""

    def setup(self):
        # Every sequence starts from the seeded world: what one created is rolled back before
        # the next, so a failing sequence replays the same way while hypothesis shrinks it.
        self.savepoint = transaction.atomic()
        self.savepoint.__enter__()

    def teardown(self):
        transaction.set_rollback(True)
        self.savepoint.__exit__(None, None, None)

    def get_call_kwargs(self, case):
        return {"headers": {"Authorization": f"Token {self.token}"}}

    def validate_response(self, response, case, additional_checks=None, **kwargs):
        case.validate_response(response, checks=STATEFUL_CHECKS, transport_kwargs=kwargs, recorder=self.recorder)


def test_the_stateful_phase_chains_creates_to_what_uses_them():
    """Without links the stateful phase has nothing to chain: a created course leads to its
    detail and its enrollments, a created template to its VMs, an accepted action to its
    operation."""
    transitions = {
        (source, link.target.label)
        for source, node in SignedInWorkflow._transitions.operations.items()
        for link in node.outgoing
    }
    assert {
        ("POST /api/v1/courses/", "GET /api/v1/courses/{id}/"),
        ("POST /api/v1/courses/", "POST /api/v1/courses/{course_id}/enrollments/"),
        ("POST /api/v1/templates/", "POST /api/v1/templates/{template_id}/vms/"),
        ("POST /api/v1/templates/{template_id}/publish/", "GET /api/v1/operations/{id}/"),
    } <= transitions


@pytest.mark.django_db
def test_sequences_of_operations_answer_as_the_schema_says(world, token):
    SignedInWorkflow.token = token
    SignedInWorkflow.run(
        settings=settings(
            max_examples=SEQUENCES,
            stateful_step_count=6,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
    )
