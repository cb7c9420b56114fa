"""Resource pools with the quota's limits."""

from __future__ import annotations

import pytest

from labs.vsphere import InvalidArgument, InvalidState, NotFound

from .conftest import CLUSTER_PATH, ESXI, unique

pytestmark = pytest.mark.integration


def limits(vc, moref):
    values = vc.read("pool", moref, "config.cpuAllocation", "config.memoryAllocation")
    return values["config.cpuAllocation"], values["config.memoryAllocation"]


def test_ensure_pool_with_limits_under_a_cluster(client, vc):
    name = unique("pool")

    moref = client.ensure_pool(CLUSTER_PATH, name, cpu_limit_mhz=4000, memory_limit_mb=8192)

    cpu, memory = limits(vc, moref)
    assert (cpu.limit, memory.limit) == (4000, 8192)
    assert cpu.shares.level == "normal"
    assert vc.find(f"{CLUSTER_PATH}/Resources/{name}")._moId == moref
    info = client.pool_info(moref)
    assert (info.name, info.cpu_limit_mhz, info.memory_limit_mb) == (name, 4000, 8192)
    assert info.path == f"{CLUSTER_PATH}/Resources/{name}"
    client.destroy_pool(moref)


def test_ensure_again_converges_to_the_new_limits(client, vc):
    name = unique("pool")
    moref = client.ensure_pool(CLUSTER_PATH, name, cpu_limit_mhz=1000, memory_limit_mb=1024)

    again = client.ensure_pool(f"{CLUSTER_PATH}/Resources", name, cpu_limit_mhz=None, memory_limit_mb=2048)

    assert again == moref
    cpu, memory = limits(vc, moref)
    assert (cpu.limit, memory.limit) == (-1, 2048)
    assert client.pool_info(moref).cpu_limit_mhz is None
    client.destroy_pool(moref)


def test_update_pool_limits(client, vc):
    moref = client.ensure_pool(CLUSTER_PATH, unique("pool"))
    assert [a.limit for a in limits(vc, moref)] == [-1, -1]

    client.update_pool(moref, cpu_limit_mhz=500, memory_limit_mb=None)

    assert [a.limit for a in limits(vc, moref)] == [500, -1]
    client.destroy_pool(moref)


def test_nested_pool(client, vc):
    parent = client.ensure_pool(CLUSTER_PATH, unique("pool"))
    child = client.ensure_pool(parent, "child", memory_limit_mb=512)

    assert vc.read("pool", child, "parent")["parent"]._moId == parent
    with pytest.raises(InvalidState) as caught:
        client.destroy_pool(parent)
    assert "1 pools" in str(caught.value)
    client.destroy_pool(child)
    client.destroy_pool(parent)
    assert not vc.exists("pool", parent)


def test_a_pool_with_vms_is_not_destroyed(client, workspace, vc):
    workspace.clone(ESXI)

    with pytest.raises(InvalidState) as caught:
        client.destroy_pool(workspace.pool)

    assert "1 VMs" in str(caught.value)
    assert vc.exists("pool", workspace.pool)
    assert client.pool_info(workspace.pool).vm_count == 1


def test_the_root_pool_is_refused(client):
    with pytest.raises(InvalidArgument):
        client.destroy_pool(f"{CLUSTER_PATH}/Resources")


@pytest.mark.parametrize("bad", [-5, 1.5, True, "100"])
def test_bad_limits_are_refused(client, bad):
    with pytest.raises(InvalidArgument):
        client.ensure_pool(CLUSTER_PATH, unique("pool"), cpu_limit_mhz=bad)


def test_missing_cluster(client):
    with pytest.raises(NotFound):
        client.ensure_pool("/DC0/host/nope", "x")
