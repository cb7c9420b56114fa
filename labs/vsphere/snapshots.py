"""VM snapshots: take, list as a tree, revert, remove.

Snapshots are named by moref or by name; a name used twice means the newest one.
Reverting on the simulator only moves ``currentSnapshot`` (power state and config stay),
so ``revert_snapshot`` returns the snapshot it reverted to: its ``state`` tells the caller
whether the VM was running when the snapshot was taken.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from pyVmomi import vim

from . import props, refs
from .errors import InvalidArgument, NotFound
from .tasks import wait_for_task
from .types import ProgressCallback, SnapshotInfo


def snapshot_tree(nodes: Iterable[Any], *, current: str | None = None) -> tuple[SnapshotInfo, ...]:
    """Build ``SnapshotInfo`` trees from vSphere's ``VirtualMachineSnapshotTree`` nodes.

    Works on any objects with the same attribute names (``snapshot`` may be a moref string).
    """
    return tuple(_node(node, current) for node in nodes or ())


def _utc(value: datetime | None) -> datetime | None:
    """pyVmomi's own tzinfo class becomes plain UTC (naive times are taken as UTC)."""
    if value is None:
        return None
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def _node(node: Any, current: str | None) -> SnapshotInfo:
    moref = refs.moref_of(node.snapshot)
    return SnapshotInfo(
        moref=moref,
        name=node.name or "",
        description=getattr(node, "description", None) or "",
        created=_utc(getattr(node, "createTime", None)),
        state=str(getattr(node, "state", None) or "unknown"),
        quiesced=bool(getattr(node, "quiesced", False)),
        is_current=moref == current,
        children=snapshot_tree(getattr(node, "childSnapshotList", None) or (), current=current),
    )


def pick(roots: Iterable[SnapshotInfo], snapshot: str) -> SnapshotInfo | None:
    """The snapshot with this moref, else the newest with this name."""
    nodes = [node for root in roots for node in root.walk()]
    for node in nodes:
        if node.moref == snapshot:
            return node
    named = [(index, node) for index, node in enumerate(nodes) if node.name == snapshot]
    if not named:
        return None
    newest = max(named, key=lambda pair: (pair[1].created is not None, pair[1].created or 0, pair[0]))
    return newest[1]


def list_snapshots(session: Any, vm_ref: str) -> tuple[SnapshotInfo, ...]:
    vm = refs.resolve(session, vm_ref, vim.VirtualMachine)
    info = props.read(session, vm, ["snapshot"]).get("snapshot")
    if info is None:
        return ()
    current = info.currentSnapshot._moId if info.currentSnapshot is not None else None
    return snapshot_tree(info.rootSnapshotList, current=current)


def find_snapshot(session: Any, vm_ref: str, snapshot: str) -> SnapshotInfo | None:
    """A VM's snapshot by moref or name (the newest of that name), or None."""
    return pick(list_snapshots(session, vm_ref), snapshot)


def _require(session: Any, vm_ref: str, snapshot: str) -> SnapshotInfo:
    found = find_snapshot(session, vm_ref, snapshot)
    if found is None:
        raise NotFound(f"VM {vm_ref} has no snapshot '{snapshot}'.")
    return found


def create_snapshot(
    session: Any,
    vm_ref: str,
    name: str,
    *,
    description: str = "",
    memory: bool = False,
    quiesce: bool = False,
    on_progress: ProgressCallback | None = None,
    deadline: float | None = None,
) -> str:
    """Take a snapshot; return its moref."""
    if not name.strip():
        raise InvalidArgument("A snapshot needs a name.")
    vm = refs.resolve(session, vm_ref, vim.VirtualMachine)
    task = vm.CreateSnapshot_Task(name=name, description=description, memory=memory, quiesce=quiesce)
    moref = wait_for_task(
        session,
        task,
        action=f"take snapshot '{name}' of {vm_ref}",
        on_progress=on_progress,
        deadline=deadline,
    )
    if moref is None:  # vCenter always returns it; be safe anyway
        moref = _require(session, vm_ref, name).moref
    return moref


def revert_snapshot(
    session: Any,
    vm_ref: str,
    snapshot: str,
    *,
    on_progress: ProgressCallback | None = None,
    deadline: float | None = None,
) -> SnapshotInfo:
    """Revert the VM to a snapshot (moref or name); return that snapshot."""
    target = _require(session, vm_ref, snapshot)
    task = refs.mo(session, vim.vm.Snapshot, target.moref).RevertToSnapshot_Task()
    wait_for_task(
        session,
        task,
        action=f"revert {vm_ref} to snapshot '{target.name}'",
        on_progress=on_progress,
        deadline=deadline,
    )
    return replace(target, is_current=True)


def remove_snapshot(
    session: Any,
    vm_ref: str,
    snapshot: str,
    *,
    remove_children: bool = False,
    on_progress: ProgressCallback | None = None,
    deadline: float | None = None,
) -> None:
    """Delete one snapshot (its children are kept and re-parented unless ``remove_children``)."""
    target = _require(session, vm_ref, snapshot)
    task = refs.mo(session, vim.vm.Snapshot, target.moref).RemoveSnapshot_Task(
        removeChildren=remove_children, consolidate=True
    )
    wait_for_task(
        session,
        task,
        action=f"remove snapshot '{target.name}' of {vm_ref}",
        on_progress=on_progress,
        deadline=deadline,
    )


def remove_all_snapshots(
    session: Any,
    vm_ref: str,
    *,
    on_progress: ProgressCallback | None = None,
    deadline: float | None = None,
) -> None:
    vm = refs.resolve(session, vm_ref, vim.VirtualMachine)
    task = vm.RemoveAllSnapshots_Task()
    wait_for_task(session, task, action=f"remove all snapshots of {vm_ref}", on_progress=on_progress, deadline=deadline)
