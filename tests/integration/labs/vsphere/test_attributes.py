"""Custom attributes: how the portal tags and later finds its VMs."""

from __future__ import annotations

import pytest

from labs.vsphere import NotFound

from .conftest import ROUTER, unique

pytestmark = pytest.mark.integration


def test_set_values_defines_the_fields_for_vms(workspace, client, vc):
    moref = workspace.clone(ROUTER)
    lab_id = unique("lab")

    client.set_custom_values(moref, {"nestlab.owner": "alice@example.edu", "nestlab.lab_id": lab_id})

    assert vc.custom_values(moref) == {"nestlab.owner": "alice@example.edu", "nestlab.lab_id": lab_id}
    fields = {name: mo_type for name, mo_type in vc.read_manager_fields().values()}
    assert fields["nestlab.owner"].__name__.endswith("VirtualMachine")
    assert client.get_custom_values(moref) == {"nestlab.owner": "alice@example.edu", "nestlab.lab_id": lab_id}


def test_a_new_value_replaces_the_old_one(workspace, client, vc):
    moref = workspace.clone(ROUTER)
    client.set_custom_values(moref, {"nestlab.owner": "alice"})

    client.set_custom_values(moref, {"nestlab.owner": "bob"})

    assert client.vm_info(moref).custom_values["nestlab.owner"] == "bob"
    assert len(vc.read_manager_fields()) == len({name for name, _ in vc.read_manager_fields().values()})


def test_find_vms_by_attribute(workspace, client):
    lab_id = unique("lab")
    tagged = workspace.clone(ROUTER)
    other = workspace.clone(ROUTER)
    client.set_custom_values(tagged, {"nestlab.lab_id": lab_id})
    client.set_custom_values(other, {"nestlab.lab_id": unique("lab")})

    found = client.find_vms_by_attribute("nestlab.lab_id", lab_id)

    assert [item.moref for item in found] == [tagged]
    assert found[0].path.startswith(f"/DC0/vm/{workspace.name}/")
    every = {item.moref for item in client.find_vms_by_attribute("nestlab.lab_id", under=workspace.folder)}
    assert every == {tagged, other}
    assert client.find_vms_by_attribute("nestlab.never-defined") == []


def test_missing_vm(client):
    with pytest.raises(NotFound):
        client.set_custom_values("vm-999999", {"nestlab.owner": "x"})
