"""labs/audit.py: every operation in the audit log, accepted (with the row, from a page, the API or
the portal itself) and ended (by the runner: succeeded, failed in words, cancelled, abandoned)."""

from __future__ import annotations

import pytest
from django.db import transaction
from django.urls import reverse

from core.models import AuditEntry
from courses import services as course_services
from labs import audit, services
from labs.jobs import execute
from labs.models import Operation
from portal.simulator import free_port
from tests.factories import AdminFactory, EndpointFactory, open_course, simulator_endpoint
from tests.integration.labs.api.conftest import client_for, ready_lab

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def no_queue(monkeypatch):
    monkeypatch.setattr(services.dispatch, "send_operation", lambda *args, **kwargs: None)


def _operations(**filters) -> list[AuditEntry]:
    return list(AuditEntry.objects.filter(category="operation", **filters).order_by("id"))


def test_a_click_on_a_page_is_recorded_with_its_lab_and_operation(client):
    course = open_course()
    student = course.enrollments.order_by("student__username").first().student
    client.force_login(student)
    client.post(reverse("labs:lab-start", args=[course.pk]), REMOTE_ADDR="10.9.8.7")
    operation = Operation.objects.get()
    [entry] = _operations()
    assert (entry.action, entry.result, entry.actor, entry.source, entry.remote_addr) == (
        "lab.provision",
        "accepted",
        student,
        "page",
        "10.9.8.7",
    )
    assert (entry.target, entry.target_type, entry.target_id) == (
        f"lab {operation.lab.name} (#{operation.lab_id})",
        "lab",
        str(operation.lab_id),
    )
    assert entry.detail == f"Provision lab #{operation.pk} is queued."


def test_an_api_call_is_recorded_from_the_api_with_its_parameters():
    lab = ready_lab(open_course())
    AuditEntry.objects.all().delete()
    client_for(lab.student).post(f"/api/v1/labs/{lab.pk}/power/", {"action": "off"}, format="json")
    operation = Operation.objects.get(kind="power")
    [entry] = _operations()
    assert (entry.action, entry.source) == ("lab.power", "api")
    assert entry.detail == f"Power #{operation.pk} (action off) is queued."


def test_a_click_whose_transaction_rolls_back_leaves_no_entry():
    lab = ready_lab(open_course())
    AuditEntry.objects.all().delete()
    with pytest.raises(RuntimeError), transaction.atomic():
        services.lab_reset(lab=lab, actor=lab.student)
        raise RuntimeError("the request failed after the service")
    assert not Operation.objects.filter(kind="reset").exists()
    assert not _operations()


def test_an_action_goes_on_when_recording_it_fails(monkeypatch, caplog):
    lab = ready_lab(open_course())
    AuditEntry.objects.all().delete()

    def broken(operation):
        raise RuntimeError("naming the target failed")

    monkeypatch.setattr(audit, "_target", broken)
    operation = services.lab_reset(lab=lab, actor=lab.student)
    assert Operation.objects.filter(pk=operation.pk, state="queued").exists()
    assert "Could not record operation_accepted in the audit log" in caplog.text


@pytest.mark.django_db(transaction=True)
@pytest.mark.integration
def test_an_operation_that_succeeds_is_recorded_when_it_ends(vcsim):
    admin = AdminFactory()
    endpoint = simulator_endpoint(vcsim)
    operation = services.endpoint_check_start(endpoint=endpoint, actor=admin)
    execute(operation.pk)
    accepted, ended = _operations()
    assert (accepted.result, ended.result) == ("accepted", "succeeded")
    assert (ended.action, ended.actor, ended.source) == ("endpoint.check", admin, "worker")
    assert ended.target == f"vCenter {endpoint.name} (#{endpoint.pk})"
    assert ended.detail.startswith(f"Check vCenter connection #{operation.pk} succeeded in ")


@pytest.mark.django_db(transaction=True)
def test_an_operation_that_fails_is_recorded_with_the_error_in_words():
    admin = AdminFactory()
    endpoint = EndpointFactory(url=f"http://127.0.0.1:{free_port()}/sdk")
    operation = services.endpoint_check_start(endpoint=endpoint, actor=admin)
    execute(operation.pk)
    operation.refresh_from_db()
    ended = _operations()[-1]
    assert (ended.result, ended.actor) == ("failed", admin)
    assert ended.detail == f"Check vCenter connection #{operation.pk} failed: {operation.error}"
    assert "127.0.0.1" in ended.detail


@pytest.mark.django_db(transaction=True)
@pytest.mark.integration
def test_the_portals_own_operations_have_no_actor(vcsim):
    endpoint = simulator_endpoint(vcsim)
    [operation] = services.endpoints_reconcile_all()  # what Celery beat runs every 15 minutes
    execute(operation.pk)
    accepted, ended = _operations()
    assert (accepted.actor, accepted.actor_username, accepted.source) == (None, "", "system")
    assert (ended.actor, ended.result, ended.source) == (None, "succeeded", "worker")
    assert accepted.target_id == str(endpoint.pk) and accepted.action == "endpoint.reconcile"


@pytest.mark.django_db(transaction=True)
def test_an_operation_the_reaper_abandons_is_recorded_failed_with_the_reason():
    lab = ready_lab(open_course())
    operation = services.lab_power(lab=lab, actor=lab.student, action="off")
    execute(operation.pk, abandon_reason="The worker running this operation stopped 2 times.")
    ended = _operations(result="failed")[-1]
    assert ended.actor == lab.student
    assert (
        ended.detail == f"Power #{operation.pk} (action off) failed: The worker running this operation stopped 2 times."
    )


def test_cancelling_a_queued_operation_is_the_cancellers_entry():
    lab = ready_lab(open_course())
    operation = services.lab_power(lab=lab, actor=lab.student, action="off")
    admin = AdminFactory()
    services.operation_cancel(operation=operation, actor=admin)
    ended = _operations()[-1]
    assert (ended.result, ended.actor, ended.action) == ("cancelled", admin, "lab.power")
    assert ended.detail == (
        f"Power #{operation.pk} (action off) cancelled: Cancelled before it started. (by {admin.username})"
    )


@pytest.mark.django_db(transaction=True)
def test_cancelling_a_running_operation_is_asked_then_recorded_when_it_stops():
    lab = ready_lab(open_course())
    operation = services.lab_power(lab=lab, actor=lab.student, action="off")
    Operation.objects.filter(pk=operation.pk).update(state="running")
    services.operation_cancel(operation=operation, actor=lab.student)
    asked = _operations()[-1]
    assert (asked.action, asked.result, asked.actor) == ("operation.cancel", "accepted", lab.student)
    assert asked.detail == f"Asked Power #{operation.pk} (action off) to stop after its current step."


def test_a_student_refused_by_a_quota_while_the_class_is_provisioned_is_recorded():
    course = open_course(students=2)
    course_services.quota_update(course=course, actor=AdminFactory(), running_labs=1)
    instructor = course.instructors.get()
    result = services.course_provision(course=course, actor=instructor)
    assert len(result.started) == 1
    [skipped] = result.skipped
    [refusal] = AuditEntry.objects.filter(category="refusal")
    assert (refusal.actor, refusal.action, refusal.target_id) == (instructor, "lab.provision", str(course.pk))
    assert refusal.detail.startswith(f"{skipped}: No more labs can run at once in this class")
