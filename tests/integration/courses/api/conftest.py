"""Helpers for the courses API tests: clients signed in as someone, and small builders."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from courses import services
from courses.models import Course, LabTemplate, TemplateVersion
from tests.factories import TERM_END, TERM_START, EndpointFactory


def client_for(user=None) -> APIClient:
    """An API client signed in as ``user`` (anonymous without one)."""
    client = APIClient()
    if user is not None:
        client.force_authenticate(user)
    return client


@pytest.fixture
def as_user():
    return client_for


def make_template(owner, *, endpoint=None, vms: int = 0, name: str = "Nested vSphere 8") -> LabTemplate:
    template = services.template_create(actor=owner, endpoint=endpoint or EndpointFactory(), name=name)
    for index in range(vms):
        services.template_vm_add(
            template=template,
            actor=owner,
            role=f"esxi-0{index + 1}",
            source_moref=f"vm-{100 + index}",
            source_name=f"esxi-0{index + 1}",
            nic_networks=["lab"],
        )
    return template


def make_published_version(owner, template: LabTemplate | None = None) -> TemplateVersion:
    """A version as a successful publish leaves it (without vCenter)."""
    template = template or make_template(owner, vms=1)
    version = services.template_version_create(template=template, actor=owner)
    spec = dict(version.spec)
    spec["vms"] = [{**vm, "num_cpu": 4, "memory_mb": 8192, "disk_gb": 20.0} for vm in spec["vms"]]
    return services.template_version_publish_succeeded(version=version, spec=spec)


def make_course(instructor, *, code: str = "vsp8-fall26", open_with=None, **fields) -> Course:
    course = services.course_create(
        actor=instructor,
        title=fields.pop("title", "vSphere 8 administration"),
        code=code,
        starts_on=TERM_START,
        ends_on=TERM_END,
        **fields,
    )
    if open_with is not None:
        services.course_update(course=course, actor=instructor, template_version=open_with, state=Course.State.OPEN)
    return course
