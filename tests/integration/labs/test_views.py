"""labs/views.py: publishing a template from its page, and the inventory picker's JSON,
against the vCenter simulator's demo inventory."""

from __future__ import annotations

import time

import pytest
from django.urls import reverse

from courses import services as course_services
from courses.models import TemplateVersion
from labs import services
from labs.models import Operation
from tests.factories import AdminFactory, EndpointFactory, InstructorFactory, StudentFactory, simulator_endpoint

LAB_FOLDER = "/DC0/vm/Nestlab Templates/Nested vSphere 8 Lab"


@pytest.fixture
def enqueued(monkeypatch):
    sent: list[int] = []
    monkeypatch.setattr(services, "_enqueue", lambda operation_id, task_id: sent.append(operation_id))
    return sent


def make_template(owner, endpoint, vms=()):
    template = course_services.template_create(actor=owner, endpoint=endpoint, name="Nested vSphere 8")
    for role, moref in vms:
        course_services.template_vm_add(
            template=template, actor=owner, role=role, source_moref=moref, source_name=role, nic_networks=["lab"]
        )
    return template


# Publish


@pytest.mark.django_db
def test_publish_freezes_a_version_and_goes_to_the_operation_page(client, enqueued, django_capture_on_commit_callbacks):
    instructor = InstructorFactory()
    template = make_template(instructor, EndpointFactory(), vms=[("esxi-01", "vm-72")])
    client.force_login(instructor)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("labs:template-publish", args=[template.pk]))
    operation = Operation.objects.get()
    assert response.url == reverse("labs:operation-detail", args=[operation.pk])
    assert enqueued == [operation.pk]
    assert (operation.kind, operation.template_version.number, operation.template_version.state) == (
        "publish",
        1,
        "publishing",
    )
    page = client.get(response.url).content.decode()
    assert "Publish template" in page
    assert reverse("courses:template-detail", args=[template.pk]) in page

    detail = client.get(reverse("courses:template-detail", args=[template.pk])).content.decode()
    assert "Version 1 is being published" in detail
    assert reverse("labs:operation-detail", args=[operation.pk]) in detail


@pytest.mark.django_db
def test_an_incomplete_draft_is_not_published_and_says_why(client, enqueued):
    instructor = InstructorFactory()
    template = make_template(instructor, EndpointFactory())
    client.force_login(instructor)
    response = client.post(reverse("labs:template-publish", args=[template.pk]), follow=True)
    assert response.redirect_chain[-1][0] == reverse("courses:template-detail", args=[template.pk])
    texts = [str(message) for message in response.context["messages"]]
    assert texts == ["Not published: The template has no VMs yet."]
    assert not Operation.objects.exists()


@pytest.mark.django_db
def test_a_second_publish_while_one_runs_is_refused_in_words(client, enqueued):
    instructor = InstructorFactory()
    template = make_template(instructor, EndpointFactory(), vms=[("esxi-01", "vm-72")])
    client.force_login(instructor)
    client.post(reverse("labs:template-publish", args=[template.pk]))
    response = client.post(reverse("labs:template-publish", args=[template.pk]), follow=True)
    assert b"being published already" in response.content
    assert Operation.objects.count() == 1


@pytest.mark.django_db
def test_only_owners_publish(client, enqueued):
    template = make_template(InstructorFactory(), EndpointFactory(), vms=[("esxi-01", "vm-72")])
    client.force_login(InstructorFactory())
    response = client.post(reverse("labs:template-publish", args=[template.pk]), follow=True)
    assert b"You cannot publish this template." in response.content
    client.force_login(StudentFactory())
    response = client.post(reverse("labs:template-publish", args=[template.pk]))
    assert not Operation.objects.exists()
    assert not TemplateVersion.objects.exists()


def wait_final(operation: Operation, timeout: float = 60) -> Operation:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        operation.refresh_from_db()
        if operation.is_final:
            return operation
        time.sleep(0.2)
    raise AssertionError(f"operation {operation.pk} still {operation.state}")


@pytest.mark.integration
def test_publish_runs_in_vcenter_and_the_pages_show_the_outcome(client, celery_worker, vcsim):
    instructor = InstructorFactory()
    endpoint = simulator_endpoint(vcsim)
    template = make_template(instructor, endpoint, vms=[("esxi-01", "vm-72"), ("router", "vm-80")])
    client.force_login(instructor)
    client.post(reverse("labs:template-publish", args=[template.pk]))
    operation = wait_final(Operation.objects.get())
    assert operation.state == "succeeded", operation.error
    page = client.get(reverse("labs:operation-detail", args=[operation.pk])).content.decode()
    assert "Succeeded" in page and "courses can use it now" in page

    detail = client.get(reverse("courses:template-detail", args=[template.pk])).content.decode()
    assert "Published" in detail
    assert "Unpublished changes" not in detail and "Not published yet" not in detail


@pytest.mark.integration
def test_a_failed_publish_shows_the_reason_on_both_pages(client, celery_worker, vcsim):
    instructor = InstructorFactory()
    endpoint = simulator_endpoint(vcsim)
    template = make_template(instructor, endpoint, vms=[("ghost", "vm-999999")])
    client.force_login(instructor)
    client.post(reverse("labs:template-publish", args=[template.pk]))
    operation = wait_final(Operation.objects.get())
    assert operation.state == "failed"
    page = client.get(reverse("labs:operation-detail", args=[operation.pk])).content.decode()
    assert "ghost (ghost) is no longer in vCenter" in page
    detail = client.get(reverse("courses:template-detail", args=[template.pk])).content.decode()
    assert "Failed" in detail
    assert "ghost (ghost) is no longer in vCenter" in detail


# The inventory picker


@pytest.fixture
def picker(client, vcsim, db):
    endpoint = simulator_endpoint(vcsim)
    client.force_login(InstructorFactory())
    return client, endpoint


@pytest.mark.integration
def test_picker_starts_at_the_datacenter_vm_folder(picker):
    client, endpoint = picker
    data = client.get(reverse("labs:endpoint-inventory", args=[endpoint.pk])).json()
    assert data["path"] == "/DC0/vm"
    assert data["breadcrumbs"] == [{"name": "DC0 (VMs and templates)", "path": "/DC0/vm"}]
    kinds = [(item["kind"], item["name"]) for item in data["items"]]
    assert kinds[0] == ("folder", "Nestlab Templates")  # folders first
    assert all(kind == "vm" for kind, _ in kinds[1:])


@pytest.mark.integration
def test_picker_browses_into_folders_with_breadcrumbs(picker):
    client, endpoint = picker
    data = client.get(reverse("labs:endpoint-inventory", args=[endpoint.pk]), {"path": LAB_FOLDER}).json()
    assert [crumb["name"] for crumb in data["breadcrumbs"]] == [
        "DC0 (VMs and templates)",
        "Nestlab Templates",
        "Nested vSphere 8 Lab",
    ]
    assert data["breadcrumbs"][1]["path"] == "/DC0/vm/Nestlab Templates"
    assert sorted(item["name"] for item in data["items"]) == ["esxi-01", "esxi-02", "esxi-03", "router", "vcsa"]


@pytest.mark.integration
def test_picker_searches_vms_by_name_below_a_folder(picker):
    client, endpoint = picker
    data = client.get(reverse("labs:endpoint-inventory", args=[endpoint.pk]), {"search": "esxi"}).json()
    assert [item["name"] for item in data["items"]] == ["esxi-01", "esxi-02", "esxi-03"]
    assert data["items"][0]["path"] == f"{LAB_FOLDER}/esxi-01"


@pytest.mark.integration
def test_picker_reads_a_vm_with_one_row_per_adapter(picker):
    client, endpoint = picker
    items = client.get(reverse("labs:endpoint-inventory", args=[endpoint.pk]), {"path": LAB_FOLDER}).json()["items"]
    esxi = next(item for item in items if item["name"] == "esxi-01")
    data = client.get(reverse("labs:endpoint-vm", args=[endpoint.pk, esxi["moref"]])).json()
    assert (data["name"], data["nested_hv"], data["num_cpu"], data["power_state"]) == ("esxi-01", True, 4, "poweredOff")
    assert [nic["label"] for nic in data["nics"]] == ["Network adapter 1", "Network adapter 2"]
    assert data["nics"][0]["network"] == "Nestlab-Lab-Template"


@pytest.mark.integration
def test_picker_says_in_words_when_a_folder_or_vm_is_missing(picker):
    client, endpoint = picker
    response = client.get(reverse("labs:endpoint-inventory", args=[endpoint.pk]), {"path": "/DC0/vm/nope"})
    assert response.status_code == 404
    assert response.json() == {"error": "No folder or datacenter '/DC0/vm/nope' in vCenter."}
    response = client.get(reverse("labs:endpoint-vm", args=[endpoint.pk, "vm-999999"]))
    assert response.status_code == 404
    assert "vm-999999" in response.json()["error"]


@pytest.mark.integration
def test_picker_says_in_words_when_vcenter_refuses_the_login(client, vcsim, db):
    endpoint = simulator_endpoint(vcsim, password="wrong")
    client.force_login(InstructorFactory())
    response = client.get(reverse("labs:endpoint-inventory", args=[endpoint.pk]))
    assert response.status_code == 502
    assert "rejected the user name or password" in response.json()["error"]


@pytest.mark.django_db
def test_picker_says_in_words_when_vcenter_is_unreachable(client):
    endpoint = EndpointFactory(url="http://127.0.0.1:9/sdk")
    client.force_login(AdminFactory())
    response = client.get(reverse("labs:endpoint-inventory", args=[endpoint.pk]))
    assert response.status_code == 503
    assert "127.0.0.1" in response.json()["error"]
    assert "Traceback" not in response.json()["error"]


@pytest.mark.django_db
def test_students_cannot_browse_vcenter(client):
    endpoint = EndpointFactory()
    client.force_login(StudentFactory())
    response = client.get(reverse("labs:endpoint-inventory", args=[endpoint.pk]))
    assert response.status_code == 403
    assert response.json() == {"error": "Only instructors and admins can browse vCenter."}
    assert client.get(reverse("labs:endpoint-vm", args=[endpoint.pk, "vm-1"])).status_code == 403


@pytest.mark.django_db
def test_anonymous_callers_are_sent_to_log_in(client):
    endpoint = EndpointFactory()
    response = client.get(reverse("labs:endpoint-inventory", args=[endpoint.pk]))
    assert response.status_code == 302
