"""labs/tasks.py with a real Celery worker process on Redis and the simulator."""

import pytest

from labs import services
from labs.models import Operation
from tests.factories import AdminFactory, simulator_endpoint
from tests.support.processes import wait_for

pytestmark = pytest.mark.integration


def _finished(operation):
    def check():
        operation.refresh_from_db()
        return operation.is_final

    return check


def test_a_worker_runs_an_endpoint_check_to_success(celery_worker, vcsim):
    operation = services.endpoint_check_start(endpoint=simulator_endpoint(vcsim), actor=AdminFactory())
    wait_for(_finished(operation), timeout=60, message="the operation to finish")

    assert operation.state == Operation.State.SUCCEEDED, operation.error
    assert operation.progress == 100
    assert operation.heartbeat_at is not None and operation.started_at is not None
    assert all(check["ok"] for check in operation.result["checks"])
    log = "\n".join(celery_worker.output)
    assert operation.celery_task_id in log, "the worker ran the task id stored on the row"


def test_a_worker_reports_a_wrong_password_in_words(celery_worker, vcsim):
    endpoint = simulator_endpoint(vcsim, password="wrong")
    operation = services.endpoint_check_start(endpoint=endpoint, actor=AdminFactory())
    wait_for(_finished(operation), timeout=60, message="the operation to finish")
    assert operation.state == Operation.State.FAILED
    assert "rejected the user name or password" in operation.error


@pytest.mark.django_db
def test_builds_and_quick_operations_go_to_queues_of_their_own(monkeypatch, settings):
    from labs import tasks
    from tests.factories import EndpointFactory

    settings.CELERY_TASK_DEFAULT_QUEUE = "nestlab"
    sent = []
    monkeypatch.setattr(tasks.run_operation, "apply_async", lambda **kwargs: sent.append(kwargs["queue"]))
    endpoint, admin = EndpointFactory(), AdminFactory()
    for kind in (Operation.Kind.PROVISION, Operation.Kind.POWER, Operation.Kind.PUBLISH, Operation.Kind.SNAPSHOT):
        operation = Operation.objects.create(kind=kind, endpoint=endpoint, actor=admin)
        tasks.send_operation(operation.pk)
    assert sent == ["nestlab-build", "nestlab", "nestlab-build", "nestlab"]


@pytest.mark.django_db
def test_a_reset_that_reverts_to_the_baseline_is_quick_and_one_that_rebuilds_goes_to_the_builders(
    monkeypatch, settings
):
    from labs import tasks
    from labs.models import Lab, LabSnapshot
    from tests.factories import open_course
    from tests.integration.labs.api.conftest import ready_lab

    settings.CELERY_TASK_DEFAULT_QUEUE = "nestlab"
    monkeypatch.setattr(services, "_enqueue", lambda *args: None)
    sent = []
    monkeypatch.setattr(tasks.run_operation, "apply_async", lambda **kwargs: sent.append(kwargs["queue"]))
    course = open_course(students=3)
    with_baseline, without_baseline, broken = ready_lab(course, 0), ready_lab(course, 1), ready_lab(course, 2)
    for lab in (with_baseline, broken):
        LabSnapshot.objects.create(lab=lab, name="Baseline", is_baseline=True)
    Lab.objects.filter(pk=broken.pk).update(state=Lab.State.ERROR, error="esxi-02 disappeared from vCenter.")
    for lab in (with_baseline, without_baseline, broken):
        operation = Operation.objects.create(kind=Operation.Kind.RESET, endpoint=lab.endpoint, lab=lab)
        tasks.send_operation(operation.pk)
    assert sent == ["nestlab", "nestlab-build", "nestlab-build"]
