"""Snapshots: take, tree, revert, remove (revert and remove are the tasks whose info
pyVmomi cannot read on the simulator: the waiter must not touch ``info.entity``)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from labs.vsphere import InvalidArgument, NotFound

from .conftest import ROUTER

pytestmark = pytest.mark.integration


def tree(vc, moref):
    """[(name, [children...])] and the current snapshot's name, read from vCenter."""
    info = vc.read("vm", moref, "snapshot").get("snapshot")
    if info is None:
        return [], None

    def walk(nodes):
        return [(node.name, walk(node.childSnapshotList)) for node in nodes]

    names = {}

    def index(nodes):
        for node in nodes:
            names[node.snapshot._moId] = node.name
            index(node.childSnapshotList)

    index(info.rootSnapshotList)
    current = names.get(info.currentSnapshot._moId) if info.currentSnapshot else None
    return walk(info.rootSnapshotList), current


@pytest.fixture
def vm(workspace):
    return workspace.clone(ROUTER)


def test_create_and_list_a_tree(client, vm, vc):
    first = client.create_snapshot(vm, "baseline", description="as published")
    client.power_on(vm)
    second = client.create_snapshot(vm, "step-1")

    assert tree(vc, vm) == ([("baseline", [("step-1", [])])], "step-1")
    [root] = client.list_snapshots(vm)
    assert (root.moref, root.name, root.description, root.state) == (
        first,
        "baseline",
        "as published",
        "poweredOff",
    )
    [child] = root.children
    assert (child.moref, child.state, child.is_current) == (second, "poweredOn", True)
    assert root.is_current is False
    assert abs(root.created - datetime.now(UTC)) < timedelta(minutes=5)
    info = client.vm_info(vm)
    assert info.current_snapshot == second
    assert [s.name for s in info.all_snapshots()] == ["baseline", "step-1"]


def test_revert_by_name_and_by_moref(client, vm, vc):
    baseline = client.create_snapshot(vm, "baseline")
    client.create_snapshot(vm, "step-1")

    reverted = client.revert_snapshot(vm, "baseline")

    assert reverted.moref == baseline and reverted.is_current
    assert tree(vc, vm)[1] == "baseline"
    client.revert_snapshot(vm, client.find_snapshot(vm, "step-1").moref)
    assert tree(vc, vm)[1] == "step-1"


def test_the_newest_of_two_snapshots_with_one_name(client, vm):
    client.create_snapshot(vm, "same")
    newer = client.create_snapshot(vm, "same")

    assert client.find_snapshot(vm, "same").moref == newer


def test_remove_one_keeps_its_children(client, vm, vc):
    client.create_snapshot(vm, "a")
    client.create_snapshot(vm, "b")
    client.create_snapshot(vm, "c")

    client.remove_snapshot(vm, "b")

    assert tree(vc, vm) == ([("a", [("c", [])])], "c")


def test_remove_with_children(client, vm, vc):
    client.create_snapshot(vm, "a")
    client.create_snapshot(vm, "b")
    client.create_snapshot(vm, "c")

    client.remove_snapshot(vm, "b", remove_children=True)

    assert tree(vc, vm)[0] == [("a", [])]


def test_remove_all(client, vm, vc):
    client.create_snapshot(vm, "a")
    client.create_snapshot(vm, "b")

    client.remove_all_snapshots(vm)

    assert tree(vc, vm) == ([], None)
    assert client.list_snapshots(vm) == ()


def test_missing_snapshot(client, vm):
    with pytest.raises(NotFound) as caught:
        client.revert_snapshot(vm, "nope")
    assert "has no snapshot 'nope'" in str(caught.value)
    with pytest.raises(NotFound):
        client.remove_snapshot(vm, "nope")
    assert client.find_snapshot(vm, "nope") is None


def test_a_snapshot_needs_a_name(client, vm):
    with pytest.raises(InvalidArgument):
        client.create_snapshot(vm, " ")


def test_progress_on_snapshot_tasks(client, vm, vcsim):
    seen = []
    with vcsim.rules(task_durations={"CreateSnapshot_Task": "1200ms", "RevertToSnapshot_Task": "1200ms"}):
        client.create_snapshot(vm, "slow", on_progress=lambda percent, _: seen.append(percent))
        client.revert_snapshot(vm, "slow", on_progress=lambda percent, _: seen.append(percent))
    assert any(0 < p < 100 for p in seen) and seen.count(100) == 2
