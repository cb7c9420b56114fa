"""labs/services.py: operations are recorded and enqueued on commit, with permission checks."""

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction

from labs import services
from labs.models import Operation
from tests.factories import AdminFactory, EndpointFactory, StudentFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def enqueued(monkeypatch):
    sent: list[tuple[int, str]] = []
    monkeypatch.setattr(services, "_enqueue", lambda operation_id, task_id: sent.append((operation_id, task_id)))
    return sent


def test_start_enqueues_only_after_commit(enqueued, django_capture_on_commit_callbacks):
    admin, endpoint = AdminFactory(), EndpointFactory()
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        operation = services.endpoint_check_start(endpoint=endpoint, actor=admin)
        assert enqueued == []
    assert len(callbacks) == 1
    assert enqueued == [(operation.pk, operation.celery_task_id)]
    assert operation.state == Operation.State.QUEUED
    assert operation.actor == admin


def test_a_rolled_back_request_leaves_no_row_and_no_message(enqueued, django_capture_on_commit_callbacks):
    admin, endpoint = AdminFactory(), EndpointFactory()
    with django_capture_on_commit_callbacks(execute=True), pytest.raises(RuntimeError), transaction.atomic():
        services.endpoint_check_start(endpoint=endpoint, actor=admin)
        raise RuntimeError("the request failed later")
    assert enqueued == []
    assert not Operation.objects.exists()


def test_students_cannot_check_endpoints(enqueued):
    with pytest.raises(PermissionDenied, match="Only admins"):
        services.endpoint_check_start(endpoint=EndpointFactory(), actor=StudentFactory())
    assert not Operation.objects.exists()


def test_cancel_a_queued_operation_ends_it_at_once(enqueued):
    admin = AdminFactory()
    operation = services.endpoint_check_start(endpoint=EndpointFactory(), actor=admin)
    cancelled = services.operation_cancel(operation=operation, actor=admin)
    assert cancelled.state == Operation.State.CANCELLED
    assert cancelled.finished_at is not None


def test_cancel_a_running_operation_asks_it_to_stop(enqueued):
    admin = AdminFactory()
    operation = services.endpoint_check_start(endpoint=EndpointFactory(), actor=admin)
    Operation.objects.filter(pk=operation.pk).update(state=Operation.State.RUNNING)
    cancelled = services.operation_cancel(operation=operation, actor=admin)
    assert cancelled.state == Operation.State.RUNNING
    assert cancelled.cancel_requested


def test_only_the_actor_or_an_admin_may_cancel(enqueued):
    operation = services.endpoint_check_start(endpoint=EndpointFactory(), actor=AdminFactory())
    with pytest.raises(PermissionDenied):
        services.operation_cancel(operation=operation, actor=StudentFactory())


def test_a_finished_operation_cannot_be_cancelled(enqueued):
    admin = AdminFactory()
    operation = services.endpoint_check_start(endpoint=EndpointFactory(), actor=admin)
    Operation.objects.filter(pk=operation.pk).update(state=Operation.State.SUCCEEDED)
    with pytest.raises(ValidationError, match="already ended"):
        services.operation_cancel(operation=operation, actor=admin)
