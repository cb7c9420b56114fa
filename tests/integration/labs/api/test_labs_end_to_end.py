"""A student's lab through the API end to end: a real Celery worker builds it in a simulator.

The simulator is this module's own: labs are named after course, student and number, and the
demo seed leaves vsp8-demo-... labs behind, which the session's shared simulator must not see.
"""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from labs import services
from portal import demo, simulator
from tests.integration.labs.api.conftest import client_for
from tests.support.processes import wait_for

pytestmark = pytest.mark.integration

FINAL = {"succeeded", "failed", "cancelled"}


@pytest.fixture(scope="module")
def own_vcsim():
    server = simulator.start(args=["-demo"])
    yield server
    server.stop()


@pytest.fixture
def demo_course(celery_worker, own_vcsim, monkeypatch):
    """The demo class on this module's simulator. Seeding publishes in this process, so the
    worker must not get (and race for) that operation's message."""
    with monkeypatch.context() as patch:
        patch.setattr(services.dispatch, "send_operation", lambda *args, **kwargs: None)
        return demo.seed_demo(
            vcenter_url=own_vcsim.url, vcenter_user=own_vcsim.username, vcenter_password=own_vcsim.password
        )


def _succeeded(client: APIClient, response) -> dict:
    assert response.status_code == 202, response.json()
    operation_id = response.json()["id"]

    def finished():
        operation = client.get(f"/api/v1/operations/{operation_id}/").json()
        return operation if operation["state"] in FINAL else None

    operation = wait_for(finished, timeout=180, interval=0.25, message=f"operation {operation_id} to finish")
    assert operation["state"] == "succeeded", operation["error"]
    assert operation["progress"] == 100
    return operation


def test_a_student_starts_snapshots_reverts_and_deletes_their_lab(demo_course):
    student = demo_course.enrollments.get(student__username="student1").student
    client = client_for(student)

    started = _succeeded(client, client.post("/api/v1/labs/", {"course": demo_course.pk}, format="json"))
    url = f"/api/v1/labs/{started['lab']}/"
    lab = client.get(url).json()
    assert lab["state"] == "ready" and lab["running"] is True and lab["operation"] is None
    assert len(lab["vms"]) == 5
    assert {vm["power_state"] for vm in lab["vms"]} == {"poweredOn"}
    [baseline] = lab["snapshots"]
    assert baseline["is_baseline"] is True and lab["current_snapshot"] == baseline["id"]
    assert [network["name"] for network in lab["networks"]] == ["lab"]

    _succeeded(client, client.post(f"{url}snapshots/", {"name": "cluster built"}, format="json"))
    lab = client.get(url).json()
    [built] = lab["snapshots"][0]["children"]
    assert (built["name"], built["created_by"], lab["current_snapshot"]) == ("cluster built", "student1", built["id"])

    esxi = next(vm for vm in lab["vms"] if vm["role"] == "esxi-02")
    _succeeded(client, client.post(f"{url}power/", {"action": "off", "vm": esxi["id"]}, format="json"))
    powers = {vm["role"]: vm["power_state"] for vm in client.get(url).json()["vms"]}
    assert powers["esxi-02"] == "poweredOff" and powers["esxi-01"] == "poweredOn"

    _succeeded(client, client.post(f"{url}revert/", {"snapshot": built["id"]}, format="json"))
    lab = client.get(url).json()
    assert {vm["power_state"] for vm in lab["vms"]} == {"poweredOn"}, "the revert powers on what was on"
    assert lab["current_snapshot"] == built["id"]

    _succeeded(client, client.delete(url))
    lab = client.get(url).json()
    assert lab["state"] == "deleted" and lab["running"] is False
    assert started["lab"] not in {row["id"] for row in client.get("/api/v1/labs/").json()["results"]}
    kinds = [row["kind"] for row in client.get("/api/v1/operations/", {"lab": started["lab"]}).json()["results"]]
    assert kinds == ["delete", "revert", "power", "snapshot", "provision"]
