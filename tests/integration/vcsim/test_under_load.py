"""The simulator under load (issue 16: it stopped accepting connections during a 500-student run).

Each test starts a simulator of its own: these make it write a lot, kill it, or load it, which
the session's shared simulator must not see. Sizes are bounded (a few seconds each).
"""

from __future__ import annotations

import os
import signal
import threading
import urllib.request

import pytest
from pyVim.connect import Disconnect, SmartConnect
from pyVmomi import vim, vmodl

from portal import simulator

pytestmark = pytest.mark.integration

PC = vmodl.query.PropertyCollector
ROUTER = "DC0/vm/Nestlab Templates/Nested vSphere 8 Lab/router"


@pytest.fixture
def own_vcsim(tmp_path):
    server = simulator.start(args=["-demo"], log_path=tmp_path / "vcsim.log")
    yield server
    server.stop()


def connect(sim: simulator.Simulator):
    return SmartConnect(protocol="http", host=sim.host, port=sim.port, user=sim.username, pwd=sim.password)


def test_a_line_that_is_not_utf8_does_not_stop_the_simulator(own_vcsim):
    """The launcher echoes a rules body as it got it. Its reader used to die on the first byte
    that is not UTF-8; then nobody read the pipe, and once its 64 KB were full every goroutine
    that logs blocked: the simulator stopped answering (after about 700 rule changes here)."""
    request = urllib.request.Request(
        own_vcsim.base_url + simulator.CONFIG_PATH, data=b'{"fail": ["CloneVM_Task:caf\xe9"]}', method="PUT"
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200
    # Each change is a log line of about 100 bytes: 3000 of them are far more than a pipe holds.
    for number in range(3000):
        own_vcsim.configure(fail=[f"CloneVM_Task:lab-{number}"])
    assert own_vcsim.get_config()["fail"] == ["CloneVM_Task:lab-2999"]
    log = own_vcsim.log_path.read_text(encoding="utf-8")
    assert "caf\ufffd" in log  # the odd byte, replaced
    assert "lab-2999" in log
    assert simulator.URL_MARKER in log


def test_a_launcher_that_dies_is_reported_and_keeps_its_log(tmp_path):
    server = simulator.start(log_path=tmp_path / "vcsim.log")
    try:
        server.check()  # running: nothing to say
        os.killpg(server.process.pid, signal.SIGKILL)  # our own launcher, as a crash would end it
        server.process.wait(timeout=10)
        assert not server.alive
        with pytest.raises(simulator.SimulatorError, match=r"killed by signal 9; its log is .*vcsim\.log"):
            server.check()
    finally:
        server.stop()
    assert simulator.URL_MARKER in (tmp_path / "vcsim.log").read_text()  # kept: it is the evidence


def test_a_clean_stop_removes_the_log(tmp_path):
    server = simulator.start(log_path=tmp_path / "vcsim.log")
    assert (tmp_path / "vcsim.log").exists()
    server.stop()
    assert not (tmp_path / "vcsim.log").exists()


def test_waits_on_one_collector_while_vms_come_and_go(own_vcsim):
    """Several WaitForUpdatesEx on one PropertyCollector at once, as a client that gave up on a
    wait and sent another makes, while VMs enter and leave the watched view. 0.24.2 writes the
    collector's filter maps without a lock (a "concurrent map writes" ends the whole process);
    the launcher runs one wait per collector at a time. The simulator must still answer."""
    si = connect(own_vcsim)
    try:
        content = si.RetrieveContent()
        folder = content.searchIndex.FindByInventoryPath("DC0/vm").CreateFolder("load")
        source = content.searchIndex.FindByInventoryPath(ROUTER)
        view = content.viewManager.CreateContainerView(folder, [vim.VirtualMachine], True)
        collector = content.propertyCollector.CreatePropertyCollector()
        traversal = PC.TraversalSpec(name="view", type=vim.view.ContainerView, path="view", skip=False)
        collector.CreateFilter(
            PC.FilterSpec(
                objectSet=[PC.ObjectSpec(obj=view, skip=True, selectSet=[traversal])],
                propSet=[PC.PropertySpec(type=vim.VirtualMachine, pathSet=["name", "runtime.powerState"])],
            ),
            partialUpdates=True,
        )
        version = collector.WaitForUpdatesEx("", PC.WaitOptions(maxWaitSeconds=0)).version
        done = threading.Event()
        errors: list[BaseException] = []
        updates = [0]

        def waiter() -> None:
            try:
                while not done.is_set():
                    update = collector.WaitForUpdatesEx(version, PC.WaitOptions(maxWaitSeconds=1))
                    updates[0] += update is not None
            except BaseException as error:  # noqa: BLE001 - reported below
                errors.append(error)

        def churn(prefix: str) -> None:
            try:
                for number in range(25):
                    task = source.CloneVM_Task(
                        folder=folder, name=f"{prefix}-{number}", spec=vim.vm.CloneSpec(location=vim.vm.RelocateSpec())
                    )
                    vm = task_result(si, task)
                    vm.Destroy_Task()
            except BaseException as error:  # noqa: BLE001 - reported below
                errors.append(error)

        waiters = [threading.Thread(target=waiter) for _ in range(6)]
        churners = [threading.Thread(target=churn, args=(f"vm{n}",)) for n in range(2)]
        for thread in waiters + churners:
            thread.start()
        for thread in churners:
            thread.join(60)
        done.set()
        for thread in waiters:
            thread.join(30)
        assert not errors, errors
        # How many waits saw a change depends on how the threads interleave (a loaded CI machine ran
        # every clone before any wait returned one): the claim here is that every wait answered,
        # without an error, and the simulator lived through it.
        assert own_vcsim.alive, own_vcsim.output[-40:]
        assert si.CurrentTime() is not None
        collector.DestroyPropertyCollector()
    finally:
        Disconnect(si)


def task_result(si, task):
    """The task's result (tasks without a duration rule have finished when the call returns)."""
    spec = PC.FilterSpec(
        objectSet=[PC.ObjectSpec(obj=task)],
        propSet=[PC.PropertySpec(type=vim.Task, pathSet=["info.result"])],
    )
    contents = si.content.propertyCollector.RetrieveContents([spec])
    return contents[0].propSet[0].val


def _changes(update) -> dict[str, tuple[str, dict]]:
    """moref -> (kind, {property: value}) over every object update of one WaitForUpdatesEx."""
    found: dict[str, tuple[str, dict]] = {}
    for filter_update in (update.filterSet if update is not None else None) or ():
        for object_update in filter_update.objectSet or ():
            values = {change.name: change.val for change in object_update.changeSet or ()}
            kind, earlier = found.get(object_update.obj._moId, (object_update.kind, {}))
            found[object_update.obj._moId] = (kind, {**earlier, **values})
    return found


def _wait_for(collector, version: str, wanted: set[str]) -> tuple[str, dict]:
    """Wait until every moref in ``wanted`` has been reported; the changes seen and the version."""
    seen: dict[str, tuple[str, dict]] = {}
    for _ in range(20):
        update = collector.WaitForUpdatesEx(version, PC.WaitOptions(maxWaitSeconds=1))
        if update is not None:
            version = update.version
            seen.update(_changes(update))
        if wanted <= set(seen):
            break
    return version, seen


def test_a_view_filter_reports_each_vm_entering_changing_and_leaving_with_many_changes_a_tick(own_vcsim):
    """The launcher compiles govmomi's property collector with one change (vcsim/overlay/): the
    filters are re-collected once per 250 ms tick instead of once per changed object per filter,
    which cost the simulator most of its CPU under a class. What a client sees must not change:
    VMs made, changed and destroyed together within one tick are each reported as entering with
    their values, then as modified, then as leaving."""
    si = connect(own_vcsim)
    try:
        content = si.RetrieveContent()
        folder = content.searchIndex.FindByInventoryPath("DC0/vm").CreateFolder("tick")
        source = content.searchIndex.FindByInventoryPath(ROUTER)
        view = content.viewManager.CreateContainerView(folder, [vim.VirtualMachine], True)
        collector = content.propertyCollector.CreatePropertyCollector()
        traversal = PC.TraversalSpec(name="view", type=vim.view.ContainerView, path="view", skip=False)
        collector.CreateFilter(
            PC.FilterSpec(
                objectSet=[PC.ObjectSpec(obj=view, skip=True, selectSet=[traversal])],
                propSet=[PC.PropertySpec(type=vim.VirtualMachine, pathSet=["name", "runtime.powerState"])],
            ),
            partialUpdates=True,
        )
        version = collector.WaitForUpdatesEx("", PC.WaitOptions(maxWaitSeconds=0)).version
        tasks = [
            source.CloneVM_Task(folder=folder, name=f"vm-{n}", spec=vim.vm.CloneSpec(location=vim.vm.RelocateSpec()))
            for n in range(6)
        ]
        vms = [task_result(si, task) for task in tasks]
        morefs = {vm._moId for vm in vms}
        version, seen = _wait_for(collector, version, morefs)
        assert {moref: kind for moref, (kind, _) in seen.items()} == dict.fromkeys(morefs, "enter")
        assert sorted(values["name"] for _, values in seen.values()) == [f"vm-{n}" for n in range(6)]

        powered = vms[:3]
        for vm in powered:  # without a duration rule a task has finished when its call returns
            vm.PowerOnVM_Task()
        version, seen = _wait_for(collector, version, {vm._moId for vm in powered})
        assert {moref: (kind, values.get("runtime.powerState")) for moref, (kind, values) in seen.items()} == {
            vm._moId: ("modify", "poweredOn") for vm in powered
        }

        gone = vms[3:]
        for vm in gone:
            vm.Destroy_Task()
        version, seen = _wait_for(collector, version, {vm._moId for vm in gone})
        assert {moref: kind for moref, (kind, _) in seen.items()} == {vm._moId: "leave" for vm in gone}
        collector.DestroyPropertyCollector()
    finally:
        Disconnect(si)
