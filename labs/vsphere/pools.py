"""Resource pools: one per student lab, its limits taken from the course quota.

Shares are always sent (level "normal"): the simulator refuses an allocation without them.
"""

from __future__ import annotations

from typing import Any

from pyVmomi import vim

from . import props, refs
from .errors import AlreadyExists, InvalidArgument, InvalidState
from .folders import check_name
from .tasks import wait_for_task
from .types import PoolInfo, ProgressCallback

UNLIMITED = -1


def _allocation(limit: int | None, what: str) -> vim.ResourceAllocationInfo:
    if limit is not None and (not isinstance(limit, int) or isinstance(limit, bool) or limit < 0):
        raise InvalidArgument(f"The {what} limit must be a whole number of at least 0, or None for unlimited.")
    return vim.ResourceAllocationInfo(
        limit=UNLIMITED if limit is None else limit,
        reservation=0,
        expandableReservation=True,
        shares=vim.SharesInfo(level="normal", shares=0),
    )


def pool_spec(cpu_limit_mhz: int | None, memory_limit_mb: int | None) -> vim.ResourceConfigSpec:
    return vim.ResourceConfigSpec(
        cpuAllocation=_allocation(cpu_limit_mhz, "CPU"),
        memoryAllocation=_allocation(memory_limit_mb, "memory"),
    )


def parent_pool(session: Any, parent_ref: str) -> Any:
    parent = refs.resolve(session, parent_ref, vim.ResourcePool, vim.ComputeResource)
    if isinstance(parent, vim.ComputeResource):
        return props.read(session, parent, ["resourcePool"])["resourcePool"]
    return parent


def ensure_pool(
    session: Any,
    parent_ref: str,
    name: str,
    *,
    cpu_limit_mhz: int | None = None,
    memory_limit_mb: int | None = None,
) -> str:
    """The moref of pool ``name`` under a cluster (its root pool) or a pool, with these limits.

    An existing pool of that name gets the given limits, so a retried step converges.
    """
    name = check_name(name, "resource pool")
    spec = pool_spec(cpu_limit_mhz, memory_limit_mb)
    parent = parent_pool(session, parent_ref)
    for _ in range(2):
        children = props.read(session, parent, ["resourcePool"]).get("resourcePool") or ()
        names = props.read_many(session, children, ["name"])
        for child in children:
            if names.get(child._moId, {}).get("name") == name:
                child.UpdateConfig(name=None, config=spec)
                return child._moId
        try:
            return parent.CreateResourcePool(name=name, spec=spec)._moId
        except vim.fault.DuplicateName:
            continue  # made concurrently: look again
    raise AlreadyExists(f"A resource pool '{name}' under {parent_ref} could not be made or found.")


def update_pool(
    session: Any, ref: str, *, cpu_limit_mhz: int | None = None, memory_limit_mb: int | None = None
) -> None:
    """Set a pool's CPU (MHz) and memory (MB) limits; None means unlimited."""
    pool = refs.resolve(session, ref, vim.ResourcePool)
    pool.UpdateConfig(name=None, config=pool_spec(cpu_limit_mhz, memory_limit_mb))


def _limit(value: Any) -> int | None:
    return None if value is None or value < 0 else int(value)


def pool_info(session: Any, ref: str) -> PoolInfo:
    pool = refs.resolve(session, ref, vim.ResourcePool)
    values = props.read(session, pool, ["name", "config.cpuAllocation.limit", "config.memoryAllocation.limit", "vm"])
    return PoolInfo(
        moref=pool._moId,
        name=values.get("name", ""),
        path=props.inventory_path(session, pool),
        cpu_limit_mhz=_limit(values.get("config.cpuAllocation.limit")),
        memory_limit_mb=_limit(values.get("config.memoryAllocation.limit")),
        vm_count=len(values.get("vm") or ()),
    )


def destroy_pool(
    session: Any,
    ref: str,
    *,
    on_progress: ProgressCallback | None = None,
    deadline: float | None = None,
) -> None:
    """Delete an empty pool; a pool that still holds VMs or pools is refused (InvalidState)."""
    pool = refs.resolve(session, ref, vim.ResourcePool)
    values = props.read(session, pool, ["name", "parent", "vm", "resourcePool"])
    name = values.get("name", ref)
    if isinstance(values.get("parent"), vim.ComputeResource):
        raise InvalidArgument(f"'{name}' is the root resource pool of a cluster; it cannot be deleted.")
    vms, pools = values.get("vm") or (), values.get("resourcePool") or ()
    if vms or pools:
        raise InvalidState(f"Resource pool '{name}' is not empty ({len(vms)} VMs, {len(pools)} pools in it).")
    task = pool.Destroy_Task()
    wait_for_task(session, task, action=f"delete resource pool '{name}'", on_progress=on_progress, deadline=deadline)
