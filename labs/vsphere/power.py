"""Power actions. A VM already in the wanted state gets InvalidState with words, not a fault."""

from __future__ import annotations

import logging
from typing import Any

from pyVmomi import vim, vmodl

from . import props, refs
from .errors import InvalidArgument, InvalidState, NotFound, fault_words
from .tasks import wait_for_task, wait_for_tasks, wait_for_value
from .types import ProgressCallback

ON, OFF, SUSPENDED = "poweredOn", "poweredOff", "suspended"
log = logging.getLogger(__name__)

_STATE_WORDS = {ON: "powered on", OFF: "powered off", SUSPENDED: "suspended"}


def state_words(state: str) -> str:
    return _STATE_WORDS.get(state, state)


def _vm(session: Any, vm_ref: str) -> tuple[Any, str, str]:
    """(vm, name, power state); templates are refused, they have no power."""
    vm = refs.resolve(session, vm_ref, vim.VirtualMachine)
    values = props.read(session, vm, ["name", "runtime.powerState", "config.template"])
    name = values.get("name", vm_ref)
    if values.get("config.template"):
        raise InvalidArgument(f"'{name}' is a template; templates cannot be powered on or off.")
    return vm, name, str(values.get("runtime.powerState", "unknown"))


def power_state(session: Any, vm_ref: str) -> str:
    """ "poweredOn", "poweredOff" or "suspended"."""
    vm = refs.resolve(session, vm_ref, vim.VirtualMachine)
    return str(props.read(session, vm, ["runtime.powerState"]).get("runtime.powerState", "unknown"))


def power_on(
    session: Any, vm_ref: str, *, on_progress: ProgressCallback | None = None, deadline: float | None = None
) -> None:
    vm, name, state = _vm(session, vm_ref)
    if state == ON:
        raise InvalidState(f"VM '{name}' is already powered on.")
    task = vm.PowerOnVM_Task()
    wait_for_task(session, task, action=f"power on '{name}'", on_progress=on_progress, deadline=deadline)


def power_on_many(session: Any, vm_refs: list[str], *, deadline: float | None = None) -> int:
    """Power on several VMs together (one boot-order group of a lab): their states read in one
    call, the ``PowerOnVM_Task`` of those not on started together and waited for through one
    collector. Answers how many were powered on; a VM vCenter does not know is ``NotFound``."""
    vms = {vm_ref: refs.mo(session, vim.VirtualMachine, vm_ref) for vm_ref in vm_refs}
    try:
        states = props.read_many(session, vms.values(), ["runtime.powerState"])
    except vmodl.fault.ManagedObjectNotFound as fault:
        raise NotFound(f"Cannot power on: {fault.obj._moId if fault.obj else 'a VM'} is not in vCenter.") from fault
    tasks = [
        vm.PowerOnVM_Task() for vm_ref, vm in vms.items() if str(states.get(vm_ref, {}).get("runtime.powerState")) != ON
    ]
    wait_for_tasks(session, tasks, action=f"power on {len(tasks)} VMs", deadline=deadline)
    return len(tasks)


def power_off(
    session: Any, vm_ref: str, *, on_progress: ProgressCallback | None = None, deadline: float | None = None
) -> None:
    """Hard power off (like pulling the plug)."""
    vm, name, state = _vm(session, vm_ref)
    if state == OFF:
        raise InvalidState(f"VM '{name}' is already powered off.")
    task = vm.PowerOffVM_Task()
    wait_for_task(session, task, action=f"power off '{name}'", on_progress=on_progress, deadline=deadline)


def reset(
    session: Any, vm_ref: str, *, on_progress: ProgressCallback | None = None, deadline: float | None = None
) -> None:
    """Hard reset of a running VM."""
    vm, name, state = _vm(session, vm_ref)
    if state != ON:
        raise InvalidState(f"VM '{name}' is {state_words(state)}; only a running VM can be reset.")
    task = vm.ResetVM_Task()
    wait_for_task(session, task, action=f"reset '{name}'", on_progress=on_progress, deadline=deadline)


def shutdown_guest(
    session: Any,
    vm_ref: str,
    *,
    timeout: float = 120.0,
    on_progress: ProgressCallback | None = None,
    deadline: float | None = None,
) -> bool:
    """Ask the guest OS to shut down; power off hard if it has not within ``timeout`` seconds.

    Returns True when the guest shut down by itself, False when it was powered off hard
    (also when the guest could not be asked: VMware Tools not running, or a fault).
    """
    vm, name, state = _vm(session, vm_ref)
    if state != ON:
        raise InvalidState(f"VM '{name}' is {state_words(state)}; only a running VM can be shut down.")
    try:
        vm.ShutdownGuest()
    except vmodl.MethodFault as fault:
        # No Tools, or the guest refused: it cannot shut down by itself.
        log.info("Guest shutdown of %s refused (%s); powering off", name, fault_words(fault))
    else:
        if wait_for_value(session, vm, "runtime.powerState", OFF, timeout=timeout):
            if on_progress is not None:
                on_progress(100, None)
            return True
    if power_state(session, vm._moId) != OFF:
        task = vm.PowerOffVM_Task()
        action = f"power off '{name}' after the guest did not shut down"
        wait_for_task(session, task, action=action, on_progress=on_progress, deadline=deadline)
    return False
