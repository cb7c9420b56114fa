"""labs/template_sources.py against a simulator: a student's lab VM (and anything Nestlab built)
is never a template source, in the picker, when added (page or API) or at publish; an admin's
source folders restrict all three (docs/security.md, finding 2)."""

from __future__ import annotations

import pytest
from django.core.exceptions import PermissionDenied, ValidationError

from courses import services as course_services
from courses.models import LabTemplate, TemplateNIC, TemplateVM
from labs import selectors, services
from labs.endpoints import endpoint_client
from labs.jobs import execute
from labs.models import LAB_ATTRIBUTE, Lab, LabVM, Operation
from portal import demo, simulator
from tests.factories import InstructorFactory

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.integration]
DEMO_FOLDER = "/DC0/vm/Nestlab Templates/Nested vSphere 8 Lab"


@pytest.fixture(scope="module")
def sim():
    """Builds labs and sets attributes: a simulator of this module's own."""
    server = simulator.start(args=["-demo"])
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def no_queue(monkeypatch):
    monkeypatch.setattr(services.dispatch, "send_operation", lambda *args, **kwargs: None)


@pytest.fixture
def course(sim):
    return demo.seed_demo(vcenter_url=sim.url, vcenter_user=sim.username, vcenter_password=sim.password)


@pytest.fixture
def lab_vm(course) -> LabVM:
    """A VM of student1's lab, built in vCenter through the real provision job."""
    student = course.enrollments.get(student__username="student1").student
    operation = services.lab_start(course=course, student=student, actor=student)
    execute(operation.pk)
    operation.refresh_from_db()
    assert operation.state == Operation.State.SUCCEEDED, operation.error
    return Lab.objects.get(pk=operation.lab_id).vms.order_by("role").first()


@pytest.fixture
def other_instructor():
    """An instructor of another course, who must not reach student1's disks."""
    return InstructorFactory()


def _template(course, owner) -> LabTemplate:
    endpoint = course.template_version.template.endpoint
    return course_services.template_create(actor=owner, endpoint=endpoint, name="Copy attempt")


def _saved_before_the_fix(template, role, moref, name) -> TemplateVM:
    """A template VM as a template saved before the fix holds it: the add refuses it now."""
    vm = TemplateVM.objects.create(template=template, role=role, source_moref=moref, source_name=name)
    TemplateNIC.objects.create(vm=vm, index=0, network=template.networks.get(name="lab"))
    return vm


def _names(items) -> set[str]:
    return {item.name for item in items}


def test_the_picker_never_shows_nestlabs_folder_or_a_lab_vm(course, lab_vm, other_instructor):
    endpoint = lab_vm.lab.endpoint
    top = selectors.endpoint_inventory(endpoint=endpoint, user=other_instructor)
    assert "Nestlab Templates" in _names(top) and "Nestlab Labs" not in _names(top)
    inside = selectors.endpoint_inventory(
        endpoint=endpoint, user=other_instructor, path=f"{endpoint.labs_folder_path}/{course.code}"
    )
    assert inside == []
    found = selectors.endpoint_inventory(endpoint=endpoint, user=other_instructor, search=lab_vm.name)
    assert lab_vm.moref not in {item.moref for item in found}
    # The VM the lab was cloned from is still offered.
    source = selectors.endpoint_inventory(endpoint=endpoint, user=other_instructor, search=lab_vm.role)
    assert any(item.path.startswith(DEMO_FOLDER) for item in source)
    with pytest.raises(PermissionDenied, match="is a VM of a Nestlab lab"):
        selectors.endpoint_vm(endpoint=endpoint, user=other_instructor, vm=lab_vm.moref)


def test_adding_a_lab_vm_is_refused_whatever_path_is_claimed(course, lab_vm, other_instructor):
    template = _template(course, other_instructor)
    with pytest.raises(ValidationError, match="is a VM of a Nestlab lab") as refused:
        course_services.template_vm_add(
            template=template,
            actor=other_instructor,
            role="stolen",
            source_moref=lab_vm.moref,
            source_name=lab_vm.name,
            source_path=f"{DEMO_FOLDER}/innocent",  # the API lets a caller say anything here
        )
    assert "source_moref" in refused.value.message_dict
    assert not template.vms.exists()


def test_publish_refuses_a_lab_vm_known_only_by_its_attribute_and_takes_no_snapshot(course, lab_vm, other_instructor):
    """A VM Nestlab built, whose row is gone (say, a lab deleted while vCenter was away), still
    carries nestlab.lab_id: publish reads it from vCenter before any snapshot."""
    client = endpoint_client(lab_vm.lab.endpoint)
    moref, name = lab_vm.moref, lab_vm.name
    LabVM.objects.filter(pk=lab_vm.pk).delete()
    assert client.get_custom_values(moref)[LAB_ATTRIBUTE] == str(lab_vm.lab_id)
    template = _template(course, other_instructor)
    vm = _saved_before_the_fix(template, "stolen", moref, name)
    snapshots_before = [snapshot.name for snapshot in client.vm_info(moref).all_snapshots()]

    operation = services.template_publish(template=template, actor=other_instructor)
    execute(operation.pk)
    operation.refresh_from_db()

    assert operation.state == Operation.State.FAILED
    assert f"stolen ({name}) is a VM of a Nestlab lab" in operation.error
    assert [snapshot.name for snapshot in client.vm_info(moref).all_snapshots()] == snapshots_before
    assert vm.source_moref == moref


def test_an_admins_source_folders_restrict_picker_add_and_publish(course, other_instructor):
    endpoint = course.template_version.template.endpoint
    endpoint.template_source_folders = f"{DEMO_FOLDER}\n"
    endpoint.full_clean()
    endpoint.save()
    top = selectors.endpoint_inventory(endpoint=endpoint, user=other_instructor)
    assert _names(top) == {"Nestlab Templates"}, "only the way down to the allowed folder"
    client = endpoint_client(endpoint)
    outside = client.get("/DC0/vm/DC0_H0_VM0")
    with pytest.raises(PermissionDenied, match="outside the folders template VMs come from"):
        selectors.endpoint_vm(endpoint=endpoint, user=other_instructor, vm=outside.moref)
    template = _template(course, other_instructor)
    with pytest.raises(ValidationError, match="outside the folders"):
        course_services.template_vm_add(
            template=template,
            actor=other_instructor,
            role="outside",
            source_moref=outside.moref,
            source_name=outside.name,
            source_path=outside.path,
        )
    inside = client.get(f"{DEMO_FOLDER}/router")
    added = course_services.template_vm_add(
        template=template,
        actor=other_instructor,
        role="router",
        source_moref=inside.moref,
        source_name=inside.name,
        source_path=inside.path,
        nic_networks=["lab"],
    )
    assert added.pk is not None
    # A VM added with no path (the API allows it) is held to the folders at publish.
    _saved_before_the_fix(template, "outside", outside.moref, "x")
    operation = services.template_publish(template=template, actor=other_instructor)
    execute(operation.pk)
    operation.refresh_from_db()
    assert operation.state == Operation.State.FAILED
    assert "outside (DC0_H0_VM0) is outside the folders" in operation.error
