"""Lab operations (labs/jobs/lab_ops.py) against a simulator of their own, run in-process,
checked in vCenter itself through pyVmomi, not only through the driver."""

from __future__ import annotations

import pytest
from pyVim.connect import Disconnect, SmartConnect
from pyVmomi import vim, vmodl

from courses.models import Course
from labs import services
from labs.jobs import execute
from labs.models import Lab, LabSnapshot, Operation
from portal import demo, simulator

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.integration]


@pytest.fixture
def sim():
    """A simulator per test: labs are named after course, student and number, so a lab of
    an earlier test would be found (and reused) by the idempotent steps of the next."""
    server = simulator.start(args=["-demo"])
    yield server
    server.stop()


@pytest.fixture
def course(sim, monkeypatch) -> Course:
    monkeypatch.setattr(services.dispatch, "send_operation", lambda *args, **kwargs: None)
    return demo.seed_demo(vcenter_url=sim.url, vcenter_user=sim.username, vcenter_password=sim.password)


@pytest.fixture
def si(sim):
    service = SmartConnect(host=sim.host, port=sim.port, protocol="http", user=sim.username, pwd=sim.password)
    yield service
    Disconnect(service)


def run(operation: Operation) -> Operation:
    execute(operation.pk)
    operation.refresh_from_db()
    return operation


def student(course, name="student1"):
    return course.enrollments.get(student__username=name).student


def started_lab(course, name="student1") -> Lab:
    person = student(course, name)
    operation = run(services.lab_start(course=course, student=person, actor=person))
    assert operation.state == Operation.State.SUCCEEDED, operation.error
    return operation.lab


def props(si, obj, *paths):
    spec = vmodl.query.PropertyCollector.FilterSpec(
        objectSet=[vmodl.query.PropertyCollector.ObjectSpec(obj=obj)],
        propSet=[vmodl.query.PropertyCollector.PropertySpec(type=type(obj), pathSet=list(paths))],
    )
    [result] = si.content.propertyCollector.RetrieveContents([spec])
    return {prop.name: prop.val for prop in result.propSet}


def vm_object(si, moref):
    return vim.VirtualMachine(moref, si._stub)


def power_states(si, lab):
    return {
        vm.role: props(si, vm_object(si, vm.moref), "runtime.powerState")["runtime.powerState"] for vm in lab.vms.all()
    }


def test_provision_builds_the_whole_lab_in_vcenter(course, si, sim):
    with sim.rules(task_durations={"CloneVM_Task": 0.6}):
        lab = started_lab(course)
    lab.refresh_from_db()
    assert lab.state == Lab.State.READY and lab.is_running

    content = si.RetrieveContent()
    folder = content.searchIndex.FindByInventoryPath(f"DC0/vm/Nestlab Labs/{course.code}/{lab.name}")
    assert folder is not None
    children = props(si, folder, "childEntity")["childEntity"]
    assert len(children) == 5
    pool = vim.ResourcePool(lab.pool_moref, si._stub)
    memory = props(si, pool, "config.memoryAllocation")["config.memoryAllocation"]
    assert memory.limit == lab.memory_mb
    [network] = lab.networks.all()
    assert 2000 <= network.vlan_id <= 2999

    host = content.searchIndex.FindByInventoryPath("DC0/host/DC0_C0/DC0_C0_H0")
    net_system = props(si, host, "configManager.networkSystem")["configManager.networkSystem"]
    groups = {pg.spec.name: pg.spec for pg in props(si, net_system, "networkInfo")["networkInfo"].portgroup}
    group = groups[network.port_group]
    assert group.vlanId == network.vlan_id
    security = group.policy.security
    assert (security.allowPromiscuous, security.forgedTransmits, security.macChanges) == (True, True, True)

    field_names = {f.key: f.name for f in content.customFieldsManager.field}
    for vm in lab.vms.all():
        values = props(
            si,
            vm_object(si, vm.moref),
            "name",
            "config.nestedHVEnabled",
            "config.hardware.device",
            "customValue",
            "runtime.powerState",
            "config.hardware.numCPU",
        )
        assert values["name"] == f"{lab.name}-{vm.role}"
        assert values["config.nestedHVEnabled"] is (vm.role.startswith("esxi")), vm.role
        assert values["runtime.powerState"] == "poweredOn"
        nics = [d for d in values["config.hardware.device"] if isinstance(d, vim.vm.device.VirtualEthernetCard)]
        assert nics and all(nic.backing.deviceName == network.port_group for nic in nics), vm.role
        custom = {field_names[v.key]: v.value for v in values["customValue"]}
        assert custom["nestlab.lab_id"] == str(lab.pk)
        assert custom["nestlab.owner"] == "student1"
    assert lab.snapshots.get().is_baseline


def test_progress_is_seen_between_0_and_100_while_clones_run(course, sim, monkeypatch):
    from labs.jobs import runner

    seen: list[tuple[str, int, str]] = []
    monkeypatch.setattr(runner, "PROGRESS_WRITE_INTERVAL", 0.0)
    monkeypatch.setattr(runner.realtime, "operation_changed", lambda op: seen.append((op.state, op.progress, op.step)))
    with sim.rules(task_durations={"CloneVM_Task": 1.5}):
        started_lab(course)
    cloning = [progress for state, progress, step in seen if step.startswith("Cloning")]
    assert len({p for p in cloning if 0 < p < 100}) >= 3, cloning


def test_snapshot_revert_restores_power_states(course, si):
    lab = started_lab(course)
    person = lab.student
    op = run(services.lab_snapshot_create(lab=lab, actor=person, name="cluster built", description="3 hosts"))
    assert op.state == Operation.State.SUCCEEDED, op.error
    snapshot = LabSnapshot.objects.get(lab=lab, name="cluster built")
    assert snapshot.parent.is_baseline
    assert set(snapshot.vm_snapshots) == {str(vm.pk) for vm in lab.vms.all()}
    for vm in lab.vms.all():
        names = [
            s.name
            for s in props(si, vm_object(si, vm.moref), "snapshot")["snapshot"].rootSnapshotList[0].childSnapshotList
        ]
        assert "cluster built" in names

    # Break it: power off esxi-02 behind the portal's back.
    esxi02 = lab.vms.get(role="esxi-02")
    vm_object(si, esxi02.moref).PowerOffVM_Task()
    op = run(services.lab_revert(lab=lab, actor=person, snapshot=snapshot))
    assert op.state == Operation.State.SUCCEEDED, op.error
    assert set(power_states(si, lab).values()) == {"poweredOn"}
    lab.refresh_from_db()
    assert lab.current_snapshot == snapshot and lab.state == Lab.State.READY


def test_reset_goes_back_to_the_baseline(course, si):
    lab = started_lab(course)
    person = lab.student
    run(services.lab_power(lab=lab, actor=person, action="off"))
    assert set(power_states(si, lab).values()) == {"poweredOff"}
    op = run(services.lab_reset(lab=lab, actor=person))
    assert op.state == Operation.State.SUCCEEDED, op.error
    lab.refresh_from_db()
    assert lab.current_snapshot.is_baseline
    assert set(power_states(si, lab).values()) == {"poweredOn"}


def test_power_one_vm_and_the_whole_lab(course, si):
    lab = started_lab(course)
    person = lab.student
    router = lab.vms.get(role="router")
    op = run(services.lab_power(lab=lab, actor=person, action="off", vm=router))
    assert op.state == Operation.State.SUCCEEDED, op.error
    states = power_states(si, lab)
    assert states["router"] == "poweredOff" and states["esxi-01"] == "poweredOn"
    router.refresh_from_db()
    assert router.power_state == "poweredOff"

    run(services.lab_power(lab=lab, actor=person, action="off"))
    lab.refresh_from_db()
    assert not lab.is_running and lab.hours_used > 0
    run(services.lab_power(lab=lab, actor=person, action="on"))
    assert set(power_states(si, lab).values()) == {"poweredOn"}


def test_delete_snapshot_reparents_its_children(course, si):
    lab = started_lab(course)
    person = lab.student
    run(services.lab_snapshot_create(lab=lab, actor=person, name="one"))
    run(services.lab_snapshot_create(lab=lab, actor=person, name="two"))
    one, two = LabSnapshot.objects.get(lab=lab, name="one"), LabSnapshot.objects.get(lab=lab, name="two")
    op = run(services.lab_snapshot_delete(snapshot=one, actor=person))
    assert op.state == Operation.State.SUCCEEDED, op.error
    two.refresh_from_db()
    assert two.parent.is_baseline
    router = lab.vms.get(role="router")
    tree = props(si, vm_object(si, router.moref), "snapshot")["snapshot"].rootSnapshotList
    names = []
    stack = list(tree)
    while stack:
        node = stack.pop()
        names.append(node.name)
        stack.extend(node.childSnapshotList)
    assert "one" not in names and "two" in names


def test_clone_makes_a_second_lab_from_the_current_state(course, si):
    lab = started_lab(course)
    op = run(services.lab_clone(lab=lab, actor=lab.student))
    assert op.state == Operation.State.SUCCEEDED, op.error
    clone = op.lab
    assert clone.source_lab == lab and clone.number == 2 and clone.state == Lab.State.READY
    assert clone.vms.exclude(moref="").count() == 5
    assert {n.vlan_id for n in clone.networks.all()}.isdisjoint({n.vlan_id for n in lab.networks.all()})
    assert set(power_states(si, clone).values()) == {"poweredOn"}


def test_delete_leaves_nothing_in_vcenter_and_frees_the_vlan(course, si):
    lab = started_lab(course)
    port_group = lab.networks.get().port_group
    morefs = list(lab.vms.values_list("moref", flat=True))
    op = run(services.lab_delete(lab=lab, actor=lab.student))
    assert op.state == Operation.State.SUCCEEDED, op.error
    lab.refresh_from_db()
    assert lab.state == Lab.State.DELETED and not lab.is_running
    assert lab.networks.get().released
    content = si.RetrieveContent()
    assert content.searchIndex.FindByInventoryPath(f"DC0/vm/Nestlab Labs/{course.code}/{lab.name}") is None
    view = content.viewManager.CreateContainerView(content.rootFolder, [vim.VirtualMachine], True)
    remaining = {vm._moId for vm in view.view}
    assert remaining.isdisjoint(morefs)
    host = content.searchIndex.FindByInventoryPath("DC0/host/DC0_C0/DC0_C0_H0")
    net_system = props(si, host, "configManager.networkSystem")["configManager.networkSystem"]
    assert port_group not in {pg.spec.name for pg in props(si, net_system, "networkInfo")["networkInfo"].portgroup}


def test_a_failing_clone_leaves_no_orphans_and_the_lab_in_error(course, si, sim):
    person = student(course, "student2")
    with sim.rules(fail=["CloneVM_Task:esxi-03"]):
        op = run(services.lab_start(course=course, student=person, actor=person))
    assert op.state == Operation.State.FAILED
    assert "injected failure" in op.error
    lab = op.lab
    lab.refresh_from_db()
    assert lab.state == Lab.State.ERROR and "Provisioning failed" in lab.error
    content = si.RetrieveContent()
    view = content.viewManager.CreateContainerView(content.rootFolder, [vim.VirtualMachine], True)
    names = {props(si, vm, "name")["name"] for vm in view.view}
    assert not any(name.startswith(lab.name) for name in names), "no orphan VMs"
    assert content.searchIndex.FindByInventoryPath(f"DC0/vm/Nestlab Labs/{course.code}/{lab.name}") is None

    # Reset builds it again once vCenter behaves.
    op = run(services.lab_reset(lab=lab, actor=person))
    assert op.state == Operation.State.SUCCEEDED, op.error
    lab.refresh_from_db()
    assert lab.state == Lab.State.READY and lab.vms.exclude(moref="").count() == 5


def test_cancelling_a_build_midway_removes_what_it_made(course, si, sim, monkeypatch):
    from labs.jobs import lab_build, runner
    from labs.services import operation_cancel

    pushed: list[tuple[str, int]] = []
    original_changed = runner.realtime.operation_changed
    monkeypatch.setattr(
        runner.realtime,
        "operation_changed",
        lambda op: (pushed.append((op.state, op.seq)), original_changed(op))[1],
    )
    person = student(course, "student3")
    operation = services.lab_start(course=course, student=person, actor=person)
    original = lab_build.LabBuilder.configure_all

    def configure_then_click_cancel(self, progress):
        original(self, progress)
        operation_cancel(operation=Operation.objects.get(pk=operation.pk), actor=person)

    monkeypatch.setattr(lab_build.LabBuilder, "configure_all", configure_then_click_cancel)
    operation = run(operation)
    assert operation.state == Operation.State.CANCELLED
    lab = operation.lab
    lab.refresh_from_db()
    assert lab.state == Lab.State.ERROR and "Cancelled on request" in lab.error
    content = si.RetrieveContent()
    view = content.viewManager.CreateContainerView(content.rootFolder, [vim.VirtualMachine], True)
    assert not any(props(si, vm, "name")["name"].startswith(lab.name) for vm in view.view), "no orphan VMs"
    seqs = [seq for _, seq in pushed]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs), f"every push is newer than the last: {pushed}"
    assert pushed[-1][0] == "cancelled"


def test_a_lab_operation_whose_undo_cannot_reach_vcenter_leaves_the_lab_in_error_not_busy(course, sim):
    lab = started_lab(course)
    operation = services.lab_snapshot_create(lab=lab, actor=lab.student, name="vCenter is down")
    sim.stop()
    operation = run(operation)
    assert operation.state == Operation.State.FAILED
    assert "cannot talk to vCenter" in operation.error and "Cleaning up afterwards failed too" in operation.error
    lab.refresh_from_db()
    assert lab.state == Lab.State.ERROR, "not busy for ever"
    assert lab.error == operation.error


def test_a_lab_operation_failing_on_a_vanished_vm_says_the_vm_disappeared(course, si):
    from pyVim.task import WaitForTask

    lab = started_lab(course)
    router = lab.vms.get(role="router")
    WaitForTask(vm_object(si, router.moref).PowerOffVM_Task())
    WaitForTask(vm_object(si, router.moref).Destroy_Task())
    operation = run(services.lab_power(lab=lab, actor=lab.student, action="reset"))
    assert operation.state == Operation.State.FAILED
    lab.refresh_from_db()
    assert lab.state == Lab.State.ERROR, "not ready: a VM is gone"
    assert lab.error == "router disappeared from vCenter. Reset rebuilds the lab."
    router.refresh_from_db()
    assert router.power_state == "missing"


def test_deleting_a_lab_vcenter_forgot_never_removes_what_took_its_morefs(course, sim):
    """The simulator restarted (a vCenter restored from a backup is alike): it hands the
    lab's old morefs to new objects. Delete removes only objects that are still the lab's."""
    from labs.endpoints import endpoint_client

    lab = started_lab(course)
    remembered = set(lab.vms.values_list("moref", flat=True))
    sim.restart()
    client = endpoint_client(lab.endpoint)
    router = client.get("/DC0/vm/Nestlab Templates/Nested vSphere 8 Lab/router").moref
    bystander = None
    for number in range(100):  # clone until a new VM gets one of the lab's old morefs
        made = client.clone_vm(router, name=f"bystander-{number}", folder="/DC0/vm", pool="/DC0/host/DC0_C0/Resources")
        if made in remembered:
            bystander = made
            break
    assert bystander is not None, "the simulator hands out morefs again after a restart"

    operation = run(services.lab_delete(lab=lab, actor=lab.student))
    assert operation.state == Operation.State.SUCCEEDED, operation.error
    assert client.find(bystander).name.startswith("bystander-"), "another object with an old moref stays"
    assert not lab.vms.exclude(moref="").exists()


def test_an_abandoned_power_operation_gives_the_lab_back(course):
    lab = started_lab(course)
    operation = services.lab_power(lab=lab, actor=lab.student, action="off")
    execute(operation.pk, abandon_reason="The worker stopped 2 times.")
    operation.refresh_from_db()
    lab.refresh_from_db()
    assert operation.state == Operation.State.FAILED and operation.error == "The worker stopped 2 times."
    assert lab.state == Lab.State.READY


def test_a_failed_delete_keeps_track_of_what_is_left_and_deleting_again_finishes(course, si, sim):
    lab = started_lab(course)
    router = lab.vms.get(role="router")
    with sim.rules(fail=[f"Destroy_Task:{router.moref}"]):
        first = run(services.lab_delete(lab=lab, actor=lab.student))
    assert first.state == Operation.State.FAILED and "router" in first.error
    router.refresh_from_db()
    assert router.moref, "the reference to the VM that is still there is kept"
    second = run(services.lab_delete(lab=lab, actor=lab.student))
    assert second.state == Operation.State.SUCCEEDED, second.error
    content = si.RetrieveContent()
    view = content.viewManager.CreateContainerView(content.rootFolder, [vim.VirtualMachine], True)
    assert not any(props(si, vm, "name")["name"].startswith(lab.name) for vm in view.view)
    assert content.searchIndex.FindByInventoryPath(f"DC0/vm/Nestlab Labs/{course.code}/{lab.name}") is None
