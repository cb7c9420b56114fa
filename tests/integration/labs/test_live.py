"""End to end: a real Celery worker, the real watcher process and the simulator push to a
connected WebSocket client: operation progress as it happens, and a VM powered off
directly in vCenter (pyVmomi) as a vm.state message."""

from __future__ import annotations

import time

import pytest
from pyVim.connect import Disconnect, SmartConnect
from pyVmomi import vim

from labs import services
from labs.models import Operation
from portal import demo, simulator
from tests.integration.labs.test_consumers import Session, _headers, close_clients  # noqa: F401
from tests.support.processes import wait_for

pytestmark = pytest.mark.integration


@pytest.fixture
def sim():
    server = simulator.start(args=["-demo", "-task-duration", "CloneVM_Task=1500ms,PowerOnVM_Task=300ms"])
    yield server
    server.stop()


def _messages_until(ws, predicate, timeout=30.0):
    seen = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            message = ws.receive(timeout=max(0.1, deadline - time.monotonic()))
        except TimeoutError:
            break
        seen.append(message)
        if predicate(message):
            return seen
    raise AssertionError(f"no matching message; saw {[m['type'] for m in seen]}")


def test_progress_and_a_power_change_made_in_vcenter_reach_the_browser(sim, celery_worker, watcher_process):
    course = demo.seed_demo(vcenter_url=sim.url, vcenter_user=sim.username, vcenter_password=sim.password)
    student = course.enrollments.get(student__username="student1").student
    operation = services.lab_start(course=course, student=student, actor=student)
    ws = Session(f"/ws/labs/{operation.lab_id}/", _headers(student))
    assert ws.receive()["type"] == "lab.full"

    seen = _messages_until(
        ws, lambda m: m["type"] == "operation.progress" and m["operation"]["state"] == "succeeded", timeout=60
    )
    progress = [m for m in seen if m["type"] == "operation.progress" and m["operation"]["id"] == operation.pk]
    between = {m["operation"]["progress"] for m in progress if 0 < m["operation"]["progress"] < 100}
    assert len(between) >= 3, [m["operation"]["progress"] for m in progress]
    seqs = [m["seq"] for m in progress]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs), "operation seq strictly grows"
    assert any(m["type"] == "lab.state" and m["lab"]["state"] == "ready" for m in seen)

    operation.refresh_from_db()
    assert operation.state == Operation.State.SUCCEEDED
    router = operation.lab.vms.get(role="router")
    si = SmartConnect(host=sim.host, port=sim.port, protocol="http", user=sim.username, pwd=sim.password)
    try:
        # Let the watcher's first resync pass, then act behind the portal's back.
        wait_for(lambda: any("Watching the lab VMs" in line for line in watcher_process.output), timeout=20)
        time.sleep(1.0)
        started = time.monotonic()
        vim.VirtualMachine(router.moref, si._stub).PowerOffVM_Task()
        seen = _messages_until(
            ws,
            lambda m: m["type"] == "vm.state" and m["vm"]["id"] == router.pk and m["vm"]["power_state"] == "poweredOff",
        )
        delay = time.monotonic() - started
    finally:
        Disconnect(si)
    assert delay < 3.0, f"the change took {delay:.2f} s to arrive"
    router.refresh_from_db()
    assert router.power_state == "poweredOff"
