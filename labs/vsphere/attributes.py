"""Custom attributes on VMs ("nestlab.owner", "nestlab.lab_id"): how the portal finds its VMs."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pyVmomi import vim

from . import inventory, props, refs
from .errors import InvalidArgument
from .types import InventoryItem, Kind


def _manager(session: Any) -> Any:
    manager = session.content.customFieldsManager
    if manager is None:
        raise InvalidArgument("This vCenter has no custom attributes (is it an ESXi host?).")
    return manager


def _vm_fields(session: Any) -> dict[str, int]:
    """{name: key} of the fields that apply to VMs (VM-only and global ones)."""
    fields = props.read(session, _manager(session), ["field"]).get("field") or ()
    return {
        field.name: field.key
        for field in fields
        if field.managedObjectType is None or issubclass(vim.VirtualMachine, field.managedObjectType)
    }


def ensure_field(session: Any, name: str) -> int:
    """The key of the VM custom attribute ``name``, defined now if missing."""
    if not name.strip():
        raise InvalidArgument("A custom attribute needs a name.")
    for _ in range(2):
        key = _vm_fields(session).get(name)
        if key is not None:
            return key
        try:
            return _manager(session).AddCustomFieldDef(name=name, moType=vim.VirtualMachine).key
        except vim.fault.DuplicateName:
            continue  # defined concurrently (or for another type): look again
    raise InvalidArgument(f"The custom attribute '{name}' exists for another kind of object.")


def set_custom_values(session: Any, vm_ref: str, values: Mapping[str, str]) -> None:
    """Write custom attribute values on a VM, defining the attributes as needed."""
    vm = refs.resolve(session, vm_ref, vim.VirtualMachine)
    manager = _manager(session)
    for name, value in values.items():
        manager.SetField(entity=vm, key=ensure_field(session, name), value=str(value))


def set_custom_value_on_vms(session: Any, vm_refs: list[str], name: str, value: str) -> None:
    """One custom attribute's value on several VMs: the attribute looked up (or defined) once,
    then one ``SetField`` per VM, no look-up of each VM (a moref vCenter does not know fails)."""
    key = ensure_field(session, name)
    manager = _manager(session)
    for vm_ref in vm_refs:
        manager.SetField(entity=refs.mo(session, vim.VirtualMachine, vm_ref), key=key, value=str(value))


def get_custom_values(session: Any, vm_ref: str) -> dict[str, str]:
    vm = refs.resolve(session, vm_ref, vim.VirtualMachine)
    return inventory.custom_values(session, props.read(session, vm, ["customValue"]).get("customValue"))


def attribute_values(session: Any, name: str, *, under: str = "/") -> dict[str, tuple[str, str]] | None:
    """{moref: (VM name, value)} for every VM under a folder that carries attribute ``name``;
    None when vCenter has no such attribute at all (not the same as "no VM carries it").

    One PropertyCollector read, no inventory paths: what the reconciler scans.
    """
    names = {key: field for field, key in _vm_fields(session).items()}
    if name not in names.values():
        return None
    container = refs.resolve(session, under, vim.Folder, vim.Datacenter)
    found = props.read_view(session, container, {vim.VirtualMachine: ["name", "customValue"]})
    values_by_vm: dict[str, tuple[str, str]] = {}
    for vm, values in found:
        for custom in values.get("customValue") or ():
            if names.get(custom.key) == name:
                # The simulator appends rather than replaces: the last value wins.
                values_by_vm[vm._moId] = (values.get("name", ""), getattr(custom, "value", "") or "")
    return values_by_vm


def find_vms_by_attribute(
    session: Any, name: str, value: str | None = None, *, under: str = "/"
) -> list[InventoryItem]:
    """VMs under a folder whose attribute ``name`` is set (to ``value``, if given).

    The reconciler's question: which VMs in vCenter carry a lab id?
    """
    names = {key: field for field, key in _vm_fields(session).items()}
    if name not in names.values():
        return []
    container = refs.resolve(session, under, vim.Folder, vim.Datacenter)
    found = props.read_view(session, container, {vim.VirtualMachine: ["name", "customValue", "config.template"]})
    items = []
    for vm, values in found:
        current: dict[str, str] = {}
        for custom in values.get("customValue") or ():
            if custom.key in names:
                current[names[custom.key]] = getattr(custom, "value", "") or ""
        if name in current and (value is None or current[name] == value):
            kind = Kind.TEMPLATE if values.get("config.template") else Kind.VM
            path = props.inventory_path(session, vm)
            items.append(InventoryItem(moref=vm._moId, name=values.get("name", ""), kind=kind, path=path))
    return sorted(items, key=lambda item: item.name)
