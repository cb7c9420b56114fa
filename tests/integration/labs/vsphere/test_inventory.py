"""Finding things: paths, morefs, folder listings for pickers, VM search and details."""

from __future__ import annotations

import pytest

from labs.vsphere import InvalidArgument, Kind, NotFound

from .conftest import ESXI, LAB_TEMPLATE, ROUTER, TEMPLATE_NETWORK, unique

pytestmark = pytest.mark.integration


def test_get_by_path_and_by_moref(client, vc):
    expected = vc.find(ESXI)._moId

    by_path = client.get(ESXI)
    by_moref = client.get(expected)

    assert by_path == by_moref
    assert by_path.moref == expected
    assert by_path.kind == Kind.VM
    assert by_path.path == ESXI
    assert by_path.name == "esxi-01"


def test_paths_relative_to_the_root_and_the_root_itself(client, vc):
    assert client.get("DC0").moref == vc.find("/DC0")._moId
    root = client.get("/")
    assert root.moref == vc.content.rootFolder._moId
    assert root.path == "/"


def test_missing_path_and_moref(client):
    assert client.find("/DC0/vm/no such folder") is None
    assert client.find("vm-999999") is None
    with pytest.raises(NotFound) as caught:
        client.get("/DC0/vm/Nestlab Templates/nope")
    assert "'/DC0/vm/Nestlab Templates/nope'" in str(caught.value)
    with pytest.raises(NotFound):
        client.vm_info("vm-999999")


def test_a_ref_of_the_wrong_kind_is_refused(client):
    with pytest.raises(InvalidArgument) as caught:
        client.vm_info("/DC0/vm/Nestlab Templates")
    assert "is a folder, not a vm" in str(caught.value)


def test_list_children_of_root_datacenter_and_folder(client, vc):
    assert [(i.name, i.kind) for i in client.list_children("/")] == [("DC0", Kind.DATACENTER)]

    top = client.list_children("/DC0")
    assert top[0].kind == Kind.FOLDER  # folders first
    names = {item.name: item for item in top}
    assert names["Nestlab Templates"].path == "/DC0/vm/Nestlab Templates"
    assert names["DC0_H0_VM0"].kind == Kind.VM
    assert set(names) == set(vc.child_names(vc.find("/DC0/vm")._moId))

    lab = client.list_children(LAB_TEMPLATE)
    assert [item.name for item in lab] == ["esxi-01", "esxi-02", "esxi-03", "router", "vcsa"]
    assert all(item.path == f"{LAB_TEMPLATE}/{item.name}" for item in lab)
    assert {item.moref for item in lab} == {vc.find(item.path)._moId for item in lab}


def test_templates_are_listed_as_templates(client, workspace, vc):
    moref = workspace.clone(ROUTER)
    vc.obj("vm", moref).MarkAsTemplate()

    [item] = client.list_children(workspace.folder)

    assert item.kind == Kind.TEMPLATE
    assert client.vm_info(moref).is_template is True


def test_search_vms_recursively_and_not(client):
    found = client.search_vms("/DC0/vm/Nestlab Templates", "ESXI")
    assert [item.path for item in found] == [f"{LAB_TEMPLATE}/esxi-0{n}" for n in (1, 2, 3)]

    assert client.search_vms("/DC0/vm/Nestlab Templates", "esxi", recursive=False) == []
    everything = client.search_vms("/DC0")
    assert {"DC0_H0_VM0", "esxi-01", "vcsa"} <= {item.name for item in everything}
    assert len(client.search_vms("/DC0", limit=2)) == 2


def test_find_vm_in_a_folder(client, workspace):
    name = unique("vm")
    moref = workspace.clone(ESXI, name=name)

    assert client.find_vm(workspace.folder, name) == moref
    assert client.find_vm(workspace.folder, "esxi-01") is None
    assert client.find_vm(LAB_TEMPLATE, "esxi-01") == client.get(ESXI).moref


def test_vm_info_matches_vcenter(client, vc):
    moref = vc.find(ESXI)._moId
    truth = vc.read(
        "vm",
        moref,
        "config.hardware.numCPU",
        "config.hardware.memoryMB",
        "config.nestedHVEnabled",
        "config.annotation",
        "runtime.powerState",
        "config.instanceUuid",
        "snapshot",
    )

    info = client.vm_info(ESXI)

    assert info.moref == moref
    assert info.path == ESXI
    assert info.num_cpu == truth["config.hardware.numCPU"] == 4
    assert info.memory_mb == truth["config.hardware.memoryMB"] == 16384
    assert info.nested_hv is truth["config.nestedHVEnabled"] is True
    assert info.annotation == truth["config.annotation"]
    assert info.power_state == truth["runtime.powerState"]
    assert info.instance_uuid == truth["config.instanceUuid"]
    assert info.is_template is False
    assert info.overall_status in ("green", "gray", "yellow", "red")
    assert len(info.nics) == 2
    assert {nic.network for nic in info.nics} == {TEMPLATE_NETWORK}
    assert all(nic.mac_address for nic in info.nics)
    # The session's simulator is shared: other tests may have left snapshots; compare with vCenter.
    tree = truth.get("snapshot")
    roots = [root.name for root in tree.rootSnapshotList] if tree is not None else []
    assert [root.name for root in info.snapshots] == roots
    current = tree.currentSnapshot._moId if tree is not None and tree.currentSnapshot is not None else None
    assert info.current_snapshot == current


def test_vm_info_of_a_vm_on_a_distributed_port_group(client, vc):
    info = client.vm_info("/DC0/vm/DC0_C0_RP0_VM0")

    assert [nic.network for nic in info.nics] == ["DC0_DVPG0"]
    assert info.nics[0].network_moref == vc.find("/DC0/network/DC0_DVPG0")._moId
