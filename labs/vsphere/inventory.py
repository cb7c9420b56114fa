"""Finding things: objects by path or moref, folder listings for pickers, VM details."""

from __future__ import annotations

from typing import Any

from pyVmomi import vim

from . import props, refs
from .snapshots import snapshot_tree
from .types import InventoryItem, Kind, Nic, ServerInfo, VMInfo

_VM_PATHS = [
    "name",
    "runtime.powerState",
    "config.hardware.numCPU",
    "config.hardware.memoryMB",
    "config.hardware.device",
    "config.nestedHVEnabled",
    "config.template",
    "config.annotation",
    "config.instanceUuid",
    "config.extraConfig",
    "guest.ipAddress",
    "overallStatus",
    "customValue",
    "snapshot",
    "network",
]


def server_info(session: Any) -> ServerInfo:
    about = session.content.about
    return ServerInfo(
        full_name=about.fullName,
        api_version=about.apiVersion,
        instance_uuid=about.instanceUuid or "",
        username=session.endpoint.username,
    )


def _item(obj: Any, name: str, path: str, template: bool = False) -> InventoryItem:
    kind = refs.kind_of(obj)
    if kind == Kind.VM and template:
        kind = Kind.TEMPLATE
    return InventoryItem(moref=obj._moId, name=name, kind=kind, path=path)


def find_item(session: Any, ref: str) -> InventoryItem | None:
    """The object at an inventory path or with a moref, or None."""
    obj = refs.find(session, ref)
    return None if obj is None else _describe(session, obj)


def get_item(session: Any, ref: str) -> InventoryItem:
    """Like ``find_item``, but raises NotFound."""
    return _describe(session, refs.resolve(session, ref))


def _describe(session: Any, obj: Any) -> InventoryItem:
    if obj._moId == session.content.rootFolder._moId:
        return InventoryItem(moref=obj._moId, name="", kind=Kind.FOLDER, path="/")
    template = False
    if isinstance(obj, vim.VirtualMachine):
        template = bool(props.read(session, obj, ["config.template"]).get("config.template"))
    chain = props.ancestry(session, obj)
    name = chain[0][1] if chain else ""
    return _item(obj, name, "/" + "/".join(n for _, n in reversed(chain)), template)


def _container(session: Any, ref: str) -> tuple[Any, str]:
    """A folder to list: datacenters stand for their VM folder."""
    obj = refs.resolve(session, ref, vim.Folder, vim.Datacenter)
    if obj._moId == session.content.rootFolder._moId:
        return obj, ""
    path = props.inventory_path(session, obj)
    if isinstance(obj, vim.Datacenter):
        folder = props.read(session, obj, ["vmFolder"])["vmFolder"]
        return folder, path + "/vm"
    return obj, path


def list_children(session: Any, ref: str = "/") -> list[InventoryItem]:
    """Direct children of a folder (or a datacenter's VM folder): folders first, then by name."""
    folder, path = _container(session, ref)
    found = props.read_view(
        session,
        folder,
        {vim.ManagedEntity: ["name"], vim.VirtualMachine: ["name", "config.template"]},
        recursive=False,
    )
    items = [
        _item(
            obj,
            values.get("name", ""),
            f"{path}/{values.get('name', '')}",
            values.get("config.template", False),
        )
        for obj, values in found
    ]
    return sorted(items, key=lambda item: (item.kind not in (Kind.FOLDER, Kind.DATACENTER), item.name.lower()))


def search_vms(
    session: Any, under: str, text: str = "", *, recursive: bool = True, limit: int = 500
) -> list[InventoryItem]:
    """VMs and templates under a folder whose name contains ``text`` (case-insensitive)."""
    folder, base = _container(session, under)
    found = props.read_view(
        session,
        folder,
        {vim.Folder: ["name", "parent"], vim.VirtualMachine: ["name", "parent", "config.template"]},
        recursive=recursive,
    )
    by_id = {obj._moId: (obj, values) for obj, values in found}

    def path_of(values: dict[str, Any]) -> str:
        names = [values.get("name", "")]
        parent = values.get("parent")
        while parent is not None and parent._moId in by_id:
            _, parent_values = by_id[parent._moId]
            names.append(parent_values.get("name", ""))
            parent = parent_values.get("parent")
        return base + "/" + "/".join(reversed(names))

    needle = text.strip().lower()
    items = [
        _item(obj, values.get("name", ""), path_of(values), values.get("config.template", False))
        for obj, values in found
        if isinstance(obj, vim.VirtualMachine) and needle in values.get("name", "").lower()
    ]
    return sorted(items, key=lambda item: item.path.lower())[:limit]


def find_vm(session: Any, folder: str, name: str) -> str | None:
    """The moref of the VM called ``name`` directly in ``folder``, or None.

    The idempotency helper: a retried step looks for what it made before making it again.
    """
    obj, _ = _container(session, folder)
    for vm, values in props.read_view(session, obj, {vim.VirtualMachine: ["name"]}, recursive=False):
        if values.get("name") == name:
            return vm._moId
    return None


def custom_field_names(session: Any) -> dict[int, str]:
    manager = session.content.customFieldsManager
    if manager is None:
        return {}
    fields = props.read(session, manager, ["field"]).get("field") or ()
    return {field.key: field.name for field in fields}


def custom_values(session: Any, raw_values: Any) -> dict[str, str]:
    """Custom attribute values by field name; the simulator appends, so the last one wins."""
    names = custom_field_names(session) if raw_values else {}
    values: dict[str, str] = {}
    for value in raw_values or ():
        name = names.get(value.key)
        if name is not None:
            values[name] = getattr(value, "value", "") or ""
    return values


def _network_names(session: Any, networks: Any) -> tuple[dict[str, str], dict[str, str]]:
    """({moref: name}, {dv portgroup key: moref}) for a VM's networks."""
    networks = list(networks or ())
    names = {moref: values.get("name", "") for moref, values in props.read_many(session, networks, ["name"]).items()}
    dv_groups = [n for n in networks if isinstance(n, vim.dvs.DistributedVirtualPortgroup)]
    keys = {values.get("key", moref): moref for moref, values in props.read_many(session, dv_groups, ["key"]).items()}
    return names, keys


def _nics(devices: Any, names: dict[str, str], dv_keys: dict[str, str]) -> tuple[Nic, ...]:
    nics = []
    for device in devices or ():
        if not isinstance(device, vim.vm.device.VirtualEthernetCard):
            continue
        backing = device.backing
        network = moref = None
        if isinstance(backing, vim.vm.device.VirtualEthernetCard.NetworkBackingInfo):
            network = backing.deviceName
            moref = backing.network._moId if backing.network is not None else None
        elif isinstance(backing, vim.vm.device.VirtualEthernetCard.DistributedVirtualPortBackingInfo):
            key = backing.port.portgroupKey if backing.port is not None else None
            moref = dv_keys.get(key, key)
            network = names.get(moref) if moref else None
        connectable = device.connectable
        nics.append(
            Nic(
                label=device.deviceInfo.label if device.deviceInfo else f"NIC {device.key}",
                key=device.key,
                mac_address=device.macAddress or None,
                network=network,
                network_moref=moref,
                connected=bool(connectable and connectable.connected),
            )
        )
    return tuple(nics)


def _disk_gb(devices: Any) -> float:
    total_kb = sum(
        device.capacityInKB or 0 for device in devices or () if isinstance(device, vim.vm.device.VirtualDisk)
    )
    return round(total_kb / (1024 * 1024), 2)


def vm_info(session: Any, ref: str) -> VMInfo:
    """Everything the portal shows about one VM, in a few PropertyCollector round trips."""
    vm = refs.resolve(session, ref, vim.VirtualMachine)
    values = props.read(session, vm, _VM_PATHS)
    devices = values.get("config.hardware.device")
    names, dv_keys = _network_names(session, values.get("network"))
    snapshot = values.get("snapshot")
    current = snapshot.currentSnapshot._moId if snapshot is not None and snapshot.currentSnapshot else None
    return VMInfo(
        moref=vm._moId,
        name=values.get("name", ""),
        path=props.inventory_path(session, vm),
        power_state=str(values.get("runtime.powerState", "unknown")),
        num_cpu=values.get("config.hardware.numCPU") or 0,
        memory_mb=values.get("config.hardware.memoryMB") or 0,
        disk_gb=_disk_gb(devices),
        nested_hv=bool(values.get("config.nestedHVEnabled")),
        is_template=bool(values.get("config.template")),
        guest_ip=values.get("guest.ipAddress") or None,
        overall_status=str(values.get("overallStatus", "gray")),
        annotation=values.get("config.annotation") or "",
        custom_values=custom_values(session, values.get("customValue")),
        nics=_nics(devices, names, dv_keys),
        snapshots=snapshot_tree(snapshot.rootSnapshotList if snapshot is not None else (), current=current),
        current_snapshot=current,
        instance_uuid=values.get("config.instanceUuid") or None,
        guest_info={
            option.key: str(option.value)
            for option in values.get("config.extraConfig") or ()
            if option.key.startswith("guestinfo.")
        },
    )
