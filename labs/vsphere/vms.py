"""Cloning, reconfiguring and destroying VMs.

Two simulator habits shape this module, and are right for vCenter too: a clone does not
carry the source's nestedHVEnabled or annotation over (reconfigure explicitly after
cloning), and duplicate VM names in a folder are allowed (so ``clone_vm`` refuses them).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from typing import Any

from pyVmomi import vim, vmodl

from . import folders, inventory, networks, pools, props, refs, snapshots
from .errors import AlreadyExists, InvalidArgument, NotFound
from .tasks import wait_for_task, wait_for_tasks
from .types import ProgressCallback

LINKED = "createNewChildDiskBacking"


def clone_vm(
    session: Any,
    source: str,
    *,
    name: str,
    folder: str,
    pool: str,
    datastore: str | None = None,
    snapshot: str | None = None,
    linked: bool = False,
    on_progress: ProgressCallback | None = None,
    deadline: float | None = None,
    hold: Callable[[], AbstractContextManager[object]] | None = None,
) -> str:
    """Clone ``source`` as ``name`` into ``folder`` and ``pool``; return the new VM's moref.

    ``snapshot`` (moref or name) clones the VM as it was in that snapshot; ``linked`` makes
    a linked clone (child disks on that snapshot), which needs a snapshot. ``pool`` may be a
    cluster (its root pool) or a resource pool. A VM called ``name`` already in ``folder``
    raises AlreadyExists: use ``find_vm`` first when retrying a step. ``hold()`` (the caller's
    capacity slot) is entered once the look-ups are done and held until vCenter's task ends,
    so a slot of a busy vCenter is spent cloning, not looking things up.
    """
    name = folders.check_name(name, "VM")
    if linked and not snapshot:
        raise InvalidArgument("A linked clone needs a snapshot of the source VM.")
    vm = refs.resolve(session, source, vim.VirtualMachine)
    target_folder = folders.vm_folder(session, folder)
    target_pool = pools.parent_pool(session, pool)
    target_datastore = refs.resolve(session, datastore, vim.Datastore) if datastore else None
    if inventory.find_vm(session, target_folder._moId, name) is not None:
        raise AlreadyExists(f"A VM called '{name}' is already in folder {folder}.")
    snap = None
    if snapshot:
        found = snapshots.find_snapshot(session, vm._moId, snapshot)
        if found is None:
            raise NotFound(f"VM {source} has no snapshot '{snapshot}' to clone from.")
        snap = refs.mo(session, vim.vm.Snapshot, found.moref)
    location = vim.vm.RelocateSpec(pool=target_pool, datastore=target_datastore)
    if linked:
        location.diskMoveType = LINKED
    spec = vim.vm.CloneSpec(location=location, powerOn=False, template=False, snapshot=snap)
    kind = "linked clone" if linked else "clone"
    with hold() if hold is not None else nullcontext():
        task = vm.CloneVM_Task(folder=target_folder, name=name, spec=spec)
        moref = wait_for_task(
            session, task, action=f"make {kind} '{name}' of {source}", on_progress=on_progress, deadline=deadline
        )
    if moref is None:
        raise NotFound(f"vCenter did not say which VM the clone '{name}' became.")
    return moref


def _positive(value: int | None, what: str) -> None:
    if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
        raise InvalidArgument(f"{what} must be a whole number of at least 1.")


def _backing(session: Any, network: Any) -> Any:
    if isinstance(network, vim.dvs.DistributedVirtualPortgroup):
        values = props.read(session, network, ["key", "config.distributedVirtualSwitch"])
        switch_uuid = props.read(session, values["config.distributedVirtualSwitch"], ["uuid"]).get("uuid")
        port = vim.dvs.PortConnection(portgroupKey=values.get("key", network._moId), switchUuid=switch_uuid)
        return vim.vm.device.VirtualEthernetCard.DistributedVirtualPortBackingInfo(port=port)
    name = props.read(session, network, ["name"]).get("name")
    return vim.vm.device.VirtualEthernetCard.NetworkBackingInfo(deviceName=name, network=network)


def _nic_changes(session: Any, vm: Any, moves: Mapping[str, str]) -> list[vim.vm.device.VirtualDeviceSpec]:
    """Device edits that move every NIC on network ``old`` to network ``new``, for each pair."""
    info = inventory.vm_info(session, vm._moId)
    devices = {
        device.key: device
        for device in props.read(session, vm, ["config.hardware.device"]).get("config.hardware.device") or ()
    }
    datacenter = refs.datacenter_of(session, vm)
    available = {net.name: net for net in networks.list_networks(session, datacenter._moId)}
    changes = []
    for old, new in moves.items():
        target = available.get(new)
        if target is None:
            raise NotFound(f"There is no network '{new}' in the VM's datacenter.")
        nics = [nic for nic in info.nics if nic.network == old]
        if not nics:
            on = ", ".join(sorted({nic.network or "?" for nic in info.nics})) or "none"
            raise NotFound(f"VM '{info.name}' has no network adapter on '{old}' (its networks: {on}).")
        network_type = vim.dvs.DistributedVirtualPortgroup if target.kind == "dv_portgroup" else vim.Network
        backing = _backing(session, refs.mo(session, network_type, target.moref))
        for nic in nics:
            device = devices[nic.key]
            device.backing = backing
            changes.append(vim.vm.device.VirtualDeviceSpec(operation="edit", device=device))
    return changes


def _nic_changes_by_index(
    session: Any, vm: Any, targets: Sequence[str | None]
) -> list[vim.vm.device.VirtualDeviceSpec]:
    """Device edits that put the VM's i-th network adapter (device order) on ``targets[i]``."""
    info = inventory.vm_info(session, vm._moId)
    if len(targets) > len(info.nics):
        raise NotFound(
            f"VM '{info.name}' has {len(info.nics)} network adapter(s); {len(targets)} were to be connected."
        )
    devices = {
        device.key: device
        for device in props.read(session, vm, ["config.hardware.device"]).get("config.hardware.device") or ()
    }
    datacenter = refs.datacenter_of(session, vm)
    available = {net.name: net for net in networks.list_networks(session, datacenter._moId)}
    changes = []
    for nic, target_name in zip(sorted(info.nics, key=lambda n: n.key), targets, strict=False):
        if target_name is None:
            continue
        target = available.get(target_name)
        if target is None:
            raise NotFound(f"There is no network '{target_name}' in the VM's datacenter.")
        network_type = vim.dvs.DistributedVirtualPortgroup if target.kind == "dv_portgroup" else vim.Network
        device = devices[nic.key]
        device.backing = _backing(session, refs.mo(session, network_type, target.moref))
        changes.append(vim.vm.device.VirtualDeviceSpec(operation="edit", device=device))
    return changes


def reconfigure_vm(
    session: Any,
    vm_ref: str,
    *,
    nested_hv: bool | None = None,
    num_cpus: int | None = None,
    memory_mb: int | None = None,
    annotation: str | None = None,
    networks: Mapping[str, str] | None = None,
    nic_networks: Sequence[str | None] | None = None,
    extra_config: Mapping[str, str] | None = None,
    on_progress: ProgressCallback | None = None,
    deadline: float | None = None,
) -> bool:
    """Change what is given (None leaves it alone); return False when nothing was asked.

    ``networks`` maps a network name the VM's NICs are on to the port group they should
    move to, e.g. {"Nestlab-Lab-Template": "lab-42"}. ``nic_networks`` instead names the
    port group of each adapter in device order (None leaves that adapter alone), for VMs
    whose adapters share a source network but go to different lab networks. Targets
    must exist: the simulator breaks on a NIC pointed at a missing network, so it is
    checked first.
    """
    _positive(num_cpus, "The number of CPUs")
    _positive(memory_mb, "Memory (MB)")
    vm = refs.resolve(session, vm_ref, vim.VirtualMachine)
    spec = vim.vm.ConfigSpec()
    changed = False
    if nested_hv is not None:
        spec.nestedHVEnabled, changed = nested_hv, True
    if num_cpus is not None:
        spec.numCPUs, changed = num_cpus, True
    if memory_mb is not None:
        spec.memoryMB, changed = memory_mb, True
    if annotation is not None:
        spec.annotation, changed = annotation, True
    if networks and nic_networks:
        raise InvalidArgument("Give either networks or nic_networks, not both.")
    if networks:
        spec.deviceChange, changed = _nic_changes(session, vm, networks), True
    if nic_networks:
        spec.deviceChange, changed = _nic_changes_by_index(session, vm, nic_networks), True
    if extra_config:
        # ``guestinfo.*`` keys are readable inside the guest through VMware Tools
        # (``vmtoolsd --cmd "info-get guestinfo.<key>"``): how a lab's own values reach its VMs.
        spec.extraConfig = [vim.option.OptionValue(key=key, value=value) for key, value in extra_config.items()]
        changed = True
    if not changed:
        return False
    task = vm.ReconfigVM_Task(spec=spec)
    wait_for_task(session, task, action=f"reconfigure {vm_ref}", on_progress=on_progress, deadline=deadline)
    return True


def destroy_vm(
    session: Any,
    vm_ref: str,
    *,
    on_progress: ProgressCallback | None = None,
    deadline: float | None = None,
) -> None:
    """Delete a VM from disk, powering it off first if needed."""
    vm = refs.resolve(session, vm_ref, vim.VirtualMachine)
    end = None if deadline is None else time.monotonic() + deadline
    state = str(props.read(session, vm, ["runtime.powerState"]).get("runtime.powerState"))
    if state != "poweredOff":
        task = vm.PowerOffVM_Task()
        wait_for_task(session, task, action=f"power off {vm_ref} before deleting it", deadline=_left(end))
    task = vm.Destroy_Task()
    wait_for_task(session, task, action=f"delete {vm_ref}", on_progress=on_progress, deadline=_left(end))


def rename_entities(session: Any, names: Mapping[str, str], *, deadline: float | None = None) -> int:
    """Rename several VMs and folders at once (``{moref: new name}``): their names read in one
    call, the ``Rename_Task`` of those not named so yet started together and waited for through
    one collector. Answers how many were renamed; a moref vCenter does not know is ``NotFound``.
    A warm-pool hand-over renames a lab's VMs and folder this way: about a third of the calls
    of a rename and a wait per object (bench/warm_start.py)."""
    wanted = {moref: folders.check_name(name, "name") for moref, name in names.items()}
    objects = {moref: refs.mo(session, refs.type_for_moref(moref) or vim.ManagedEntity, moref) for moref in wanted}
    try:
        current = props.read_many(session, objects.values(), ["name"])
    except vmodl.fault.ManagedObjectNotFound as fault:
        raise NotFound(f"Cannot rename: {fault.obj._moId if fault.obj else 'an object'} is not in vCenter.") from fault
    tasks = [
        objects[moref].Rename_Task(newName=name)
        for moref, name in wanted.items()
        if current.get(moref, {}).get("name") != name
    ]
    wait_for_tasks(session, tasks, action=f"rename {len(tasks)} objects", deadline=deadline)
    return len(tasks)


def _left(end: float | None) -> float | None:
    return None if end is None else max(0.0, end - time.monotonic())
