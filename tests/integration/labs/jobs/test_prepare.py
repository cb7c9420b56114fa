"""The prepare job (labs/jobs/prepare.py) and the plan it is confirmed from
(labs.selectors.template_prepare_plan), against a simulator of its own, run in-process."""

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from core.errors import Conflict
from courses import services as course_services
from labs import selectors, services
from labs.endpoints import endpoint_client
from labs.jobs import execute
from labs.models import Operation
from portal import simulator
from tests.factories import InstructorFactory, simulator_endpoint

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.integration]
RUNNING_VM = "/DC0/vm/DC0_H0_VM1"  # powered on, nested HV off, in the simulator's demo inventory
READY_VM = "/DC0/vm/Nestlab Templates/Nested vSphere 8 Lab/router"


@pytest.fixture(scope="module")
def sim():
    """Powers VMs off and reconfigures them: a simulator of this module's own."""
    server = simulator.start(args=["-demo"])
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def no_queue(monkeypatch):
    monkeypatch.setattr(services.dispatch, "send_operation", lambda *args, **kwargs: None)


@pytest.fixture
def template(sim):
    return _template(sim, RUNNING_VM)


def _template(sim, running_path):
    """A template of a running VM that needs nested HV, and a router ready to publish. Each test
    that changes a VM uses its own: the simulator lives as long as the module."""
    owner = InstructorFactory()
    endpoint = simulator_endpoint(sim)
    client = endpoint_client(endpoint)
    template = course_services.template_create(actor=owner, endpoint=endpoint, name="Nested vSphere 8")
    for role, path, nested in (("esxi", running_path, True), ("router", READY_VM, False)):
        item = client.get(path)
        course_services.template_vm_add(
            template=template,
            actor=owner,
            role=role,
            source_moref=item.moref,
            source_name=item.name,
            source_path=item.path,
            nested_hv_required=nested,
            nic_networks=["lab"],
        )
    return template


def _owner(template):
    return template.owners.get()


def test_the_plan_says_what_would_change_and_the_job_does_exactly_that(template):
    client = endpoint_client(template.endpoint)
    running = client.get(RUNNING_VM)
    before = client.vm_info(running.moref)
    assert (before.power_state, before.nested_hv) == ("poweredOn", False)

    plan = selectors.template_prepare_plan(template=template, actor=_owner(template))
    assert plan == [
        {
            "role": "esxi",
            "name": running.name,
            "changes": [
                f"power off esxi ({running.name}), which is powered on",
                f"turn on nested hardware virtualization on esxi ({running.name})",
            ],
            "problem": "",
        },
        {"role": "router", "name": "router", "changes": [], "problem": ""},
    ]

    operation = services.template_prepare(template=template, actor=_owner(template))
    with pytest.raises(Conflict, match="being prepared already"):
        services.template_prepare(template=template, actor=_owner(template))
    execute(operation.pk)
    operation.refresh_from_db()

    assert operation.state == Operation.State.SUCCEEDED, operation.error
    assert operation.result["changes"] == [
        f"Powered off esxi ({running.name}).",
        f"Turned on nested hardware virtualization on esxi ({running.name}).",
    ]
    after = client.vm_info(running.moref)
    assert (after.power_state, after.nested_hv) == ("poweredOff", True)
    assert all(not row["changes"] for row in selectors.template_prepare_plan(template=template, actor=_owner(template)))

    # Now it publishes, which it could not before.
    publish = services.template_publish(template=template, actor=_owner(template))
    execute(publish.pk)
    publish.refresh_from_db()
    assert publish.state == Operation.State.SUCCEEDED, publish.error


def test_only_owners_and_admins_prepare_and_a_template_without_vms_says_so(template):
    from django.core.exceptions import PermissionDenied

    with pytest.raises(PermissionDenied, match="owners and admins"):
        services.template_prepare(template=template, actor=InstructorFactory())
    with pytest.raises(PermissionDenied):
        selectors.template_prepare_plan(template=template, actor=InstructorFactory())
    empty = course_services.template_create(actor=_owner(template), endpoint=template.endpoint, name="Empty")
    with pytest.raises(ValidationError, match="has no VMs to prepare"):
        services.template_prepare(template=empty, actor=_owner(template))


def test_the_page_asks_first_then_starts_it(sim, client):
    template = _template(sim, "/DC0/vm/DC0_C0_RP0_VM0")
    client.force_login(_owner(template))
    url = reverse("labs:template-prepare", args=[template.pk])
    page = client.get(url).content.decode()
    assert "power off esxi" in page and "turn on nested hardware virtualization on esxi" in page
    assert "Make 2 changes" in page and "like pulling the plug" in page
    assert not Operation.objects.exists(), "looking is not doing"
    # A POST without the confirmation shows the same question instead of acting.
    assert "Make 2 changes" in client.post(url).content.decode()
    assert not Operation.objects.exists()
    response = client.post(url, {"confirmed": "on"})
    operation = Operation.objects.get(kind=Operation.Kind.PREPARE_SOURCES)
    assert response.url == reverse("labs:operation-detail", args=[operation.pk])
    detail = client.get(reverse("courses:template-detail", args=[template.pk])).content.decode()
    assert url in detail and "Prepare the VMs…" in detail
