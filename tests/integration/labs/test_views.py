"""labs/views.py: publishing a template from its page, and the inventory picker's JSON,
against the vCenter simulator's demo inventory."""

from __future__ import annotations

import datetime
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
    monkeypatch.setattr(services.dispatch, "send_operation", lambda operation_id, task_id: sent.append(operation_id))
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
    # Live without reloading (ws/operations/<id>/); no Refresh button any more.
    assert f'data-live="/ws/operations/{operation.pk}/"' in page and "Refresh" not in page
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
    assert "<li>ghost (ghost) is no longer in vCenter" in page, "one problem per line"
    assert "No version was made" in page
    detail = client.get(reverse("courses:template-detail", args=[template.pk])).content.decode()
    assert "The last publish failed; no version was made." in detail
    assert "<li>ghost (ghost) is no longer in vCenter" in detail
    assert "Publish v1" in detail, "the failure used up no version number"


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


# A student's lab page and its buttons; the instructor's class table. No vCenter: the
# services record operations and nothing is enqueued (labs.dispatch.send_operation is patched).

from django.utils import timezone  # noqa: E402

from core.models import AuditEntry  # noqa: E402
from courses import services as courses_services  # noqa: E402
from labs.models import Lab, LabSnapshot, LabVM  # noqa: E402
from tests.factories import lab_row, open_course  # noqa: E402


def _student(course, index=0):
    return course.enrollments.order_by("student__username")[index].student


def _ready(lab: Lab, *, snapshots: bool = True) -> Lab:
    """Pretend the provision finished: VMs exist and are on, the baseline is taken, the lab runs."""
    Operation.objects.filter(lab=lab).update(state=Operation.State.SUCCEEDED, progress=100)
    for index, vm in enumerate(lab.vms.all()):
        LabVM.objects.filter(pk=vm.pk).update(
            moref=f"vm-{lab.pk}{index}",
            power_state="poweredOn",
            guest_ip=f"192.168.10.{index + 1}",
            overall_status="green",
        )
    Lab.objects.filter(pk=lab.pk).update(state=Lab.State.READY, running_since=timezone.now())
    if snapshots:
        baseline = LabSnapshot.objects.create(lab=lab, name="Baseline", is_baseline=True)
        Lab.objects.filter(pk=lab.pk).update(current_snapshot=baseline)
    lab.refresh_from_db()
    return lab


def _started(course, index=0) -> Lab:
    student = _student(course, index)
    return _ready(services.lab_start(course=course, student=student, actor=student).lab)


def _messages(response) -> list[str]:
    return [str(message) for message in response.context["messages"]]


def _lab_url(lab, name="labs:lab-detail", *args):
    return reverse(name, args=[lab.pk, *args])


@pytest.mark.django_db
def test_a_student_starts_their_lab_from_the_home_page_and_lands_on_it(client, enqueued):
    course = open_course()
    student = _student(course)
    client.force_login(student)
    home = client.get(reverse("home")).content.decode()
    assert "Start my lab" in home
    assert reverse("labs:lab-start", args=[course.pk]) in home

    response = client.post(reverse("labs:lab-start", args=[course.pk]), {"next": "/"}, follow=True)
    lab = Lab.objects.get(student=student)
    assert response.redirect_chain[-1][0] == _lab_url(lab)
    assert f"Your lab {lab.name} is being built" in _messages(response)[0]
    page = response.content.decode()
    assert f'data-lab-id="{lab.pk}" data-state="provisioning"' in page
    assert f'data-operation-for-lab="{lab.pk}" data-operation-id="{lab.operations.get().pk}"' in page
    assert "Busy: provision lab is queued" in page
    assert f'data-busy-disable data-lab="{lab.pk}" disabled' in page  # the buttons wait for the build

    home = client.get(reverse("home")).content.decode()
    assert "Start my lab" not in home
    assert _lab_url(lab) in home


@pytest.mark.django_db
def test_starting_a_lab_over_the_quota_says_why_in_words(client, enqueued):
    course = open_course(students=2, quota={"running_labs": 1})
    _started(course, 0)
    client.force_login(_student(course, 1))
    response = client.post(reverse("labs:lab-start", args=[course.pk]), {"next": "/"}, follow=True)
    assert response.redirect_chain[-1][0] == "/"
    assert _messages(response) == [
        "Your lab did not start. No more labs can run at once in this class: the limit is 1 and 1 are in use."
    ]
    assert not Lab.objects.filter(student=_student(course, 1)).exists()


@pytest.mark.django_db
def test_a_course_that_cannot_run_labs_says_why_instead_of_a_button(client, enqueued):
    course = open_course()
    courses_services.course_update(course=course, actor=course.instructors.get(), state="closed")
    client.force_login(_student(course))
    home = client.get(reverse("home")).content.decode()
    assert "Start my lab" not in home
    assert f"{course.title} is closed: labs cannot start." in home


@pytest.mark.django_db
def test_a_course_that_has_ended_offers_no_start_button(client, enqueued):
    """The home page's rule is the service's: an open course past its end date starts no labs."""
    course = open_course()
    today = datetime.date.today()
    ended = {"starts_on": today - datetime.timedelta(days=90), "ends_on": today - datetime.timedelta(days=1)}
    type(course).objects.filter(pk=course.pk).update(**ended)
    client.force_login(_student(course))
    home = client.get(reverse("home")).content.decode()
    assert "Start my lab" not in home
    assert "labs cannot start." in home and "ended on" in home


@pytest.mark.django_db
def test_the_lab_page_shows_vms_snapshot_tree_manual_usage_and_operations(client, enqueued):
    course = open_course(
        quota={"snapshots_per_lab": 3, "lab_hours_per_student": 10},
        manual="# Exercise 1\n\nBuild the **cluster**.<script>alert(1)</script>",
    )
    template = course.template_version.template
    template.manual = "# The next version's draft"
    template.save()
    lab = _started(course)
    baseline = lab.current_snapshot
    first = LabSnapshot.objects.create(lab=lab, name="cluster built", description="3 hosts in", parent=baseline)
    second = LabSnapshot.objects.create(lab=lab, name="vsan on", parent=first)
    other = LabSnapshot.objects.create(lab=lab, name="side branch", parent=baseline)
    Lab.objects.filter(pk=lab.pk).update(current_snapshot=second)
    client.force_login(lab.student)
    page = client.get(_lab_url(lab)).content.decode()

    for vm in lab.vms.all():
        assert f'data-vm-id="{vm.pk}"' in page and vm.name in page
    assert 'data-power="poweredOn"' in page and 'data-field="power_state">On<' in page
    assert 'data-field="guest_ip">192.168.10.1<' in page
    running = lab.vms.filter(power_state="poweredOn").first()
    assert f'href="/labs/{lab.pk}/vms/{running.pk}/console/" aria-label="Console of {running.role}"' in page
    # The tree: the baseline at the root, children nested under their parents, "you are here".
    tree = page[page.index("data-snapshot-tree") :]
    assert tree.index("Baseline") < tree.index("cluster built") < tree.index("vsan on") < tree.index("side branch")
    assert tree[: tree.index("vsan on")].count('<ul class="snapshot-tree">') == 3
    assert f'data-snapshot-id="{second.pk}" class="current" aria-current="true"' in page
    assert "you are here" in page
    assert f'action="{_lab_url(lab, "labs:lab-revert", baseline.pk)}"' in page
    assert f'action="{_lab_url(lab, "labs:lab-snapshot-delete", baseline.pk)}"' not in page
    assert f'action="{_lab_url(lab, "labs:lab-snapshot-delete", other.pk)}"' in page
    assert f'<span data-snapshots-taken="{lab.pk}">3</span> of 3 kept' in page
    # Manual (sanitized), usage bars, recent operations, no busy buttons.
    assert "<strong>cluster</strong>" in page and "<script>" not in page
    assert "next version's draft" not in page, "the lab's version's manual, not the draft (finding 4)"
    assert 'data-bar="snapshots_per_lab"' in page and "Your usage" in page
    assert "Provision lab" in page and "Done" in page
    assert " disabled" not in page
    assert f'data-operation-for-lab="{lab.pk}" hidden' in page


@pytest.mark.django_db
def test_taking_a_snapshot_starts_an_operation_and_says_so(client, enqueued):
    lab = _started(open_course())
    client.force_login(lab.student)
    response = client.post(
        _lab_url(lab, "labs:lab-snapshot-create"), {"name": "cluster built", "description": "3 hosts"}, follow=True
    )
    operation = lab.operations.get(kind="snapshot")
    assert operation.params == {"name": "cluster built", "description": "3 hosts"}
    assert _messages(response) == [f"Taking snapshot 'cluster built' of every VM of {lab.name} together."]
    page = response.content.decode()
    assert f'data-operation-id="{operation.pk}"' in page
    assert "Busy: take snapshot is queued" in page


@pytest.mark.django_db
def test_a_snapshot_without_a_name_or_with_a_taken_name_is_refused_on_the_form(client, enqueued):
    lab = _started(open_course())
    client.force_login(lab.student)
    response = client.post(_lab_url(lab, "labs:lab-snapshot-create"), {"name": "  "})
    assert response.status_code == 200
    assert "Give the snapshot a name." in response.content.decode()
    assert 'aria-invalid="true"' in response.content.decode()  # the field says what is wrong
    response = client.post(_lab_url(lab, "labs:lab-snapshot-create"), {"name": "Baseline"})
    page = response.content.decode()
    assert "This lab already has a snapshot called Baseline." in page
    assert 'value="Baseline"' in page  # what they typed stays
    assert not lab.operations.filter(kind="snapshot").exists()


@pytest.mark.django_db
def test_snapshot_quota_and_busy_lab_are_refused_in_words(client, enqueued):
    lab = _started(open_course(quota={"snapshots_per_lab": 0}))
    client.force_login(lab.student)
    response = client.post(_lab_url(lab, "labs:lab-snapshot-create"), {"name": "one"}, follow=True)
    assert _messages(response) == [
        "No snapshot was taken. This lab cannot keep another snapshot; delete one first: "
        "none are allowed in this course (you have 0)."
    ]
    client.post(_lab_url(lab, "labs:lab-power"), {"action": "off"})
    running = lab.operations.get(kind="power")
    response = client.post(_lab_url(lab, "labs:lab-reset"), {"confirmed": "on"}, follow=True)
    assert _messages(response)[-1] == (
        f"Not reset. {lab.name} is busy: power #{running.pk} is queued. Wait for it to finish."
    )
    assert "Busy: power is queued" in response.content.decode()


@pytest.mark.django_db
def test_revert_reset_clone_power_and_delete_start_their_operations(client, enqueued):
    lab = _started(open_course(quota={"labs_per_student": 2}))
    snapshot = LabSnapshot.objects.create(lab=lab, name="cluster built", parent=lab.current_snapshot)
    vm = lab.vms.first()
    client.force_login(lab.student)

    def click(url, data=None, kind=None):
        response = client.post(url, data or {}, follow=True)
        assert response.redirect_chain[-1][0] == _lab_url(lab)
        operation = Operation.objects.filter(kind=kind).latest("pk")
        operation.state = Operation.State.SUCCEEDED  # done, so the next button is free
        operation.save()
        return _messages(response)[0], operation

    said, operation = click(_lab_url(lab, "labs:lab-revert", snapshot.pk), kind="revert")
    assert (said, operation.params) == (
        f"Reverting every VM of {lab.name} to 'cluster built'.",
        {"snapshot": snapshot.pk},
    )
    said, operation = click(_lab_url(lab, "labs:lab-reset"), {"confirmed": "on"}, kind="reset")
    assert said == f"Resetting {lab.name} to how it was handed out."
    said, operation = click(_lab_url(lab, "labs:lab-power"), {"action": "off"}, kind="power")
    assert (said, operation.params) == (f"Shutting down every VM of {lab.name}.", {"action": "off", "vm": None})
    said, operation = click(
        _lab_url(lab, "labs:lab-vm-power", vm.pk), {"action": "reset", "confirmed": "on"}, kind="power"
    )
    assert (said, operation.params) == (f"Resetting {vm.role}.", {"action": "reset", "vm": vm.pk})
    said, operation = click(_lab_url(lab, "labs:lab-snapshot-delete", snapshot.pk), kind="delete_snapshot")
    assert operation.params == {"snapshot": snapshot.pk}
    said, operation = click(_lab_url(lab, "labs:lab-clone"), kind="clone")
    assert operation.lab.source_lab == lab and "Copying" in said
    page = client.get(_lab_url(lab)).content.decode()
    assert _lab_url(operation.lab) in page and "copy of lab 1" in page
    said, operation = click(_lab_url(lab, "labs:lab-delete"), {"confirmed": "on"}, kind="delete")
    assert said.startswith(f"Deleting {lab.name}")


@pytest.mark.django_db
def test_power_with_an_unknown_action_and_deleting_the_baseline_are_refused_in_words(client, enqueued):
    lab = _started(open_course())
    client.force_login(lab.student)
    response = client.post(_lab_url(lab, "labs:lab-power"), {"action": "explode"}, follow=True)
    assert _messages(response) == ["Choose power on, off or reset."]
    response = client.post(_lab_url(lab, "labs:lab-snapshot-delete", lab.current_snapshot_id), follow=True)
    assert _messages(response) == [
        "The snapshot was not deleted. The baseline snapshot is what Reset returns to; it cannot be deleted."
    ]
    assert not Operation.objects.exclude(kind="provision").exists()


@pytest.mark.django_db
def test_a_clone_over_the_labs_quota_is_refused_in_words(client, enqueued):
    lab = _started(open_course(quota={"labs_per_student": 1}))
    client.force_login(lab.student)
    response = client.post(_lab_url(lab, "labs:lab-clone"), follow=True)
    assert _messages(response) == [
        "Not cloned. You cannot have another lab in this course: the limit is 1 and 1 are in use."
    ]


@pytest.mark.django_db
def test_the_console_page_is_for_who_may_use_it(client, enqueued):
    course = open_course(students=2)
    lab = _started(course)
    LabVM.objects.filter(lab=lab, role="router").update(power_state="poweredOn")
    LabVM.objects.filter(lab=lab, role="esxi-01").update(power_state="poweredOff")
    router, esxi = lab.vms.get(role="router"), lab.vms.get(role="esxi-01")
    url = _lab_url(lab, "labs:lab-vm-console", router.pk)
    client.force_login(lab.student)
    page = client.get(_lab_url(lab)).content.decode()
    assert url in page and f"{url}?mode=observe" not in page  # Console for the running VM, no Observe
    console_page = client.get(url).content.decode()
    assert f'data-open-url="/api/v1/labs/{lab.pk}/vms/{router.pk}/console/"' in console_page
    assert 'data-mode="control"' in console_page and "js/console.js" in console_page
    off_page = client.get(_lab_url(lab, "labs:lab-vm-console", esxi.pk)).content.decode()
    assert "esxi-01 is powered off." in off_page and "data-console-off hidden" not in off_page
    assert client.get(f"{url}?mode=observe").status_code == 403

    client.force_login(course.instructors.get())
    observe = client.get(f"{url}?mode=observe").content.decode()
    assert 'data-mode="observe"' in observe and "Take control" in observe
    client.force_login(_student(course, 1))
    assert client.get(url).status_code == 404


@pytest.mark.django_db
def test_a_lab_in_error_shows_the_reason(client, enqueued):
    lab = _started(open_course())
    Lab.objects.filter(pk=lab.pk).update(state=Lab.State.ERROR, error="router disappeared from vCenter.")
    client.force_login(lab.student)
    page = client.get(_lab_url(lab)).content.decode()
    assert 'data-field="error" role="alert">router disappeared from vCenter.<' in page


@pytest.mark.django_db
def test_an_operation_waiting_for_vcenter_capacity_says_so(client, enqueued):
    course = open_course()
    student = _student(course)
    operation = services.lab_start(course=course, student=student, actor=student)
    step = "Waiting for vCenter capacity: 3 clone(s) ahead (at most 8 at once on vCenter 1)"
    Operation.objects.filter(pk=operation.pk).update(state="running", progress=8, step=step)
    client.force_login(student)
    page = client.get(_lab_url(operation.lab)).content.decode()
    assert 'class="operation-now waiting"' in page
    assert step in page and "nothing is needed from you" in page
    client.force_login(course.instructors.get())
    table = client.get(reverse("labs:class-labs", args=[course.pk])).content.decode()
    assert 'class="operation-mini waiting"' in table and "3 clone(s) ahead" in table


@pytest.mark.django_db
def test_a_classmate_gets_404_for_my_lab_page_and_every_action(client, enqueued):
    course = open_course(students=2)
    lab = _started(course, 0)
    snapshot, vm = lab.current_snapshot, lab.vms.first()
    client.force_login(_student(course, 1))
    assert client.get(_lab_url(lab)).status_code == 404
    for url in (
        _lab_url(lab, "labs:lab-snapshot-create"),
        _lab_url(lab, "labs:lab-revert", snapshot.pk),
        _lab_url(lab, "labs:lab-snapshot-delete", snapshot.pk),
        _lab_url(lab, "labs:lab-reset"),
        _lab_url(lab, "labs:lab-clone"),
        _lab_url(lab, "labs:lab-power"),
        _lab_url(lab, "labs:lab-delete"),
        _lab_url(lab, "labs:lab-vm-power", vm.pk),
    ):
        assert client.post(url, {"action": "off", "name": "x"}).status_code == 404, url
    assert client.get(_lab_url(lab, "labs:lab-vm-console", vm.pk)).status_code == 404
    assert client.get(reverse("labs:class-labs", args=[course.pk])).status_code == 403
    assert client.post(reverse("labs:class-provision", args=[course.pk])).status_code == 403
    assert (
        client.post(reverse("labs:class-action", args=[course.pk]), {"action": "delete", "lab": lab.pk}).status_code
        == 403
    )
    assert Operation.objects.exclude(kind="provision").count() == 0


@pytest.mark.django_db
def test_an_instructor_of_another_course_sees_nothing(client, enqueued):
    course = open_course()
    lab = _started(course)
    client.force_login(open_course().instructors.get())
    assert client.get(_lab_url(lab)).status_code == 404
    assert client.post(_lab_url(lab, "labs:lab-reset")).status_code == 404
    assert client.get(reverse("labs:class-labs", args=[course.pk])).status_code == 404
    assert client.post(reverse("labs:class-provision", args=[course.pk])).status_code == 404
    student = _student(course)
    assert client.post(reverse("labs:lab-start", args=[course.pk])).status_code == 404
    assert not Lab.objects.filter(course=course).exclude(student=student).exists()


@pytest.mark.django_db
def test_the_course_instructor_sees_and_acts_on_a_students_lab(client, enqueued):
    course = open_course()
    lab = _started(course)
    client.force_login(course.instructors.get())
    page = client.get(_lab_url(lab)).content.decode()
    assert f"{lab.student.username}'s usage" in page
    assert reverse("labs:class-labs", args=[course.pk]) in page
    client.post(_lab_url(lab, "labs:lab-power"), {"action": "off"})
    assert lab.operations.get(kind="power").actor == course.instructors.get()


@pytest.mark.django_db
def test_the_class_table_lists_every_student_their_labs_and_what_runs(client, enqueued):
    course = open_course(students=3, quota={"running_labs": 10})
    ready = _started(course, 0)
    busy_student = _student(course, 1)
    busy = services.lab_start(course=course, student=busy_student, actor=busy_student)
    Operation.objects.filter(pk=busy.pk).update(state="running", progress=40, step="Cloning 2 VMs")
    LabVM.objects.filter(lab=ready).exclude(pk=ready.vms.first().pk).update(power_state="poweredOff")
    Lab.objects.filter(pk=ready.pk).update(hours_used=2.25)
    instructor = course.instructors.get()
    client.force_login(instructor)

    detail = client.get(reverse("courses:course-detail", args=[course.pk])).content.decode()
    assert reverse("labs:class-labs", args=[course.pk]) in detail
    assert "2 labs · 1 running · 1 busy" in detail
    home = client.get(reverse("home")).content.decode()
    assert f"Class labs of {course.code}" in home

    page = client.get(reverse("labs:class-labs", args=[course.pk])).content.decode()
    assert f'<tr data-lab-id="{ready.pk}" data-state="ready">' in page
    assert f'<tr data-lab-id="{busy.lab_id}" data-state="provisioning">' in page
    row = page[page.index(f'<tr data-lab-id="{ready.pk}"') :]
    row = row[: row.index("</tr>")]
    assert 'data-state="ready"' in row and '<span data-field="vms_on">1/2</span>' in row
    assert '<span data-field="hours_used">2.2' in row or '<span data-field="hours_used">2.3' in row
    row = page[page.index(f'<tr data-lab-id="{busy.lab_id}"') :]
    row = row[: row.index("</tr>")]
    assert f'data-operation-id="{busy.pk}"' in row and 'value="40"' in row and "Cloning 2 VMs" in row
    assert f'data-busy-disable data-lab="{busy.lab_id}" disabled' in row
    assert _student(course, 2).username in page and "No lab yet" in page
    assert 'data-bar="running_labs"' in page


@pytest.mark.django_db
def test_provision_the_class_says_who_started_and_who_was_skipped_and_why(client, enqueued):
    course = open_course(students=3, quota={"running_labs": 2})
    first = _started(course, 0)
    client.force_login(course.instructors.get())
    url = reverse("labs:class-provision", args=[course.pk])
    # Asked first (issue 10), naming who would get a lab; nothing starts until confirmed.
    for asked in (client.get(url), client.post(url)):
        page = asked.content.decode()
        assert "Start a lab for 2 students?" in page and first.student.username not in page
        assert _student(course, 1).username in page and _student(course, 2).username in page
    assert Lab.objects.count() == 1
    response = client.post(url, {"confirmed": "on"}, follow=True)
    said = _messages(response)
    second, third = _student(course, 1), _student(course, 2)
    assert said[0] == f"Started 1 lab: {second.username}."
    assert f"Skipped {first.student.username}: already has a lab." in said
    assert (
        f"Skipped {third.username}: No more labs can run at once in this class: the limit is 2 and 2 are in use."
        in said
    )


@pytest.mark.django_db
def test_provision_a_selection_starts_labs_only_for_the_selected(client, enqueued):
    course = open_course(students=3)
    chosen = _student(course, 1)
    client.force_login(course.instructors.get())
    response = client.post(
        reverse("labs:class-action", args=[course.pk]), {"action": "provision", "student": [chosen.pk]}, follow=True
    )
    assert _messages(response) == [f"Started 1 lab: {chosen.username}."]
    assert list(Lab.objects.values_list("student", flat=True)) == [chosen.pk]


@pytest.mark.django_db
def test_power_off_a_selection_collects_refusals_in_words(client, enqueued):
    course = open_course(students=3)
    labs = [_started(course, index) for index in range(3)]
    busy = services.lab_snapshot_create(lab=labs[1], actor=labs[1].student, name="mine")
    client.force_login(course.instructors.get())
    url = reverse("labs:class-action", args=[course.pk])
    asked = client.post(url, {"action": "power_off", "lab": [labs[0].pk, labs[1].pk]}).content.decode()
    assert "Power off 2 labs?" in asked and "like pulling the plug" in asked
    assert not Operation.objects.filter(kind="power").exists(), "asked first (issue 10)"
    chosen = {"action": "power_off", "lab": [labs[0].pk, labs[1].pk]}
    response = client.post(url, {**chosen, "confirmed": "on"}, follow=True)
    said = _messages(response)
    assert f"{labs[1].name} was not powered off. {labs[1].name} is busy: take snapshot #{busy.pk} is queued." in said[0]
    assert said[1] == f"Powering off 1 lab: {labs[0].name}."
    assert list(Operation.objects.filter(kind="power").values_list("lab", flat=True)) == [labs[0].pk]


@pytest.mark.django_db
def test_reset_and_delete_of_a_selection_ask_first(client, enqueued):
    course = open_course(students=2)
    labs = [_started(course, index) for index in range(2)]
    client.force_login(course.instructors.get())
    url = reverse("labs:class-action", args=[course.pk])
    response = client.post(url, {"action": "delete", "lab": [lab.pk for lab in labs]})
    page = response.content.decode()
    assert "Delete 2 labs?" in page and labs[0].name in page and labs[1].name in page
    assert not Operation.objects.filter(kind="delete").exists()
    response = client.post(url, {"action": "delete", "lab": [lab.pk for lab in labs], "confirmed": "on"}, follow=True)
    assert _messages(response) == [f"Deleting 2 labs: {labs[0].name}, {labs[1].name}."]
    assert Operation.objects.filter(kind="delete").count() == 2


@pytest.mark.django_db
def test_a_class_action_without_a_selection_says_what_to_do(client, enqueued):
    course = open_course()
    client.force_login(course.instructors.get())
    response = client.post(reverse("labs:class-action", args=[course.pk]), {"action": "reset"}, follow=True)
    assert _messages(response) == ["Select the labs or students first (the boxes at the start of each row)."]
    page = client.get(reverse("labs:class-labs", args=[course.pk]), {"select": "all"}).content.decode()
    assert page.count('form="class-actions" aria-label="Select') == 3
    assert page.count(" checked>") == 3


@pytest.mark.django_db
def test_reset_delete_and_a_vm_reset_ask_first_on_a_page_without_javascript(client, enqueued):
    """Issue 10: Reset and Delete asked only in the script's dialog; a browser without JavaScript
    reset or deleted at the click. Now the view asks on a page unless the POST says it was
    confirmed, and the buttons carry the field the script fills when its dialog is accepted."""
    course = open_course()
    lab = _started(course)
    vm = lab.vms.first()
    client.force_login(course.instructors.get())
    table = reverse("labs:class-labs", args=[course.pk])
    page = client.get(_lab_url(lab)).content.decode()
    reset_form = page[page.index(f'action="{_lab_url(lab, "labs:lab-reset")}"') :].split("</form>")[0]
    assert 'data-confirm="Reset ' in page and '<input type="hidden" name="confirmed" value="">' in reset_form

    for url, fields, question, button in (
        (_lab_url(lab, "labs:lab-reset"), {"next": table}, f"Reset {lab.name}?", "Reset the lab"),
        (_lab_url(lab, "labs:lab-delete"), {}, f"Delete {lab.name}?", "Delete the lab"),
        (_lab_url(lab, "labs:lab-vm-power", vm.pk), {"action": "reset"}, f"Reset {vm.role}?", f"Reset {vm.role}"),
    ):
        asked = client.post(url, fields)
        assert asked.status_code == 200, url
        html = asked.content.decode()
        assert f"<h1>{question}</h1>" in html
        assert f'<form method="post" action="{url}">' in html and f">{button}</button>" in html
        assert '<input type="hidden" name="confirmed" value="on">' in html
        back = fields.get("next", _lab_url(lab))
        assert f'<input type="hidden" name="next" value="{back}">' in html
        assert f'<a href="{back}" role="button" class="secondary outline">Cancel</a>' in html
        if "action" in fields:
            assert '<input type="hidden" name="action" value="reset">' in html
        assert not Operation.objects.filter(lab=lab).exclude(kind="provision").exists(), "nothing started"

    done = client.post(_lab_url(lab, "labs:lab-reset"), {"next": table, "confirmed": "on"})
    assert done.url == table
    assert Operation.objects.filter(lab=lab, kind="reset").count() == 1
    # Power off and on do not ask: they take nothing back.
    Operation.objects.filter(lab=lab).update(state=Operation.State.SUCCEEDED)
    assert client.post(_lab_url(lab, "labs:lab-power"), {"action": "off"}).status_code == 302


@pytest.mark.django_db
def test_row_actions_come_back_to_the_class_table(client, enqueued):
    course = open_course()
    lab = _started(course)
    client.force_login(course.instructors.get())
    table = reverse("labs:class-labs", args=[course.pk])
    response = client.post(_lab_url(lab, "labs:lab-power"), {"action": "off", "next": table})
    assert response.url == table
    response = client.post(_lab_url(lab, "labs:lab-reset"), {"next": "https://evil.example/", "confirmed": "on"})
    assert response.url == _lab_url(lab)


@pytest.mark.django_db
def test_a_student_course_page_shows_their_lab_or_the_start_button(client, enqueued):
    course = open_course()
    student = _student(course)
    client.force_login(student)
    page = client.get(reverse("courses:course-detail", args=[course.pk])).content.decode()
    assert "Start my lab" in page
    lab = _ready(services.lab_start(course=course, student=student, actor=student).lab)
    page = client.get(reverse("courses:course-detail", args=[course.pk])).content.decode()
    assert _lab_url(lab) in page and "Start my lab" not in page


@pytest.mark.django_db
def test_the_live_layer_fetches_parts_of_the_pages_that_changed(client, enqueued):
    course = open_course(students=2)
    lab = _started(course)
    LabSnapshot.objects.create(lab=lab, name="cluster built", parent=lab.current_snapshot)
    client.force_login(lab.student)
    page = client.get(_lab_url(lab)).content.decode()
    snapshots_url = reverse("labs:lab-fragment", args=[lab.pk, "snapshots"])
    history_url = reverse("labs:lab-fragment", args=[lab.pk, "history"])
    assert f'data-fragment="snapshots" data-fragment-url="{snapshots_url}"' in page
    assert f'data-fragment="history" data-fragment-url="{history_url}"' in page
    assert f'data-live="/ws/labs/{lab.pk}/"' in page
    tree = client.get(snapshots_url).content.decode()
    assert "cluster built" in tree and "<html" not in tree and "csrfmiddlewaretoken" in tree
    assert "Provision lab" in client.get(history_url).content.decode()
    assert client.get(reverse("labs:lab-fragment", args=[lab.pk, "nope"])).status_code == 404
    assert client.get(reverse("labs:class-table", args=[course.pk])).status_code == 403

    client.force_login(_student(course, 1))
    assert client.get(snapshots_url).status_code == 404
    client.force_login(course.instructors.get())
    table = client.get(reverse("labs:class-table", args=[course.pk])).content.decode()
    assert f'<tr data-lab-id="{lab.pk}"' in table and "<html" not in table
    page = client.get(reverse("labs:class-labs", args=[course.pk])).content.decode()
    assert f'data-live="/ws/courses/{course.pk}/"' in page


def _cancel_form(page: str) -> str:
    start = page.index("data-cancel-form")
    return page[page.rindex("<form", 0, start) : page.index("</form>", start)]


@pytest.mark.django_db
def test_the_student_cancels_a_queued_operation_from_the_lab_page(client, enqueued):
    lab = _started(open_course())
    client.force_login(lab.student)
    client.post(_lab_url(lab, "labs:lab-snapshot-create"), {"name": "cluster built"})
    operation = lab.operations.get(kind="snapshot")
    page = client.get(_lab_url(lab)).content.decode()
    form = _cancel_form(page)
    assert f'action="{_lab_url(lab, "labs:lab-cancel")}"' in form and " hidden" not in form
    assert f'name="operation" value="{operation.pk}"' in form
    assert f'data-operation-lab="{lab.pk}" data-actor="{lab.student.pk}"' in page

    response = client.post(_lab_url(lab, "labs:lab-cancel"), {"operation": operation.pk}, follow=True)
    assert response.redirect_chain[-1][0] == _lab_url(lab)
    assert _messages(response) == ["Cancelled take snapshot: it had not started."]
    operation.refresh_from_db()
    assert operation.state == Operation.State.CANCELLED
    assert f'data-operation-for-lab="{lab.pk}" hidden' in response.content.decode()
    assert " disabled" not in response.content.decode()

    response = client.post(_lab_url(lab, "labs:lab-cancel"), {"operation": operation.pk}, follow=True)
    assert _messages(response) == ["Nothing to cancel: that operation already ended."]


@pytest.mark.django_db
def test_cancel_names_the_operation_the_page_showed_and_only_its_starter_or_an_admin_may(client, enqueued):
    course = open_course(students=2)
    lab = _started(course)
    operation = services.lab_reset(lab=lab, actor=lab.student)
    Operation.objects.filter(pk=operation.pk).update(state="running", progress=30, step="Reverting 2 VMs")

    client.force_login(lab.student)
    response = client.post(_lab_url(lab, "labs:lab-cancel"), {"operation": operation.pk + 1000}, follow=True)
    assert _messages(response) == ["Nothing to cancel: that operation already ended."]

    client.force_login(course.instructors.get())
    assert " hidden" in _cancel_form(client.get(_lab_url(lab)).content.decode())
    response = client.post(_lab_url(lab, "labs:lab-cancel"), {"operation": operation.pk}, follow=True)
    assert _messages(response) == [
        "Not cancelled. Only the person who started an operation, or an admin, can cancel it."
    ]
    client.force_login(_student(course, 1))
    assert client.post(_lab_url(lab, "labs:lab-cancel"), {"operation": operation.pk}).status_code == 404

    client.force_login(AdminFactory())
    assert " hidden" not in _cancel_form(client.get(_lab_url(lab)).content.decode())
    response = client.post(_lab_url(lab, "labs:lab-cancel"), {"operation": operation.pk}, follow=True)
    assert _messages(response) == ["Cancelling reset lab: it stops after its current step."]
    operation.refresh_from_db()
    assert operation.state == Operation.State.RUNNING and operation.cancel_requested
    page = client.get(_lab_url(lab)).content.decode()
    assert "data-cancel-requested" in page and "Cancel asked: it stops after its current step." in page
    assert " hidden" in _cancel_form(page)


@pytest.mark.django_db
def test_the_source_of_a_clone_shows_the_clone_running_for_the_live_layer_to_follow(client, enqueued):
    course = open_course(quota={"labs_per_student": 2})
    lab = _started(course)
    clone = services.lab_clone(lab=lab, actor=lab.student)
    client.force_login(lab.student)
    page = client.get(_lab_url(lab)).content.decode()
    assert (
        f'data-operation-for-lab="{lab.pk}" data-operation-id="{clone.pk}" data-state="queued" '
        f'data-operation-lab="{clone.lab_id}"'
    ) in page
    assert f"Busy: this lab is being copied into {clone.lab.name}." in page
    assert f'data-busy-disable data-lab="{lab.pk}" disabled' in page
    client.force_login(course.instructors.get())
    table = client.get(reverse("labs:class-table", args=[course.pk])).content.decode()
    row = table[table.index(f'<tr data-lab-id="{lab.pk}"') :]
    row = row[: row.index("</tr>")]
    assert f'data-operation-id="{clone.pk}"' in row and f'data-operation-lab="{clone.lab_id}"' in row
    assert f'data-busy-disable data-lab="{lab.pk}" disabled' in row


@pytest.mark.django_db
def test_the_pages_load_the_live_layer_and_say_who_looks(client, enqueued):
    course = open_course()
    lab = _started(course)
    client.force_login(lab.student)
    page = client.get(_lab_url(lab)).content.decode()
    assert "js/live.js" in page
    assert f'data-live="/ws/labs/{lab.pk}/" data-user="{lab.student.pk}">' in page
    assert "data-live-status" in page and "reload to" not in page.lower() and "Refresh" not in page
    assert f'data-while-actionable="{lab.pk}"' in page
    client.force_login(course.instructors.get())
    page = client.get(reverse("labs:class-labs", args=[course.pk])).content.decode()
    assert f'data-live="/ws/courses/{course.pk}/" data-user="{course.instructors.get().pk}"' in page
    assert '<span data-summary="busy">0 busy</span>' in page
    assert '<span data-summary="without_lab"> · 2 without a lab</span>' in page
    client.force_login(AdminFactory())
    assert "data-admin>" in client.get(_lab_url(lab)).content.decode()


@pytest.mark.django_db
def test_the_page_of_a_running_lab_operation_is_live_instead_of_offering_refresh(client, enqueued):
    lab = _started(open_course())
    client.force_login(lab.student)
    operation = services.lab_reset(lab=lab, actor=lab.student)
    page = client.get(reverse("labs:operation-detail", args=[operation.pk])).content.decode()
    assert f'data-operation-id="{operation.pk}" data-state="queued" data-live="/ws/labs/{lab.pk}/"' in page
    assert "data-live-status" in page and "Refresh" not in page and _lab_url(lab) in page
    Operation.objects.filter(pk=operation.pk).update(state=Operation.State.SUCCEEDED)
    page = client.get(reverse("labs:operation-detail", args=[operation.pk])).content.decode()
    assert "data-live=" not in page and "data-live-status" not in page


@pytest.mark.django_db
def test_the_lab_page_shows_the_lease_and_extends_it_once():
    from django.test import Client

    from labs import services as lab_services
    from labs.models import Lab
    from tests.factories import open_course

    course = open_course(students=1)
    course_services.quota_update(course=course, actor=AdminFactory(), lease_hours=2, lease_extensions=1)
    student = course.enrollments.get().student
    lab = lab_services.lab_start(course=course, student=student, actor=student).lab
    Operation.objects.filter(lab=lab).update(state=Operation.State.SUCCEEDED)
    Lab.objects.filter(pk=lab.pk).update(state=Lab.State.READY)
    lab.vms.update(power_state="poweredOn")
    lab_services.lab_power_changed(lab=lab)
    client = Client()
    client.force_login(student)
    page = client.get(reverse("labs:lab-detail", args=[lab.pk]))
    assert b"Extend the lease" in page.content
    first = client.post(reverse("labs:lab-extend", args=[lab.pk]), follow=True)
    assert b"now runs until" in first.content
    second = client.post(reverse("labs:lab-extend", args=[lab.pk]), follow=True)
    assert b"The lease was not extended" in second.content and b"extended 1 time" in second.content


@pytest.mark.django_db
def test_an_admin_reconciles_from_the_home_page_and_reads_the_outcome(client, monkeypatch):
    monkeypatch.setattr(services.dispatch, "send_operation", lambda *args, **kwargs: None)
    endpoint = EndpointFactory(name="Campus")
    admin = AdminFactory()
    client.force_login(admin)
    assert reverse("labs:endpoint-reconcile", args=[endpoint.pk]).encode() in client.get(reverse("home")).content
    response = client.post(reverse("labs:endpoint-reconcile", args=[endpoint.pk]), follow=True)
    assert b"Comparing Campus" in response.content
    operation = Operation.objects.get(kind=Operation.Kind.RECONCILE)
    Operation.objects.filter(pk=operation.pk).update(
        state=Operation.State.SUCCEEDED,
        result={"orphans_seen": [{"kind": "vm", "name": "stray-vm", "reason": "no lab has id 9"}], "removed": [],
                "not_removed": [], "broken_labs": ["vsp8-ana-1"], "grace_minutes": 30},
    )  # fmt: skip
    page = client.get(reverse("labs:operation-detail", args=[operation.pk]))
    assert b"stray-vm" in page.content and b"no lab has id 9" in page.content and b"vsp8-ana-1" in page.content
    client.force_login(StudentFactory())
    refused = client.post(reverse("labs:endpoint-reconcile", args=[endpoint.pk]), follow=True)
    assert b"Only admins can reconcile" in refused.content


@pytest.mark.django_db
def test_after_the_course_the_lab_page_says_so_and_offers_no_power_on(client, enqueued):
    course = open_course()
    lab = _started(course)
    power_on = '<input type="hidden" name="action" value="on">'
    client.force_login(lab.student)
    assert power_on in client.get(_lab_url(lab)).content.decode()

    course.ends_on = timezone.localdate() - datetime.timedelta(days=1)
    course.save()
    page = client.get(_lab_url(lab)).content.decode()
    assert f"{course.title} has ended: your lab stays powered off" in page
    assert power_on not in page
    assert "Power off" in page  # what leaves it off is still offered
    assert _lab_url(lab, "labs:lab-reset") not in page

    client.force_login(course.instructors.get())  # staff may still power it on
    page = client.get(_lab_url(lab)).content.decode()
    assert power_on in page and "has ended" not in page


@pytest.mark.django_db
def test_a_student_removed_from_the_course_reads_their_lab_page_without_its_buttons(client, enqueued):
    course = open_course(students=1)
    lab = _started(course)
    client.force_login(lab.student)
    assert 'id="lab-actions"' in client.get(_lab_url(lab)).content.decode()
    assert f'data-read-only-note="{lab.pk}" hidden' in client.get(_lab_url(lab)).content.decode()

    courses_services.enrollment_remove(enrollment=course.enrollments.get(), actor=course.instructors.get())
    page = client.get(_lab_url(lab)).content.decode()
    assert 'id="lab-actions"' not in page and 'id="take-snapshot"' not in page
    assert f'data-read-only-note="{lab.pk}">You are no longer enrolled in {course.title}' in page
    # The course's instructor still gets every button.
    client.force_login(course.instructors.get())
    assert 'id="lab-actions"' in client.get(_lab_url(lab)).content.decode()


@pytest.mark.django_db
def test_the_lab_page_shows_the_largest_manual_without_rendering_it(client, enqueued, monkeypatch):
    """Finding 4: the manual is rendered once, when saved; a page view only copies stored HTML.
    (bench/markdown_worst_case.py times the page with the largest and slowest manual allowed.)"""
    from core import markdown
    from courses.models import MANUAL_MAX_CHARACTERS

    largest = ("> - *[step](https://docs.example.edu)* `x`\n" * MANUAL_MAX_CHARACTERS)[:MANUAL_MAX_CHARACTERS]
    course = open_course(manual=largest)
    lab = _started(course)

    def no_rendering_here():
        raise AssertionError("a page view rendered a manual")

    monkeypatch.setattr(markdown, "_parser", no_rendering_here)  # every rendering goes through it
    client.force_login(lab.student)
    page = client.get(_lab_url(lab))
    assert page.status_code == 200
    assert page.content.decode().count('href="https://docs.example.edu"') == largest.count("](https://")


@pytest.mark.django_db
def test_a_deleted_lab_shows_what_its_vms_were_not_a_live_state(client, enqueued):
    """Issue 10: a deleted lab still listed its VMs as "Off · OK"."""
    course = open_course()
    lab = _started(course)
    Lab.objects.filter(pk=lab.pk).update(state=Lab.State.DELETED)
    lab.vms.update(power_state="poweredOff", overall_status="green")
    client.force_login(lab.student)
    page = client.get(_lab_url(lab)).content.decode()
    assert "The VMs it had" in page and page.count("Removed from vCenter") == lab.vms.count()
    assert 'data-field="power_state"' not in page and "data-vm-id" not in page


@pytest.mark.django_db
def test_clone_says_on_the_button_when_the_student_is_at_their_lab_limit(client, enqueued):
    """Issue 10: Clone stayed enabled at the limit and was refused only after the click."""
    course = open_course(quota={"labs_per_student": 1})
    lab = _started(course)
    client.force_login(lab.student)
    page = client.get(_lab_url(lab)).content.decode()
    assert "Clone (at your limit of 1 lab)" in page and "data-clone-at-limit" in page
    assert f'action="{_lab_url(lab, "labs:lab-clone")}"' not in page
    courses_services.quota_update(course=course, actor=AdminFactory(), labs_per_student=2)
    page = client.get(_lab_url(lab)).content.decode()
    assert f'action="{_lab_url(lab, "labs:lab-clone")}"' in page and "data-clone-at-limit" not in page


@pytest.mark.django_db
def test_the_state_and_the_main_buttons_say_what_can_be_done_next(client, enqueued):
    """Issue 10: "Ready" meant all off, some on and all on alike, and "Power on" stayed the main
    button with every VM on. The CSS hides the main button the data-lab-power value rules out."""
    course = open_course()
    lab = _started(course)
    Lab.objects.filter(pk=lab.pk).update(state=Lab.State.READY)
    client.force_login(lab.student)
    cases = [
        ("poweredOn", "Running", "all_on"),
        ("poweredOff", "Ready · powered off", "all_off"),
    ]
    for power, words, summary in cases:
        lab.vms.update(power_state=power)
        page = client.get(_lab_url(lab)).content.decode()
        assert f'<span class="lab-state" data-field="state">{words}</span>' in page
        assert f'data-lab-power="{summary}" data-lab-power-for="{lab.pk}"' in page
    first = lab.vms.order_by("pk").first()
    lab.vms.exclude(pk=first.pk).update(power_state="poweredOn")
    page = client.get(_lab_url(lab)).content.decode()
    assert "Partly running" in page and 'data-lab-power="some_on"' in page
    assert '<span class="unless-all-on">' in page and '<span class="unless-all-off">' in page


@pytest.mark.django_db
def test_the_class_consoles_are_for_the_courses_staff_and_show_one_vm_per_lab(client, enqueued):
    course = open_course(students=2)
    first, second = _started(course, 0), _started(course, 1)
    LabVM.objects.filter(lab=second, role="router").update(power_state="poweredOff")
    url = reverse("labs:class-consoles", args=[course.pk])
    client.force_login(course.instructors.get())
    page = client.get(f"{url}?role=router").content.decode()
    on, off = first.vms.get(role="router"), second.vms.get(role="router")
    assert f'data-open-url="/api/v1/labs/{first.pk}/vms/{on.pk}/console/"' in page
    assert f"/api/v1/labs/{second.pk}/vms/{off.pk}/console/" not in page and "Powered off" in page
    assert page.count("data-tile") - page.count("data-tile-") == 2
    assert '<option value="esxi-01">' in page and '<option value="router" selected>' in page
    table = client.get(reverse("labs:class-labs", args=[course.pk])).content.decode()
    first_on = first.vms.filter(power_state="poweredOn").order_by("boot_order", "role").first()
    assert f'href="/labs/{first.pk}/vms/{first_on.pk}/console/?mode=observe"' in table
    client.force_login(first.student)
    assert client.get(url).status_code == 403
    client.force_login(open_course().instructors.get())
    assert client.get(url).status_code == 404


@pytest.mark.django_db
def test_the_class_consoles_leave_out_a_running_warm_pool_lab_and_do_not_fail_on_it(client, enqueued):
    """A pool lab is nobody's: it was a tile whose name lookup (``lab.student.username``) failed,
    a 500 for the whole page while the pool's labs run before a session."""
    course = open_course(students=1)
    own = _started(course, 0)
    pool = lab_row(course, None, 0, running_since=timezone.now())
    pool_vm = LabVM.objects.create(lab=pool, role="router", name="pool-router", moref="vm-990", power_state="poweredOn")
    client.force_login(course.instructors.get())
    response = client.get(reverse("labs:class-consoles", args=[course.pk]) + "?role=router")
    assert response.status_code == 200
    page = response.content.decode()
    assert f"/labs/{pool.pk}/vms/{pool_vm.pk}/console/" not in page
    assert f"/labs/{own.pk}/vms/{own.vms.get(role='router').pk}/console/" in page
    console = reverse("labs:lab-vm-console", args=[pool.pk, pool_vm.pk])
    assert client.get(console).status_code == 404, "a pool lab's console is no one's to observe"


@pytest.mark.django_db
def test_a_quota_refusal_in_a_class_action_is_said_and_recorded_once(client, enqueued):
    course = open_course(students=2)
    off, running = _started(course, 0), _started(course, 1)
    courses_services.quota_update(course=course, actor=AdminFactory(), running_labs=1)
    Lab.objects.filter(pk=off.pk).update(state=Lab.State.READY, running_since=None)
    Lab.objects.filter(pk=running.pk).update(state=Lab.State.READY, running_since=timezone.now())
    Operation.objects.update(state=Operation.State.SUCCEEDED)
    instructor = course.instructors.get()
    client.force_login(instructor)
    url = reverse("labs:class-action", args=[course.pk])
    response = client.post(url, {"action": "reset", "lab": [off.pk], "confirmed": "on"}, follow=True)
    words = "No more labs can run at once in this class: the limit is 1 and 1 are in use."
    assert _messages(response) == [f"{off.name} was not reset. {words}"]
    [entry] = AuditEntry.objects.filter(category="refusal")
    assert (entry.action, entry.actor, entry.target_id) == ("lab.bulk.reset", instructor, str(off.pk))
    assert entry.detail == words


def _busy_classes(*sizes: int):
    """Classes whose every lab is ready, has a snapshot and a power operation queued: the shape
    that made per-row queries before (template tags asking per lab). The operations come last:
    making a lab ready ends the operations queued before it."""
    from labs.models import LabSnapshot
    from tests.factories import open_course
    from tests.integration.labs.api.conftest import ready_lab

    classes = []
    for size in sizes:
        course = open_course(students=size)
        classes.append((course, [ready_lab(course, index) for index in range(size)]))
    for _, labs in classes:
        for lab in labs:
            LabSnapshot.objects.create(lab=lab, name="before the upgrade")
            services.lab_power(lab=lab, actor=lab.student, action="off")
    return classes


@pytest.mark.django_db
def test_the_class_and_lab_pages_cost_the_same_queries_for_1_or_30_labs(
    client, enqueued, django_assert_max_num_queries
):
    """No template tag or row reads the database per lab: a class of 30 costs what a class of one does."""
    (small, small_labs), (large, large_labs) = _busy_classes(1, 30)
    assert all(lab.operations.filter(state=Operation.State.QUEUED).exists() for lab in small_labs + large_labs)

    def queries(user, url: str) -> int:
        client.force_login(user)
        assert client.get(url).status_code == 200  # warm: sessions, caches of the first request
        with django_assert_max_num_queries(60) as counted:
            assert client.get(url).status_code == 200
        return len(counted.captured_queries)

    def class_page(course) -> str:
        return reverse("labs:class-labs", args=[course.pk])

    assert queries(small.instructors.get(), class_page(small)) == queries(large.instructors.get(), class_page(large))
    lab_page = reverse("labs:lab-detail", args=[small_labs[0].pk])
    other_lab_page = reverse("labs:lab-detail", args=[large_labs[0].pk])
    assert queries(small_labs[0].student, lab_page) == queries(large_labs[0].student, other_lab_page)
    assert queries(small.instructors.get(), lab_page) == queries(large.instructors.get(), other_lab_page)


def test_a_failed_build_on_the_lab_and_operation_pages_spares_its_student_vcenters_details(client, db):
    """The lab page, its history and the operation page say what happened to the student, and
    name neither vCenter's host nor the endpoint; the course's instructor reads the detail."""
    from tests.support.failures import VCENTER_HOST, fail_build

    course = open_course(students=1)
    student = course.enrollments.get().student
    lab = services.lab_start(course=course, student=student, actor=student).lab
    operation = fail_build(lab)

    client.force_login(student)
    for url in (f"/labs/{lab.pk}/", f"/labs/{lab.pk}/fragments/history/", f"/labs/operations/{operation.pk}/"):
        page = client.get(url).content.decode()
        assert VCENTER_HOST not in page, url
        assert lab.endpoint.name not in page, url
        assert "the lab servers could not be reached" in page, url

    client.force_login(course.instructors.get())
    for url in (f"/labs/{lab.pk}/", f"/labs/operations/{operation.pk}/"):
        assert f"{VCENTER_HOST}:443" in client.get(url).content.decode(), url
