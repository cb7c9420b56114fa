"""Moref prefixes and inventory kinds."""

from __future__ import annotations

import pytest
from pyVmomi import vim

from labs.vsphere.refs import kind_of, moref_of, type_for_moref
from labs.vsphere.types import Kind


@pytest.mark.parametrize(
    ("moref", "expected"),
    [
        ("vm-42", vim.VirtualMachine),
        ("group-v3", vim.Folder),
        ("group-d1", vim.Folder),
        ("folder-5", vim.Folder),
        ("datacenter-2", vim.Datacenter),
        ("domain-c7", vim.ClusterComputeResource),
        ("clustercomputeresource-27", vim.ClusterComputeResource),
        ("domain-s9", vim.ComputeResource),
        ("host-21", vim.HostSystem),
        ("resgroup-22", vim.ResourcePool),
        ("resgroup-v30", vim.VirtualApp),
        ("datastore-11", vim.Datastore),
        ("network-7", vim.Network),
        ("dvportgroup-13", vim.dvs.DistributedVirtualPortgroup),
        ("dvs-9", vim.DistributedVirtualSwitch),
        ("snapshot-84", vim.vm.Snapshot),
        ("task-101", vim.Task),
    ],
)
def test_type_for_moref(moref, expected):
    assert type_for_moref(moref) is expected


@pytest.mark.parametrize("moref", ["/tmp/govcsim-DC0-LocalDS_0-1@folder-5x", "weird", "vm-"])
def test_unknown_prefixes(moref):
    assert type_for_moref(moref) is None


@pytest.mark.parametrize(
    ("obj", "kind"),
    [
        (vim.VirtualMachine("vm-1"), Kind.VM),
        (vim.Folder("group-v1"), Kind.FOLDER),
        (vim.ClusterComputeResource("domain-c1"), Kind.CLUSTER),
        (vim.ComputeResource("domain-s1"), Kind.COMPUTE_RESOURCE),
        (vim.VirtualApp("resgroup-v1"), Kind.VAPP),
        (vim.ResourcePool("resgroup-1"), Kind.RESOURCE_POOL),
        (vim.dvs.DistributedVirtualPortgroup("dvportgroup-1"), Kind.DV_PORTGROUP),
        (vim.dvs.VmwareDistributedVirtualSwitch("dvs-1"), Kind.DV_SWITCH),
        (vim.Network("network-1"), Kind.NETWORK),
        (vim.Task("task-1"), Kind.OTHER),
    ],
)
def test_kind_of(obj, kind):
    assert kind_of(obj) == kind
    assert kind_of(type(obj)) == kind


def test_moref_of():
    assert moref_of(vim.VirtualMachine("vm-9")) == "vm-9"
    assert moref_of("vm-9") == "vm-9"
