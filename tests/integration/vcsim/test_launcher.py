"""The simulator launcher (vcsim/) and its process manager (portal/simulator.py).

Driven through pyVmomi directly. Properties are read through the PropertyCollector
(RetrieveContents with a path set), never by attribute: see docs/simulator.md.
"""

from __future__ import annotations

import http.client
import json
import socket
import statistics
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass, field

import pytest
from pyVim.connect import Disconnect, SmartConnect
from pyVmomi import vim, vmodl

from portal import simulator

pytestmark = pytest.mark.integration

PC = vmodl.query.PropertyCollector
LAB_FOLDER = "DC0/vm/Nestlab Templates/Nested vSphere 8 Lab"
DEMO_VMS = {
    # name: (guestId, vCPUs, memory MB, nestedHVEnabled, NICs)
    "esxi-01": ("vmkernel8Guest", 4, 16384, True, 2),
    "esxi-02": ("vmkernel8Guest", 4, 16384, True, 2),
    "esxi-03": ("vmkernel8Guest", 4, 16384, True, 2),
    "vcsa": ("vmwarePhoton64Guest", 2, 14336, False, 1),
    "router": ("debian12_64Guest", 1, 1024, False, 1),
}
PORT_GROUP = "Nestlab-Lab-Template"


# --- helpers -------------------------------------------------------------------------


def connect(sim: simulator.Simulator, *, user: str | None = None, password: str | None = None):
    return SmartConnect(
        protocol="http",
        host=sim.host,
        port=sim.port,
        user=sim.username if user is None else user,
        pwd=sim.password if password is None else password,
    )


@pytest.fixture
def si(vcsim):
    service = connect(vcsim)
    yield service
    Disconnect(service)


def props(si, obj, *paths: str) -> dict:
    """Properties of one object through the PropertyCollector (unset ones are absent)."""
    spec = PC.FilterSpec(
        objectSet=[PC.ObjectSpec(obj=obj)],
        propSet=[PC.PropertySpec(type=type(obj), pathSet=list(paths))],
    )
    contents = si.content.propertyCollector.RetrieveContents([spec])
    return {p.name: p.val for p in contents[0].propSet} if contents else {}


def find(si, path: str):
    return si.content.searchIndex.FindByInventoryPath(path)


@dataclass
class TaskWatch:
    states: list[str] = field(default_factory=list)
    progress: list[int] = field(default_factory=list)
    state: str | None = None
    error: object = None
    result: object = None

    @property
    def finished(self) -> bool:
        return self.state in ("success", "error")


def watch_task(si, task, *, timeout: float = 10.0) -> TaskWatch:
    """Follow a task as the product's driver does: its own PropertyCollector,
    a filter on info.state/progress/error/result, WaitForUpdatesEx. Returns when the
    task finishes or after ``timeout`` seconds."""
    watch = TaskWatch()
    collector = si.content.propertyCollector.CreatePropertyCollector()
    try:
        collector.CreateFilter(
            PC.FilterSpec(
                objectSet=[PC.ObjectSpec(obj=task)],
                propSet=[
                    PC.PropertySpec(
                        type=vim.Task,
                        pathSet=["info.state", "info.progress", "info.error", "info.result"],
                    )
                ],
            ),
            partialUpdates=False,
        )
        version = ""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not watch.finished:
            wait = max(1, min(5, int(deadline - time.monotonic())))
            update = collector.WaitForUpdatesEx(version, PC.WaitOptions(maxWaitSeconds=wait))
            if update is None:
                continue
            version = update.version
            for filter_update in update.filterSet:
                for object_update in filter_update.objectSet:
                    for change in object_update.changeSet:
                        if change.name == "info.state":
                            watch.states.append(change.val)
                            watch.state = change.val
                        elif change.name == "info.progress" and change.val is not None:
                            watch.progress.append(change.val)
                        elif change.name == "info.error":
                            watch.error = change.val
                        elif change.name == "info.result":
                            watch.result = change.val
    finally:
        collector.DestroyPropertyCollector()
    return watch


@pytest.fixture
def scratch_folder(si):
    """A VM folder of the test's own under DC0/vm; its VMs are destroyed afterwards."""
    folder = find(si, "DC0/vm").CreateFolder(f"test-{uuid.uuid4().hex[:8]}")
    yield folder
    for child in props(si, folder, "childEntity").get("childEntity", []):
        if isinstance(child, vim.VirtualMachine):
            watch_task(si, child.Destroy_Task(), timeout=5)
    watch_task(si, folder.Destroy_Task(), timeout=5)


def clone(si, source, folder, name: str):
    return source.CloneVM_Task(folder=folder, name=name, spec=vim.vm.CloneSpec(location=vim.vm.RelocateSpec()))


def child_names(si, folder) -> list[str]:
    children = props(si, folder, "childEntity").get("childEntity", [])
    return [props(si, child, "name")["name"] for child in children]


def timed_current_time(si) -> float:
    start = time.perf_counter()
    si.CurrentTime()
    return time.perf_counter() - start


# --- login and sessions --------------------------------------------------------------


def test_strict_login_rejects_wrong_password_and_user(vcsim):
    with pytest.raises(vim.fault.InvalidLogin):
        connect(vcsim, password=vcsim.password + "-wrong")
    with pytest.raises(vim.fault.InvalidLogin):
        connect(vcsim, user="someone-else@vsphere.local")
    service = connect(vcsim)
    assert props(service, service.content.sessionManager, "currentSession")["currentSession"].userName == vcsim.username
    Disconnect(service)


def test_url_line_has_no_password(vcsim):
    lines = [line for line in vcsim.output if line.startswith(simulator.URL_MARKER)]
    assert lines == [f"{simulator.URL_MARKER}{vcsim.url}"]  # no user:password@ in it


@pytest.fixture(scope="module")
def idle_vcsim():
    server = simulator.start(args=["-idle-timeout", "500ms", "-delay", "150"])
    yield server
    server.stop()


def test_idle_timeout_expires_session(idle_vcsim):
    service = connect(idle_vcsim)
    service.CurrentTime()  # fine while active
    # The simulator checks idleness every timeout period: expired within 2 periods.
    time.sleep(1.3)
    with pytest.raises(vim.fault.NotAuthenticated):
        service.CurrentTime()
    fresh = connect(idle_vcsim)  # logging in again works
    assert fresh.CurrentTime() is not None


def test_delay_flag_slows_every_call(idle_vcsim):
    service = connect(idle_vcsim)
    assert min(timed_current_time(service) for _ in range(3)) >= 0.14


# --- tasks that look running -------------------------------------------------------------


def test_task_duration_shows_running_progress_then_success(vcsim, si, scratch_folder):
    source = find(si, f"{LAB_FOLDER}/router")
    with vcsim.rules(task_durations={"CloneVM_Task": 1.5}):
        task = clone(si, source, scratch_folder, "progress-clone")
        # The work is already done while the task shows running (documented).
        assert props(si, task, "info.state")["info.state"] == "running"
        assert "progress-clone" in child_names(si, scratch_folder)
        watch = watch_task(si, task)
    assert watch.states[0] == "running"
    assert watch.state == "success", watch
    between = {p for p in watch.progress if 0 < p < 100}
    assert len(between) >= 2, watch.progress
    assert watch.progress == sorted(watch.progress)
    assert isinstance(watch.result, vim.VirtualMachine)
    assert props(si, watch.result, "name")["name"] == "progress-clone"


def test_without_rules_tasks_finish_at_once(si, scratch_folder):
    task = clone(si, find(si, f"{LAB_FOLDER}/router"), scratch_folder, "instant-clone")
    assert props(si, task, "info.state")["info.state"] == "success"


# --- failures and hangs ----------------------------------------------------------------


def test_fail_rule_gives_task_error_without_side_effect(vcsim, si, scratch_folder):
    source = find(si, f"{LAB_FOLDER}/router")
    with vcsim.rules(task_durations={"CloneVM_Task": 0.8}, fail=["CloneVM_Task:FAIL"]):
        failed = watch_task(si, clone(si, source, scratch_folder, "lab-FAIL-1"))
        passed = watch_task(si, clone(si, source, scratch_folder, "lab-ok-1"))
    assert failed.states[0] == "running"
    assert any(0 < p < 100 for p in failed.progress), failed.progress
    assert failed.state == "error"
    # pyVmomi hands back info.error (a LocalizedMethodFault) as the fault itself.
    assert isinstance(failed.error, vmodl.fault.SystemError)
    assert "injected failure for CloneVM_Task" in failed.error.msg
    assert passed.state == "success"  # the substring decides, not the method alone
    assert child_names(si, scratch_folder) == ["lab-ok-1"]
    assert si.content.searchIndex.FindChild(scratch_folder, "lab-FAIL-1") is None


def test_fail_rule_without_duration_fails_at_once(vcsim, si, scratch_folder):
    source = find(si, f"{LAB_FOLDER}/router")
    with vcsim.rules(fail=["CloneVM_Task:FAIL"]):
        task = clone(si, source, scratch_folder, "FAIL-now")
        info = props(si, task, "info.state", "info.error")
    assert info["info.state"] == "error"
    assert isinstance(info["info.error"], vmodl.fault.SystemError)
    assert child_names(si, scratch_folder) == []


def test_fail_rule_on_plain_method_is_a_soap_fault(vcsim, si, scratch_folder):
    with vcsim.rules(fail=["CreateFolder:NOPE"]):
        with pytest.raises(vmodl.fault.SystemError) as raised:
            scratch_folder.CreateFolder("NOPE-folder")
        scratch_folder.CreateFolder("fine-folder")
    assert "injected failure for CreateFolder" in raised.value.msg
    assert child_names(si, scratch_folder) == ["fine-folder"]


def test_hang_rule_stays_running_until_cancelled(vcsim, si):
    vm = find(si, f"{LAB_FOLDER}/vcsa")
    other = find(si, f"{LAB_FOLDER}/router")
    with vcsim.rules(hang=[f"PowerOnVM_Task:{vm._moId}"]):
        task = vm.PowerOnVM_Task()
        early = watch_task(si, task, timeout=1.2)
        info = props(si, task, "info.state", "info.cancelable", "info.progress")
        power = props(si, vm, "runtime.powerState")["runtime.powerState"]
        task.CancelTask()
        cancelled = watch_task(si, task, timeout=5)
        with pytest.raises(vim.fault.InvalidState):
            task.CancelTask()  # already over
        other_power = watch_task(si, other.PowerOnVM_Task(), timeout=5)
    watch_task(si, other.PowerOffVM_Task(), timeout=5)
    assert early.states == ["running"] and not early.finished
    assert len(set(early.progress)) <= 1  # stuck
    assert info["info.state"] == "running" and info["info.cancelable"] is True
    assert power == "poweredOff"  # no side effect
    assert cancelled.state == "error"
    assert isinstance(cancelled.error, vmodl.fault.RequestCanceled)
    assert props(si, task, "info.cancelled")["info.cancelled"] is True
    assert props(si, vm, "runtime.powerState")["runtime.powerState"] == "poweredOff"
    assert other_power.state == "success"  # the rule's substring picked one VM


def test_running_slow_task_is_not_cancelable(vcsim, si, scratch_folder):
    source = find(si, f"{LAB_FOLDER}/router")
    with vcsim.rules(task_durations={"CloneVM_Task": 1.0}):
        task = clone(si, source, scratch_folder, "not-cancelable")
        assert props(si, task, "info.cancelable")["info.cancelable"] is False
        with pytest.raises(vmodl.fault.NotSupported):
            task.CancelTask()
        assert watch_task(si, task).state == "success"


def test_hang_rule_on_plain_method_holds_the_call(vcsim, si):
    with vcsim.rules(hang=["CurrentTime"]):
        # A raw SOAP call with the session cookie and a short client timeout.
        connection = http.client.HTTPConnection(vcsim.host, vcsim.port, timeout=0.7)
        body = (
            '<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope '
            'xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Body>'
            '<CurrentTime xmlns="urn:vim25"><_this type="ServiceInstance">ServiceInstance</_this>'
            "</CurrentTime></soapenv:Body></soapenv:Envelope>"
        )
        start = time.monotonic()
        with pytest.raises((TimeoutError, socket.timeout)):
            connection.request(
                "POST",
                "/sdk",
                body,
                {"Content-Type": "text/xml", "Cookie": si._stub.cookie},
            )
            connection.getresponse()
        connection.close()
        assert time.monotonic() - start >= 0.6
    assert si.CurrentTime() is not None  # other calls and, after the block, this one work


# --- delays and run-time configuration ---------------------------------------------------


def test_method_delay_slows_one_method(vcsim, si):
    before = statistics.median(timed_current_time(si) for _ in range(3))
    with vcsim.rules(method_delays={"CurrentTime": 0.4}):
        slowed = timed_current_time(si)
        other = time.perf_counter()
        props(si, si.content.rootFolder, "name")
        other = time.perf_counter() - other
    after = timed_current_time(si)
    assert before < 0.2
    assert slowed >= 0.38
    assert other < 0.2
    assert after < 0.2


@pytest.fixture(scope="module")
def flags_vcsim():
    server = simulator.start(
        args=[
            *("-dc", "1", "-cluster", "2", "-host", "2", "-standalone-host", "0"),
            *("-vm", "3", "-ds", "2", "-pg", "3", "-pool", "1"),
            *("-task-duration", "CloneVM_Task=600ms"),
            *("-fail", "CreateFolder:NOPE,Destroy_Task:KEEP", "-fail", "PowerOnVM_Task:x"),
            *("-method-delay", "CurrentTime=250"),
        ]
    )
    yield server
    server.stop()


def count(si, kind) -> int:
    view = si.content.viewManager.CreateContainerView(si.content.rootFolder, [kind], True)
    try:
        return len(props(si, view, "view").get("view", []))
    finally:
        view.DestroyView()


def test_inventory_size_flags(flags_vcsim):
    service = connect(flags_vcsim)
    assert count(service, vim.Datacenter) == 1
    assert count(service, vim.ClusterComputeResource) == 2
    assert count(service, vim.HostSystem) == 4  # 2 clusters x 2 hosts, no standalone host
    assert count(service, vim.Datastore) == 2
    assert count(service, vim.dvs.DistributedVirtualPortgroup) == 3 + 1  # + the uplink group
    # -pool 1: one child pool per cluster besides its root pool "Resources"
    assert count(service, vim.ResourcePool) == 2 * 2
    # -vm 3: three VMs per cluster, all in its root pool (child pools stay empty)
    assert count(service, vim.VirtualMachine) == 2 * 3


def test_flags_become_the_rules_and_reset_returns_to_them(flags_vcsim):
    flags = {
        "task_durations": {"CloneVM_Task": "600ms"},
        "fail": ["CreateFolder:NOPE", "Destroy_Task:KEEP", "PowerOnVM_Task:x"],
        "hang": [],
        "method_delays": {"CurrentTime": 250},
    }
    assert flags_vcsim.get_config() == flags
    changed = flags_vcsim.configure(hang=["PowerOffVM_Task"], task_durations={"*": "2s"})
    assert changed == {**flags, "hang": ["PowerOffVM_Task"], "task_durations": {"*": "2s"}}
    assert flags_vcsim.get_config() == changed
    with flags_vcsim.rules(fail=[], method_delays={}):
        assert flags_vcsim.get_config() == {**changed, "fail": [], "method_delays": {}}
    assert flags_vcsim.get_config() == changed  # rules() puts back what was in force
    assert flags_vcsim.reset_rules() == flags
    assert flags_vcsim.get_config() == flags


def test_flag_rules_act(flags_vcsim):
    service = connect(flags_vcsim)
    assert timed_current_time(service) >= 0.24  # -method-delay
    folder = find(service, "DC0/vm")
    with pytest.raises(vmodl.fault.SystemError):  # -fail CreateFolder:NOPE
        folder.CreateFolder("NOPE")
    target = folder.CreateFolder("clones")
    source = find(service, "DC0/vm/DC0_C0_RP0_VM0")
    task = clone(service, source, target, "flag-clone")  # -task-duration CloneVM_Task=600ms
    assert props(service, task, "info.state")["info.state"] == "running"
    assert watch_task(service, task).state == "success"


def test_bad_rules_are_refused(vcsim):
    before = vcsim.get_config()
    with pytest.raises(simulator.SimulatorError, match="not a SOAP method name"):
        vcsim.configure(fail=["not a method:x"])
    with pytest.raises(simulator.SimulatorError, match="duration"):
        vcsim.configure(task_durations={"CloneVM_Task": "soon"})
    with pytest.raises(simulator.SimulatorError, match="unknown key"):
        vcsim._control("PUT", simulator.CONFIG_PATH, {"fails": []})
    assert vcsim.get_config() == before


# --- the demo inventory ------------------------------------------------------------------


def test_demo_inventory(si):
    lab = find(si, LAB_FOLDER)
    assert lab is not None
    assert sorted(child_names(si, lab)) == sorted(DEMO_VMS)
    for name, (guest, cpus, memory, nested, nics) in DEMO_VMS.items():
        vm = find(si, f"{LAB_FOLDER}/{name}")
        p = props(
            si,
            vm,
            "config.guestId",
            "config.hardware.numCPU",
            "config.hardware.memoryMB",
            "config.nestedHVEnabled",
            "config.annotation",
            "config.hardware.device",
            "runtime.powerState",
        )
        assert p["config.guestId"] == guest, name
        assert p["config.hardware.numCPU"] == cpus, name
        assert p["config.hardware.memoryMB"] == memory, name
        assert p["config.nestedHVEnabled"] is nested, name
        assert p["runtime.powerState"] == "poweredOff", name
        assert len(p["config.annotation"]) > 20, name
        cards = [d for d in p["config.hardware.device"] if isinstance(d, vim.vm.device.VirtualEthernetCard)]
        assert len(cards) == nics, name
        assert {card.backing.deviceName for card in cards} == {PORT_GROUP}, name
        assert len({card.macAddress for card in cards}) == nics, name


@pytest.fixture(scope="module")
def fresh_demo_vcsim():
    """The demo inventory as seeded: other tests change the shared simulator's networks."""
    server = simulator.start(args=["-demo"])
    yield server
    server.stop()


@pytest.fixture
def fresh_si(fresh_demo_vcsim):
    service = connect(fresh_demo_vcsim)
    yield service
    Disconnect(service)


def test_demo_port_group_on_every_cluster_host(fresh_si):
    si = fresh_si
    cluster = find(si, "DC0/host/DC0_C0")
    hosts = props(si, cluster, "host")["host"]
    assert len(hosts) == 3
    network = find(si, f"DC0/network/{PORT_GROUP}")
    assert isinstance(network, vim.Network)
    for host in hosts:
        network_system = props(si, host, "configManager.networkSystem")["configManager.networkSystem"]
        info = props(si, network_system, "networkInfo")["networkInfo"]
        [group] = [pg for pg in info.portgroup if pg.spec.name == PORT_GROUP]
        assert group.spec.vswitchName == "vSwitch0"
        security = group.spec.policy.security
        assert (security.allowPromiscuous, security.forgedTransmits, security.macChanges) == (
            True,
            True,
            True,
        )
        [vswitch] = [v for v in info.vswitch if v.name == "vSwitch0"]
        assert PORT_GROUP in vswitch.portgroup
        host_groups = props(si, host, "config.network.portgroup")["config.network.portgroup"]
        assert PORT_GROUP in [pg.spec.name for pg in host_groups]
        assert network in props(si, host, "network")["network"]
    assert sorted(h._moId for h in props(si, network, "host")["host"]) == sorted(h._moId for h in hosts)


def test_demo_keeps_stock_inventory(si):
    for path in (
        "DC0/vm/DC0_H0_VM0",
        "DC0/vm/DC0_C0_RP0_VM0",
        "DC0/host/DC0_C0/DC0_C0_H0",
        "DC0/datastore/LocalDS_0",
        "DC0/network/DVS0",
        "DC0/network/DC0_DVPG0",
    ):
        assert find(si, path) is not None, path


def demo_morefs(si) -> dict[str, str]:
    lab = find(si, LAB_FOLDER)
    refs = {"folder": lab._moId, "network": find(si, f"DC0/network/{PORT_GROUP}")._moId}
    for name in DEMO_VMS:
        refs[name] = find(si, f"{LAB_FOLDER}/{name}")._moId
    return refs


def test_restart_brings_the_demo_inventory_back():
    server = simulator.start(args=["-demo"])
    try:
        service = connect(server)
        before = demo_morefs(service)
        find(service, "DC0/vm").CreateFolder("made-at-run-time")
        watch_task(service, find(service, f"{LAB_FOLDER}/router").Destroy_Task())
        assert find(service, f"{LAB_FOLDER}/router") is None
        server.restart()
        with pytest.raises((vim.fault.NotAuthenticated, ConnectionError, http.client.HTTPException)):
            service.CurrentTime()  # the old session is gone with the old process
        fresh = connect(server)
        assert demo_morefs(fresh) == before  # same names, same morefs
        assert find(fresh, "DC0/vm/made-at-run-time") is None
        # A restart also drops run-time rules: the flags (none here) apply again.
        server.configure(fail=["CreateFolder"])
        server.restart()
        assert server.get_config()["fail"] == []
    finally:
        server.stop()


# --- the build ----------------------------------------------------------------------------


def test_the_build_overlays_our_property_collector_on_the_govmomi_it_was_made_for(tmp_path):
    overlay = tmp_path / "overlay.json"
    simulator._write_overlay(overlay)
    replaced = json.loads(overlay.read_text())["Replace"]
    original = f"{simulator.GOPATH}/src/github.com/vmware/govmomi/simulator/property_collector.go"
    assert replaced == {original: str(simulator.OVERLAY_DIR / "property_collector.go")}
    assert "Nestlab:" in (simulator.OVERLAY_DIR / "property_collector.go").read_text()


def test_the_build_refuses_in_words_a_govmomi_the_overlay_was_not_made_for(tmp_path, monkeypatch):
    source, _ = simulator.GO_OVERLAYS["property_collector.go"]
    monkeypatch.setitem(simulator.GO_OVERLAYS, "property_collector.go", (source, "0" * 64))
    with pytest.raises(simulator.SimulatorError, match="another govmomi version is installed"):
        simulator._write_overlay(tmp_path / "overlay.json")
    assert not (tmp_path / "overlay.json").exists()


def test_pprof_serves_the_profiler_on_its_own_address_only():
    port = simulator.free_port()
    server = simulator.start(args=[f"-pprof=127.0.0.1:{port}"])
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/debug/pprof/", timeout=10) as answer:
            assert answer.status == 200
            assert b"goroutine" in answer.read()
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(f"{server.base_url}/debug/pprof/", timeout=10)
        assert refused.value.code == 404
    finally:
        server.stop()
