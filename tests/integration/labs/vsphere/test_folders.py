"""VM folders: made once, found again, deleted only when empty."""

from __future__ import annotations

import pytest

from labs.vsphere import AlreadyExists, InvalidArgument, InvalidState, NotFound

from .conftest import ESXI, unique

pytestmark = pytest.mark.integration


def test_ensure_folder_makes_it_once(client, vc):
    name = unique("folder")

    moref = client.ensure_folder("/DC0/vm", name)
    again = client.ensure_folder("/DC0", name)  # a datacenter stands for its VM folder

    assert again == moref
    assert vc.find(f"/DC0/vm/{name}")._moId == moref
    assert vc.child_names(vc.find("/DC0/vm")._moId).count(name) == 1
    client.destroy_folder(moref)


def test_nested_folders(client, vc):
    parent = client.ensure_folder("/DC0/vm", unique("parent"))
    child = client.ensure_folder(parent, "child")

    assert vc.read("folder", child, "parent")["parent"]._moId == parent
    client.destroy_folder(child)
    client.destroy_folder(parent)


def test_destroy_an_empty_folder(client, vc):
    moref = client.ensure_folder("/DC0/vm", unique("folder"))

    client.destroy_folder(moref)

    assert not vc.exists("folder", moref)


def test_a_folder_with_vms_is_not_destroyed(client, workspace, vc):
    workspace.clone(ESXI)

    with pytest.raises(InvalidState) as caught:
        client.destroy_folder(workspace.folder)

    assert "is not empty (1 items in it)" in str(caught.value)
    assert vc.exists("folder", workspace.folder)


def test_top_level_folders_are_refused(client):
    with pytest.raises(InvalidArgument):
        client.destroy_folder("/DC0/vm")


def test_missing_parent(client):
    with pytest.raises(NotFound) as caught:
        client.ensure_folder("/DC0/vm/nowhere", "x")
    assert "nowhere" in str(caught.value)


def test_a_vm_with_the_name_is_not_a_folder(client, workspace):
    name = unique("vm")
    workspace.clone(ESXI, name=name)

    with pytest.raises(AlreadyExists) as caught:
        client.ensure_folder(workspace.folder, name)
    assert "is a vm, not a folder" in str(caught.value)


def test_an_empty_name_is_refused(client):
    with pytest.raises(InvalidArgument):
        client.ensure_folder("/DC0/vm", "  ")
