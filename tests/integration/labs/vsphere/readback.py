"""An independent look into the simulator: its own pyVmomi session and PropertyCollector.

Tests check what the driver did in vCenter itself, not through the driver's own reads.
"""

from __future__ import annotations

from typing import Any

from pyVim.connect import Disconnect, SmartConnect
from pyVmomi import vim, vmodl

PC = vmodl.query.PropertyCollector

TYPES = {
    "vm": vim.VirtualMachine,
    "folder": vim.Folder,
    "pool": vim.ResourcePool,
    "host": vim.HostSystem,
    "network": vim.Network,
    "dvpg": vim.dvs.DistributedVirtualPortgroup,
    "task": vim.Task,
    "snapshot": vim.vm.Snapshot,
    "cluster": vim.ClusterComputeResource,
}


class VCenter:
    def __init__(self, simulator: Any) -> None:
        self.si = SmartConnect(
            protocol="http",
            host=simulator.host,
            port=simulator.port,
            user=simulator.username,
            pwd=simulator.password,
        )
        self.content = self.si.RetrieveContent()

    def close(self) -> None:
        Disconnect(self.si)

    def obj(self, kind: str, moref: str) -> Any:
        return TYPES[kind](moref, self.si._stub)

    def read(self, kind: str, moref: str, *paths: str) -> dict[str, Any]:
        """Properties through the PropertyCollector; {} when the object does not exist."""
        obj = self.obj(kind, moref)
        spec = PC.FilterSpec(
            objectSet=[PC.ObjectSpec(obj=obj)],
            propSet=[PC.PropertySpec(type=type(obj), pathSet=list(paths))],
        )
        try:
            result = self.content.propertyCollector.RetrievePropertiesEx([spec], PC.RetrieveOptions())
        except vmodl.fault.ManagedObjectNotFound:
            return {}
        if result is None or not result.objects:
            return {}
        return {prop.name: prop.val for prop in result.objects[0].propSet or ()}

    def exists(self, kind: str, moref: str) -> bool:
        return bool(self.read(kind, moref, "name"))

    def find(self, path: str) -> Any:
        return self.content.searchIndex.FindByInventoryPath(path.strip("/"))

    def child_names(self, folder: str) -> list[str]:
        children = self.read("folder", folder, "childEntity").get("childEntity") or ()
        names = []
        for child in children:
            kind = "folder" if isinstance(child, vim.Folder) else "vm"
            names.append(self.read(kind, child._moId, "name").get("name"))
        return names

    def vm_nic_backings(self, moref: str) -> list[Any]:
        devices = self.read("vm", moref, "config.hardware.device").get("config.hardware.device") or ()
        return [d.backing for d in devices if isinstance(d, vim.vm.device.VirtualEthernetCard)]

    def custom_values(self, moref: str) -> dict[str, str]:
        fields = self.read_manager_fields()
        values: dict[str, str] = {}
        for value in self.read("vm", moref, "customValue").get("customValue") or ():
            values[fields[value.key][0]] = value.value
        return values

    def read_manager_fields(self) -> dict[int, tuple[str, Any]]:
        manager = self.content.customFieldsManager
        spec = PC.FilterSpec(
            objectSet=[PC.ObjectSpec(obj=manager)],
            propSet=[PC.PropertySpec(type=vim.CustomFieldsManager, pathSet=["field"])],
        )
        result = self.content.propertyCollector.RetrievePropertiesEx([spec], PC.RetrieveOptions())
        fields = result.objects[0].propSet[0].val if result.objects[0].propSet else ()
        return {field.key: (field.name, field.managedObjectType) for field in fields}

    def host_port_groups(self, cluster_path: str) -> dict[str, dict[str, Any]]:
        """{host name: {port group name: spec}} for every host of a cluster."""
        cluster = self.find(cluster_path)
        hosts = self.read("cluster", cluster._moId, "host")["host"]
        result = {}
        for host in hosts:
            values = self.read("host", host._moId, "name", "configManager.networkSystem")
            system = values["configManager.networkSystem"]
            spec = PC.FilterSpec(
                objectSet=[PC.ObjectSpec(obj=system)],
                propSet=[PC.PropertySpec(type=vim.host.NetworkSystem, pathSet=["networkInfo.portgroup"])],
            )
            found = self.content.propertyCollector.RetrievePropertiesEx([spec], PC.RetrieveOptions())
            props = found.objects[0].propSet if found and found.objects else ()
            groups = props[0].val if props else ()
            result[values["name"]] = {group.spec.name: group.spec for group in groups}
        return result

    def sessions(self) -> list[Any]:
        manager = self.content.sessionManager
        spec = PC.FilterSpec(
            objectSet=[PC.ObjectSpec(obj=manager)],
            propSet=[PC.PropertySpec(type=vim.SessionManager, pathSet=["sessionList"])],
        )
        result = self.content.propertyCollector.RetrievePropertiesEx([spec], PC.RetrieveOptions())
        return list(result.objects[0].propSet[0].val) if result.objects[0].propSet else []
