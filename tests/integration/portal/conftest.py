"""The API world the permission matrix and the schema fuzzing meet: two courses, every role,
labs on the test simulator (tests/integration/portal/test_permission_matrix.py,
tests/integration/portal/test_api_schema.py)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone
from rest_framework.authtoken.models import Token

from accounts import services as account_services
from courses import guides as course_guides
from courses import services as course_services
from labs import console, services
from labs.endpoints import endpoint_client
from labs.models import Lab, LabSnapshot, Operation
from lti.models import CourseLink
from tests.factories import AdminFactory, EndpointFactory, LtiPlatformFactory, open_course, simulator_endpoint

DEMO_ESXI = "/DC0/vm/Nestlab Templates/Nested vSphere 8 Lab/esxi-01"
# A template source no lab row claims: the labs here pretend their VMs are DEMO_ESXI, which the
# picker therefore refuses as a lab VM (docs/security.md, finding 2).
DEMO_SOURCE = "/DC0/vm/Nestlab Templates/Nested vSphere 8 Lab/vcsa"
PNG_1X1 = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d4944415478da63f8cfc0f01f0005000201a0b1f0b60000000049454e44ae426082"
)


@dataclass
class World:
    users: dict
    tokens: dict
    course: object
    other_course: object
    lab: Lab
    removed_lab: Lab
    operation: Operation
    removed_operation: Operation
    template: object
    version: object
    spare_network: object
    template_vm: object
    endpoint: object
    spare_endpoint: object
    esxi_moref: str
    source_moref: str
    classmate_enrollment: object
    console_session: object
    owner_key: object
    lti_platform: object
    lti_link: object
    guide_step: object
    guide_check: object
    guide_variable: object
    guide_image: object
    plain_step_key: str
    checked_step_key: str


def _ready(lab: Lab, endpoint, esxi_moref: str) -> Lab:
    """A built, running lab on the simulator's endpoint (esxi-01 is the demo VM), with its
    baseline and one snapshot taken after it."""
    Operation.objects.filter(lab=lab).update(state=Operation.State.SUCCEEDED)
    Lab.objects.filter(pk=lab.pk).update(
        state=Lab.State.READY,
        endpoint=endpoint,
        running_since=timezone.now(),
        expires_at=timezone.now() + timedelta(hours=1),
    )
    lab.vms.filter(role="esxi-01").update(moref=esxi_moref, power_state="poweredOn")
    baseline = LabSnapshot.objects.create(lab=lab, name="Baseline", is_baseline=True)
    LabSnapshot.objects.create(lab=lab, name="cluster built", parent=baseline)
    lab.refresh_from_db()
    return lab


def _build(vcsim) -> World:
    course, other_course = open_course(students=3, quota={"lease_hours": 4}), open_course(students=1)
    owner, classmate, removed = (e.student for e in course.enrollments.order_by("pk"))
    instructor = course.instructors.get()
    users = {
        "owner": owner,
        "classmate": classmate,
        "outsider": other_course.enrollments.get().student,
        "removed": removed,
        "instructor": instructor,
        "other_instructor": other_course.instructors.get(),
        "admin": AdminFactory(),
    }
    endpoint = simulator_endpoint(vcsim)
    esxi_moref = endpoint_client(endpoint).get(DEMO_ESXI).moref
    lab = _ready(services.lab_start(course=course, student=owner, actor=owner).lab, endpoint, esxi_moref)
    removed_lab = _ready(services.lab_start(course=course, student=removed, actor=removed).lab, endpoint, esxi_moref)
    # A second lab each, still queued: the operation routes' target (the first labs stay idle).
    operation = services.lab_start(course=course, student=owner, actor=owner)
    removed_operation = services.lab_start(course=course, student=removed, actor=removed)
    course_services.enrollment_remove(enrollment=course.enrollments.get(student=removed), actor=instructor)
    template = course.template_version.template
    # On the simulator, so that routes reading its VMs from vCenter answer (their VMs are not there).
    type(template).objects.filter(pk=template.pk).update(endpoint=endpoint)
    template.refresh_from_db()
    # A guide on the draft (a step to read, a step with a question), frozen into the course's version.
    plain_step = course_guides.guide_step_add(template=template, actor=instructor, title="Read")
    guide_step = course_guides.guide_step_add(template=template, actor=instructor, title="Answer", points=5)
    guide_check = course_guides.guide_check_add(
        step=guide_step, actor=instructor, kind="question", label="Address", prompt="Which?", answer="10.0.0.1"
    )
    guide_variable = course_guides.guide_variable_add(template=template, actor=instructor, name="code")
    guide_image = course_guides.guide_image_add(template=template, actor=instructor, name="map.png", data=PNG_1X1)
    version = course.template_version
    version.guide = course_guides.guide_freeze(template)
    version.save(update_fields=["guide"])
    return World(
        users=users,
        tokens={role: Token.objects.create(user=user).key for role, user in users.items()},
        course=course,
        other_course=other_course,
        lab=lab,
        removed_lab=removed_lab,
        operation=operation,
        removed_operation=removed_operation,
        template=template,
        version=course.template_version,
        spare_network=course_services.template_network_add(template=template, actor=instructor, name="spare"),
        template_vm=template.vms.get(role="router"),
        endpoint=endpoint,
        spare_endpoint=EndpointFactory(),
        esxi_moref=esxi_moref,
        source_moref=endpoint_client(endpoint).get(DEMO_SOURCE).moref,
        classmate_enrollment=course.enrollments.get(student=classmate),
        # The owner's console of esxi-01, opened and never connected (the browser was not there).
        console_session=console.console_open(lab=lab, vm=lab.vms.get(role="esxi-01"), actor=owner),
        # An API key the owner made on their account page.
        owner_key=account_services.api_key_create(user=owner, name="notebook")[0],
        # An LMS, and its course that opens the course (no roster or grade-book service: nothing
        # leaves the test for it).
        lti_platform=(platform := LtiPlatformFactory()),
        lti_link=CourseLink.objects.create(
            platform=platform, deployment_id="deployment-1", context_id="course-101", course=course
        ),
        guide_step=guide_step,
        guide_check=guide_check,
        guide_variable=guide_variable,
        guide_image=guide_image,
        plain_step_key=str(plain_step.pk),
        checked_step_key=str(guide_step.pk),
    )


@pytest.fixture(scope="module")
def world(vcsim, django_db_setup, django_db_blocker):
    """Built once per test module, in a transaction rolled back at its end; each test's own
    transaction (``django_db``, not transactional) nests inside it. Nothing is enqueued."""
    with django_db_blocker.unblock(), transaction.atomic():
        send_operation, services.dispatch.send_operation = services.dispatch.send_operation, lambda *a, **k: None
        try:
            yield _build(vcsim)
        finally:
            services.dispatch.send_operation = send_operation
            transaction.set_rollback(True)
