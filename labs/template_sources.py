"""What may be a template source: never a VM of a Nestlab lab, nor anything in Nestlab's lab folder,
and, where an admin restricted the endpoint, only VMs in its chosen folders.

Issue 10, finding 2 (docs/security.md): the picker listed every VM the portal's account sees, so an
instructor of one course picked a student's lab VM of another course, published it (taking a
snapshot on it) and cloned the student's disk. A lab VM is known three ways, each checked where
it can be: a ``LabVM`` row (or an orphan Nestlab found), the ``nestlab.lab_id`` custom attribute
Nestlab writes on every VM it builds, and its place under the endpoint's lab folder. The picker
hides them, adding one refuses it (``courses.services.template_vm_add``, through the check
registered in ``labs.apps``) and publishing refuses it from what vCenter says (``labs.jobs.publish``).
"""

from __future__ import annotations

from collections.abc import Iterable

from courses.models import LAB_VM_SOURCE_WORDS, VCenterEndpoint, path_under
from labs.models import LAB_ATTRIBUTE, LabVM, Orphan
from labs.vsphere import InventoryItem, Kind, VMInfo


def lab_vm_morefs(endpoint: VCenterEndpoint, morefs: Iterable[str]) -> set[str]:
    """Which of these morefs are VMs of Nestlab labs on the endpoint, as the database knows them."""
    wanted = {moref for moref in morefs if moref}
    if not wanted:
        return set()
    known = set(LabVM.objects.filter(lab__endpoint=endpoint, moref__in=wanted).values_list("moref", flat=True))
    known |= set(
        Orphan.objects.filter(endpoint=endpoint, kind=Orphan.Kind.VM, moref__in=wanted).values_list("moref", flat=True)
    )
    return known


def source_refusal(endpoint: VCenterEndpoint, *, moref: str, path: str = "") -> str | None:
    """Why a VM cannot be added as a template source, from what the portal knows without asking
    vCenter (the database, and the path the picker gave); None when nothing says no. Publish
    asks vCenter again (``vm_refusal``)."""
    if lab_vm_morefs(endpoint, [moref]):
        return LAB_VM_SOURCE_WORDS
    return endpoint.source_path_refusal(path)


def vm_refusal(endpoint: VCenterEndpoint, info: VMInfo) -> str | None:
    """Why this VM, as vCenter describes it now, cannot be a template source; None if it can."""
    if info.custom_values.get(LAB_ATTRIBUTE):
        return LAB_VM_SOURCE_WORDS
    return source_refusal(endpoint, moref=info.moref, path=info.path)


def pickable(endpoint: VCenterEndpoint, items: list[InventoryItem]) -> list[InventoryItem]:
    """The picker's items without Nestlab's lab folder, lab VMs, and (when the endpoint names
    source folders) anything that neither is in one of them nor leads to one."""
    lab_vms = lab_vm_morefs(endpoint, (item.moref for item in items if item.kind in (Kind.VM, Kind.TEMPLATE)))
    folders = endpoint.source_folders
    shown = []
    for item in items:
        if item.moref in lab_vms or path_under(item.path, endpoint.labs_folder_path):
            continue
        if folders and not any(path_under(item.path, folder) or _leads_to(item, folder) for folder in folders):
            continue
        shown.append(item)
    return shown


def _leads_to(item: InventoryItem, folder: str) -> bool:
    """A folder or datacenter on the way down to an allowed folder (so the picker can browse to it)."""
    return item.kind not in (Kind.VM, Kind.TEMPLATE) and path_under(folder, item.path)


RUNNING_STATES = frozenset({LabVM.PowerState.ON, LabVM.PowerState.SUSPENDED})


def planned_changes(vm_role: str, nested_hv_required: bool, info: VMInfo) -> list[str]:
    """What preparing (``labs.jobs.prepare``) would do to one source VM, in words (empty: nothing
    to do). The confirmation page shows these, and the job follows the same rule."""
    changes = []
    if info.power_state in RUNNING_STATES:
        changes.append(f"power off {vm_role} ({info.name}), which is {power_words(info.power_state)}")
    if nested_hv_required and not info.nested_hv:
        changes.append(f"turn on nested hardware virtualization on {vm_role} ({info.name})")
    return changes


def power_words(state: str) -> str:
    """A source VM's power state as the refusals say it ("powered on")."""
    return {LabVM.PowerState.ON: "powered on", LabVM.PowerState.SUSPENDED: "suspended"}.get(state, state)
