"""The endpoint_check kind against the simulator, run in-process by the runner."""

import pytest

from labs.jobs import execute
from labs.models import Operation
from portal.simulator import free_port
from tests.factories import AdminFactory, EndpointFactory, simulator_endpoint

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.integration]


def _run(endpoint) -> Operation:
    operation = Operation.objects.create(kind=Operation.Kind.ENDPOINT_CHECK, endpoint=endpoint, actor=AdminFactory())
    execute(operation.pk)
    operation.refresh_from_db()
    return operation


def test_a_good_endpoint_passes_every_check(vcsim):
    operation = _run(simulator_endpoint(vcsim))
    assert operation.state == Operation.State.SUCCEEDED, operation.error
    checks = {check["name"]: check for check in operation.result["checks"]}
    assert {"datacenter", "compute", "datastore", "switch"} <= checks.keys()
    assert all(check["ok"] for check in checks.values())
    assert "vCenter" in operation.result["vcenter"]["name"]


def test_a_wrong_password_fails_in_words(vcsim):
    operation = _run(simulator_endpoint(vcsim, password="not-the-password"))
    assert operation.state == Operation.State.FAILED
    assert "password" in operation.error.lower() or "log in" in operation.error.lower()
    assert "Traceback" not in operation.error and "vim.fault" not in operation.error


def test_a_missing_datacenter_and_datastore_are_named(vcsim):
    operation = _run(simulator_endpoint(vcsim, datacenter="DC9"))
    assert operation.state == Operation.State.FAILED
    assert "DC9" in operation.error
    assert "not checked" not in operation.error


def test_an_address_that_does_not_answer_fails_in_words():
    endpoint = EndpointFactory(url=f"http://127.0.0.1:{free_port()}/sdk")
    operation = _run(endpoint)
    assert operation.state == Operation.State.FAILED
    assert "127.0.0.1" in operation.error
