"""Isolated lab networks: a port group per lab, with a VLAN and nested-ESXi security policy.

On a standard vSwitch a port group exists per host, so it is added on every host of the
cluster; "already there" (DuplicateName, AlreadyExists) counts as done. On a distributed
switch one distributed port group is added. Nested ESXi needs promiscuous mode, forged
transmits and MAC changes allowed on the port group its hosts sit on.
"""

from __future__ import annotations

import contextlib
from typing import Any

from pyVmomi import vim

from . import props, refs
from .errors import InvalidArgument, NotFound
from .tasks import wait_for_task
from .types import Kind, NetworkInfo, PortGroupSpec, ProgressCallback

_ALREADY_THERE = (vim.fault.DuplicateName, vim.fault.AlreadyExists)
MAX_VLAN = 4094


def _datacenter(session: Any, ref: str) -> Any:
    return refs.resolve(session, ref, vim.Datacenter)


def list_networks(session: Any, datacenter_ref: str) -> list[NetworkInfo]:
    """Every network (standard and distributed port groups) of a datacenter, by name."""
    found = props.read_view(session, _datacenter(session, datacenter_ref), {vim.Network: ["name"]})
    infos = [
        NetworkInfo(
            moref=obj._moId,
            name=values.get("name", ""),
            kind=Kind.DV_PORTGROUP if isinstance(obj, vim.dvs.DistributedVirtualPortgroup) else Kind.NETWORK,
        )
        for obj, values in found
    ]
    return sorted(infos, key=lambda info: info.name.lower())


def find_network(session: Any, datacenter_ref: str, name: str) -> NetworkInfo | None:
    """The network called ``name`` in a datacenter, or None."""
    for info in list_networks(session, datacenter_ref):
        if info.name == name:
            return info
    return None


def find_switch(session: Any, datacenter: Any, switch: str) -> Any | None:
    """The distributed switch called ``switch`` in the datacenter, or None (a standard vSwitch)."""
    for obj, values in props.read_view(session, datacenter, {vim.DistributedVirtualSwitch: ["name"]}):
        if values.get("name") == switch:
            return obj
    return None


def cluster_hosts(session: Any, datacenter: str, cluster_ref: str) -> list[tuple[Any, dict[str, Any]]]:
    """[(host, {name, networkSystem, vswitches})] for a cluster (or standalone host).

    ``cluster_ref`` may be relative to the datacenter's host folder ("DC0_C0").
    """
    compute = refs.resolve_in(session, datacenter, "host", cluster_ref, vim.ComputeResource, vim.HostSystem)
    if isinstance(compute, vim.HostSystem):
        hosts = [compute]
    else:
        hosts = list(props.read(session, compute, ["host"]).get("host") or ())
    values = props.read_many(session, hosts, ["name", "configManager.networkSystem", "config.network.vswitch"])
    return [(host, values.get(host._moId, {})) for host in hosts]


def _validate(spec: PortGroupSpec) -> None:
    if not spec.name.strip():
        raise InvalidArgument("A port group needs a name.")
    if not 0 <= spec.vlan_id <= MAX_VLAN:
        raise InvalidArgument(f"VLAN id {spec.vlan_id} is outside 0-{MAX_VLAN}.")


def _standard_spec(spec: PortGroupSpec, switch: str) -> vim.host.PortGroup.Specification:
    security = vim.host.NetworkPolicy.SecurityPolicy(
        allowPromiscuous=spec.promiscuous, forgedTransmits=spec.forged_transmits, macChanges=spec.mac_changes
    )
    return vim.host.PortGroup.Specification(
        name=spec.name,
        vlanId=spec.vlan_id,
        vswitchName=switch,
        policy=vim.host.NetworkPolicy(security=security),
    )


def _dv_spec(spec: PortGroupSpec) -> vim.dvs.DistributedVirtualPortgroup.ConfigSpec:
    def flag(value: bool) -> vim.BoolPolicy:
        return vim.BoolPolicy(inherited=False, value=value)

    setting = vim.dvs.VmwareDistributedVirtualSwitch.VmwarePortConfigPolicy(
        vlan=vim.dvs.VmwareDistributedVirtualSwitch.VlanIdSpec(inherited=False, vlanId=spec.vlan_id),
        securityPolicy=vim.dvs.VmwareDistributedVirtualSwitch.SecurityPolicy(
            inherited=False,
            allowPromiscuous=flag(spec.promiscuous),
            forgedTransmits=flag(spec.forged_transmits),
            macChanges=flag(spec.mac_changes),
        ),
    )
    return vim.dvs.DistributedVirtualPortgroup.ConfigSpec(
        name=spec.name, type="earlyBinding", numPorts=8, autoExpand=True, defaultPortConfig=setting
    )


def _dv_portgroup(session: Any, dvs: Any, name: str) -> Any | None:
    groups = props.read(session, dvs, ["portgroup"]).get("portgroup") or ()
    for moref, values in props.read_many(session, groups, ["name"]).items():
        if values.get("name") == name:
            return refs.mo(session, vim.dvs.DistributedVirtualPortgroup, moref)
    return None


def ensure_port_group(
    session: Any,
    *,
    datacenter: str,
    cluster: str,
    switch: str,
    spec: PortGroupSpec,
    on_progress: ProgressCallback | None = None,
    deadline: float | None = None,
) -> NetworkInfo:
    """Make the lab's port group on ``switch`` (a distributed switch's name, or a standard
    vSwitch on every host of ``cluster``) unless it is already there."""
    _validate(spec)
    dc = _datacenter(session, datacenter)
    dvs = find_switch(session, dc, switch)
    if dvs is not None:
        group = _dv_portgroup(session, dvs, spec.name)
        if group is None:
            task = dvs.AddDVPortgroup_Task([_dv_spec(spec)])
            action = f"add port group '{spec.name}' to {switch}"
            wait_for_task(session, task, action=action, on_progress=on_progress, deadline=deadline)
            group = _dv_portgroup(session, dvs, spec.name)
        moref = group._moId if group is not None else None
        return NetworkInfo(moref=moref, name=spec.name, kind=Kind.DV_PORTGROUP, vlan_id=spec.vlan_id)
    hosts = cluster_hosts(session, datacenter, cluster)
    if not hosts:
        raise NotFound(f"'{cluster}' has no hosts to add the port group to.")
    names = []
    for done, (host, values) in enumerate(hosts, start=1):
        host_name = values.get("name", host._moId)
        switches = {vswitch.name for vswitch in values.get("config.network.vswitch") or ()}
        if switch not in switches:
            raise NotFound(f"Host {host_name} has no switch '{switch}' (it has: {', '.join(sorted(switches))}).")
        with contextlib.suppress(*_ALREADY_THERE):  # already there counts as done
            values["configManager.networkSystem"].AddPortGroup(portgrp=_standard_spec(spec, switch))
        names.append(host_name)
        if on_progress is not None:
            on_progress(done * 100 // len(hosts), f"port group on {host_name}")
    network = find_network(session, datacenter, spec.name)
    return NetworkInfo(
        moref=network.moref if network else None,
        name=spec.name,
        kind=Kind.NETWORK,
        vlan_id=spec.vlan_id,
        hosts=tuple(names),
    )


def remove_port_group(
    session: Any,
    *,
    datacenter: str,
    cluster: str,
    switch: str,
    name: str,
    on_progress: ProgressCallback | None = None,
    deadline: float | None = None,
) -> bool:
    """Remove the lab's port group from the switch (every host, for a standard vSwitch).

    Returns False when it was not there (so deleting a lab twice is harmless).
    """
    dc = _datacenter(session, datacenter)
    dvs = find_switch(session, dc, switch)
    if dvs is not None:
        group = _dv_portgroup(session, dvs, name)
        if group is None:
            return False
        task = group.Destroy_Task()
        wait_for_task(session, task, action=f"remove port group '{name}'", on_progress=on_progress, deadline=deadline)
        return True
    removed = False
    for _, values in cluster_hosts(session, datacenter, cluster):
        try:
            values["configManager.networkSystem"].RemovePortGroup(pgName=name)
            removed = True
        except vim.fault.NotFound:
            pass
    return removed
