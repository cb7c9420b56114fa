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
