"""Clones, reconfiguration and deletion, checked in vCenter."""

from __future__ import annotations

from contextlib import contextmanager

import pytest

from labs.vsphere import AlreadyExists, InvalidArgument, NotFound, PortGroupSpec

from .conftest import CLUSTER, DATACENTER, DV_SWITCH, ESXI, ROUTER, TEMPLATE_NETWORK, VSWITCH, unique

pytestmark = pytest.mark.integration


def test_full_clone_into_folder_and_pool(workspace, vc):
    name = unique("esxi")

    moref = workspace.clone(ESXI, name=name, datastore="/DC0/datastore/LocalDS_0")

    values = vc.read("vm", moref, "name", "parent", "resourcePool", "datastore", "runtime.powerState")
    assert values["name"] == name
    assert values["parent"]._moId == workspace.folder
    assert values["resourcePool"]._moId == workspace.pool
    assert [d._moId for d in values["datastore"]] == [vc.find("/DC0/datastore/LocalDS_0")._moId]
    assert values["runtime.powerState"] == "poweredOff"


def test_linked_clone_from_a_named_snapshot(workspace, client, vc):
    source = workspace.clone(ESXI)
    client.create_snapshot(source, "baseline")

    moref = workspace.clone(source, linked=True, snapshot="baseline")

    assert vc.read("vm", moref, "parent")["parent"]._moId == workspace.folder
    assert moref != source


def test_a_linked_clone_needs_a_snapshot(workspace):
    with pytest.raises(InvalidArgument) as caught:
        workspace.clone(ESXI, linked=True)
    assert "needs a snapshot" in str(caught.value)


def test_clone_from_a_missing_snapshot(workspace):
    with pytest.raises(NotFound) as caught:
        workspace.clone(ESXI, snapshot="never-taken")
    assert "no snapshot 'never-taken'" in str(caught.value)


def test_clone_of_a_missing_template(workspace):
    with pytest.raises(NotFound) as caught:
        workspace.clone("/DC0/vm/Nestlab Templates/Nested vSphere 8 Lab/esxi-09")
    assert "esxi-09" in str(caught.value)


def test_duplicate_name_in_the_folder_is_refused(workspace, vc):
    name = unique("esxi")
    workspace.clone(ESXI, name=name)

    with pytest.raises(AlreadyExists) as caught:
        workspace.clone(ESXI, name=name)

    assert name in str(caught.value)
    assert vc.child_names(workspace.folder).count(name) == 1


def test_reconfigure_what_clones_do_not_carry(workspace, client, vc):
    moref = workspace.clone(ESXI)

    changed = client.reconfigure_vm(moref, nested_hv=True, num_cpus=2, memory_mb=4096, annotation="lab 7: esxi-01")

    assert changed is True
    values = vc.read(
        "vm",
        moref,
        "config.nestedHVEnabled",
        "config.hardware.numCPU",
        "config.hardware.memoryMB",
        "config.annotation",
    )
    assert values == {
        "config.nestedHVEnabled": True,
        "config.hardware.numCPU": 2,
        "config.hardware.memoryMB": 4096,
        "config.annotation": "lab 7: esxi-01",
    }
    assert client.reconfigure_vm(moref) is False


@pytest.mark.parametrize("bad", [dict(num_cpus=0), dict(memory_mb=-1), dict(num_cpus="2")])
def test_bad_hardware_values_are_refused(workspace, client, bad):
    moref = workspace.clone(ROUTER)
    with pytest.raises(InvalidArgument):
        client.reconfigure_vm(moref, **bad)


def test_nics_move_to_a_standard_lab_port_group(workspace, client, vc):
    net = unique("lab-net")
    client.ensure_port_group(datacenter=DATACENTER, cluster=CLUSTER, switch=VSWITCH, spec=PortGroupSpec(name=net))
    moref = workspace.clone(ESXI)
    try:
        client.reconfigure_vm(moref, networks={TEMPLATE_NETWORK: net})

        backings = vc.vm_nic_backings(moref)
        assert len(backings) == 2
        assert {b.deviceName for b in backings} == {net}
        assert {b.network._moId for b in backings} == {vc.find(f"/DC0/network/{net}")._moId}
        assert {nic.network for nic in client.vm_info(moref).nics} == {net}
    finally:
        client.destroy_vm(moref)
        client.remove_port_group(datacenter=DATACENTER, cluster=CLUSTER, switch=VSWITCH, name=net)


def test_nics_move_to_a_distributed_port_group(workspace, client, vc):
    net = unique("lab-dv")
    info = client.ensure_port_group(
        datacenter=DATACENTER, cluster=CLUSTER, switch=DV_SWITCH, spec=PortGroupSpec(name=net)
    )
    moref = workspace.clone(ROUTER)
    try:
        client.reconfigure_vm(moref, networks={TEMPLATE_NETWORK: net})

        [backing] = vc.vm_nic_backings(moref)
        assert backing.port.portgroupKey == info.moref
        assert backing.port.switchUuid == vc.read("dvpg", info.moref, "config")["config"].distributedVirtualSwitch.uuid
        assert [nic.network for nic in client.vm_info(moref).nics] == [net]
    finally:
        client.destroy_vm(moref)
        client.remove_port_group(datacenter=DATACENTER, cluster=CLUSTER, switch=DV_SWITCH, name=net)


def test_a_missing_network_is_refused_before_vcenter_sees_it(workspace, client, vc):
    moref = workspace.clone(ROUTER)

    with pytest.raises(NotFound) as caught:
        client.reconfigure_vm(moref, networks={TEMPLATE_NETWORK: "no-such-net"})
    assert "no network 'no-such-net'" in str(caught.value)
    with pytest.raises(NotFound) as caught:
        client.reconfigure_vm(moref, networks={"VM Network": "DC0_DVPG0"})
    assert "no network adapter on 'VM Network'" in str(caught.value)

    assert [b.deviceName for b in vc.vm_nic_backings(moref)] == [TEMPLATE_NETWORK]
    assert client.vm_info(moref).name  # the simulator is still fine


def test_destroy_a_running_vm(workspace, client, vc):
    moref = workspace.clone(ROUTER)
    client.power_on(moref)

    client.destroy_vm(moref)

    assert not vc.exists("vm", moref)
    assert vc.child_names(workspace.folder) == []
    with pytest.raises(NotFound):
        client.destroy_vm(moref)


def test_a_clone_holds_what_it_is_given_only_around_vcenters_task(workspace):
    """The caller's capacity slot (``hold``) is taken after the look-ups and given back when the
    task ended; a clone that fails in its look-ups never takes it."""
    events: list[str] = []

    @contextmanager
    def hold():
        events.append("taken")
        yield
        events.append("given back")

    moref = workspace.clone(name=unique("held"), hold=hold)
    assert events == ["taken", "given back"]
    assert workspace.client.vm_info(moref).name.startswith("held")

    events.clear()
    with pytest.raises(NotFound):
        workspace.clone(source=f"/{DATACENTER}/vm/no-such-vm", hold=hold)
    with pytest.raises(AlreadyExists):
        workspace.clone(name=workspace.client.vm_info(moref).name, hold=hold)
    assert events == []
