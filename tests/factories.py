"""factory_boy factories for the project's models."""

from __future__ import annotations

from datetime import date, timedelta

import factory
from django.contrib.auth import get_user_model

from core import roles
from courses.models import VCenterEndpoint

DEFAULT_PASSWORD = "correct-horse-battery"

# A course term around the day the tests run, never fixed dates: labs refuse to start or power
# on once a course has ended, so a fixed end date would make the suite fail on that day.
TERM_START = date.today() - timedelta(days=60)
TERM_END = date.today() + timedelta(days=90)


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ["username"]
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    first_name = factory.Faker("first_name")
    last_name = factory.Faker("last_name")
    email = factory.LazyAttribute(lambda user: f"{user.username}@example.edu")

    @factory.post_generation
    def password(user, create, extracted, **kwargs):
        user.set_password(extracted or DEFAULT_PASSWORD)
        if create:
            user.save()


class AdminFactory(UserFactory):
    username = factory.Sequence(lambda n: f"admin{n}")

    @factory.post_generation
    def role(user, create, extracted, **kwargs):
        if create:
            roles.role_grant(user=user, role=roles.Role.ADMIN)


class InstructorFactory(UserFactory):
    username = factory.Sequence(lambda n: f"instructor{n}")

    @factory.post_generation
    def role(user, create, extracted, **kwargs):
        if create:
            roles.role_grant(user=user, role=roles.Role.INSTRUCTOR)


class StudentFactory(UserFactory):
    username = factory.Sequence(lambda n: f"student{n}")

    @factory.post_generation
    def role(user, create, extracted, **kwargs):
        if create:
            roles.role_grant(user=user, role=roles.Role.STUDENT)


class EndpointFactory(factory.django.DjangoModelFactory):
    """An endpoint; ``simulator_endpoint(vcsim)`` points one at the test simulator."""

    class Meta:
        model = VCenterEndpoint
        skip_postgeneration_save = True

    name = factory.Sequence(lambda n: f"vCenter {n}")
    url = "https://vc.example.edu"
    username = "administrator@vsphere.local"
    verify_tls = False
    datacenter = "DC0"
    compute_path = "/DC0/host/DC0_C0"
    datastore = "LocalDS_0"
    lab_switch = "vSwitch0"
    vlan_min = 2000
    vlan_max = 2099
    concurrency_limit = 8

    @factory.post_generation
    def password(endpoint, create, extracted, **kwargs):
        endpoint.set_password(extracted or "secret")
        if create:
            endpoint.save()


def simulator_endpoint(vcsim, **overrides) -> VCenterEndpoint:
    """An endpoint that reaches the test session's simulator with its credentials."""
    fields = {
        "url": vcsim.url,
        "username": vcsim.username,
        "password": vcsim.password,
        "console_username": vcsim.console_username,
        **overrides,
    }
    console_password = fields.pop("console_password", vcsim.console_password)
    endpoint = EndpointFactory(**fields)
    if endpoint.console_username:
        endpoint.set_console_password(console_password)
        endpoint.save(update_fields=["console_password_ciphertext"])
    return endpoint


def published_version(*, owner=None, endpoint=None, vms=None, manual: str = ""):
    """A published template version without touching vCenter (spec written by hand)."""
    from courses import services as course_services

    owner = owner or InstructorFactory()
    template = course_services.template_create(
        actor=owner, endpoint=endpoint or EndpointFactory(), name="Nested vSphere 8 Lab", manual=manual
    )
    vms = vms or [("esxi-01", 4, 16384), ("router", 1, 1024)]
    for index, (role, _cpus, _memory_mb) in enumerate(vms):
        course_services.template_vm_add(
            template=template,
            actor=owner,
            role=role,
            source_moref=f"vm-{900 + index}",
            source_name=role,
            nic_networks=["lab"],
        )
    version = course_services.template_version_create(template=template, actor=owner)
    sizes = {role: (cpus, memory_mb) for role, cpus, memory_mb in vms}
    spec = dict(version.spec)
    spec["vms"] = [
        {
            **vm,
            "num_cpu": sizes[vm["role"]][0],
            "memory_mb": sizes[vm["role"]][1],
            "disk_gb": 20.0,
            "baseline_snapshot": f"snapshot-{vm['source_moref']}",
            "guest_nested_hv": False,
        }
        for vm in spec["vms"]
    ]
    return course_services.template_version_publish_succeeded(version=version, spec=spec)


def open_course(*, students: int = 3, quota: dict | None = None, **course_fields):
    """An open course on a published version, with enrolled students and an optional quota."""
    from courses import services as course_services
    from courses.models import Course

    instructor = InstructorFactory()
    version = published_version(owner=instructor, manual=course_fields.pop("manual", ""))
    course = course_services.course_create(
        actor=instructor,
        title=course_fields.pop("title", "vSphere 8"),
        code=course_fields.pop("code", f"vsp8-{instructor.pk}"),
        starts_on=TERM_START,
        ends_on=TERM_END,
        template_version=version,
    )
    course_services.course_update(course=course, actor=instructor, state=Course.State.OPEN)
    for _ in range(students):
        course_services.enrollment_add(course=course, actor=instructor, student=StudentFactory())
    if quota:
        course_services.quota_update(course=course, actor=AdminFactory(), **quota)
    return course


def lab_row(course, student, number: int = 1, *, state: str = "ready", created_at=None, **fields):
    """A lab as a database row only (nothing in vCenter), sized from the course's template version:
    for reads such as the usage reports."""
    from django.utils import timezone

    from labs.models import Lab

    version = course.template_version
    return Lab.objects.create(
        course=course,
        student=student,
        number=number,
        template_version=version,
        endpoint=version.template.endpoint,
        state=state,
        vcpu=version.vcpu_total,
        memory_mb=version.memory_mb_total,
        disk_gb=version.disk_gb_total,
        created_at=created_at or timezone.now(),
        **fields,
    )


class LtiPlatformFactory(factory.django.DjangoModelFactory):
    """An LMS registered for LTI 1.3 (its addresses lead nowhere; the lti_platform fixture's do)."""

    class Meta:
        model = "lti.Platform"

    name = factory.Sequence(lambda n: f"Moodle {n}")
    issuer = factory.Sequence(lambda n: f"https://moodle{n}.example.edu")
    client_id = "nestlab"
    deployment_ids = factory.LazyFunction(lambda: ["deployment-1"])
    auth_login_url = factory.LazyAttribute(lambda platform: f"{platform.issuer}/mod/lti/auth.php")
    auth_token_url = factory.LazyAttribute(lambda platform: f"{platform.issuer}/mod/lti/token.php")
    key_set_url = factory.LazyAttribute(lambda platform: f"{platform.issuer}/mod/lti/certs.php")
