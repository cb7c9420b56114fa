"""Morefs and inventory paths in, managed objects out (and back).

A "ref" argument is either an inventory path ("/DC0/vm/Nestlab Templates") or a moref
("vm-42", "group-v3"). A string that starts with "/" is tried as a path first, and as a
moref after that: the simulator's datastore morefs look like file paths. Any other string
is tried as a moref, then as a path from the root ("DC0" is the datacenter "/DC0").
"""

from __future__ import annotations

import re
from typing import Any

from pyVmomi import vim, vmodl

from . import props
from .errors import InvalidArgument, NotFound
from .types import Kind

# vCenter moref prefixes ("vm-42" -> "vm", "domain-c7" -> "domain-c") and the simulator's.
_PREFIX_TYPES: dict[str, type] = {
    "vm": vim.VirtualMachine,
    "group-v": vim.Folder,
    "group-h": vim.Folder,
    "group-d": vim.Folder,
    "group-n": vim.Folder,
    "group-s": vim.Folder,
    "folder": vim.Folder,
    "datacenter": vim.Datacenter,
    "domain-c": vim.ClusterComputeResource,
    "clustercomputeresource": vim.ClusterComputeResource,
    "domain-s": vim.ComputeResource,
    "computeresource": vim.ComputeResource,
    "host": vim.HostSystem,
    "resgroup-v": vim.VirtualApp,
    "resgroup": vim.ResourcePool,
    "datastore": vim.Datastore,
    "network": vim.Network,
    "dvportgroup": vim.dvs.DistributedVirtualPortgroup,
    "dvs": vim.DistributedVirtualSwitch,
    "snapshot": vim.vm.Snapshot,
    "task": vim.Task,
}
_MOREF = re.compile(r"^(?P<prefix>.*?)-?\d+$")

# Checked in order: subclasses before their bases.
_KINDS: tuple[tuple[type, str], ...] = (
    (vim.VirtualApp, Kind.VAPP),
    (vim.ResourcePool, Kind.RESOURCE_POOL),
    (vim.ClusterComputeResource, Kind.CLUSTER),
    (vim.ComputeResource, Kind.COMPUTE_RESOURCE),
    (vim.HostSystem, Kind.HOST),
    (vim.Datacenter, Kind.DATACENTER),
    (vim.Folder, Kind.FOLDER),
    (vim.VirtualMachine, Kind.VM),
    (vim.Datastore, Kind.DATASTORE),
    (vim.dvs.DistributedVirtualPortgroup, Kind.DV_PORTGROUP),
    (vim.DistributedVirtualSwitch, Kind.DV_SWITCH),
    (vim.Network, Kind.NETWORK),
)


def type_for_moref(moref: str) -> type | None:
    """The managed object type a moref names, from its prefix; None if unknown."""
    match = _MOREF.match(moref)
    return _PREFIX_TYPES.get(match.group("prefix")) if match else None


def kind_of(obj_or_type: Any) -> str:
    cls = obj_or_type if isinstance(obj_or_type, type) else type(obj_or_type)
    for vim_type, kind in _KINDS:
        if issubclass(cls, vim_type):
            return kind
    return Kind.OTHER


def moref_of(obj: Any) -> str:
    """'vm-42' for a managed object (or the string itself)."""
    return obj if isinstance(obj, str) else obj._moId


def mo(session: Any, vim_type: type, moref: str) -> Any:
    """A managed object handle bound to the session (not checked to exist).

    Touching ``session.content`` first connects a fresh session: otherwise the handle
    would be bound to no stub at all (a thread's first call often resolves a moref).
    """
    session.content  # noqa: B018 - connects on first use
    return vim_type(moref, session.stub)


_WORDS = {Kind.OTHER: "object", Kind.COMPUTE_RESOURCE: "cluster"}


def _describe(types: tuple[type, ...]) -> str:
    kinds = [kind_of(t) for t in types]
    return " or ".join(_WORDS.get(k, k.replace("_", " ")) for k in kinds)


def _by_moref(session: Any, moref: str, types: tuple[type, ...]) -> Any | None:
    inferred = type_for_moref(moref)
    if inferred is not None and not any(issubclass(inferred, t) or issubclass(t, inferred) for t in types):
        return None
    vim_type = inferred if inferred is not None and any(issubclass(inferred, t) for t in types) else types[0]
    obj = mo(session, vim_type, moref)
    try:
        values = props.read(session, obj, ["name"])
    except vmodl.fault.ManagedObjectNotFound:
        return None
    return obj if values else None


def find(session: Any, ref: str, *types: type) -> Any | None:
    """The object a path or moref names, if it exists and is one of ``types``."""
    types = types or (vim.ManagedEntity,)
    ref = (ref or "").strip()
    if not ref:
        raise InvalidArgument("An inventory path or moref is required.")
    obj = None
    if ref == "/":
        obj = session.content.rootFolder
    elif ref.startswith("/"):
        obj = session.content.searchIndex.FindByInventoryPath(ref.strip("/"))
    if obj is None and ref != "/":
        obj = _by_moref(session, ref, types)
    if obj is None and not ref.startswith("/"):
        # "DC0" or "DC0/vm/Labs": a path relative to the root folder.
        obj = session.content.searchIndex.FindByInventoryPath(ref)
    if obj is None:
        return None
    if not isinstance(obj, types):
        raise InvalidArgument(f"'{ref}' is a {kind_of(obj).replace('_', ' ')}, not a {_describe(types)}.")
    return obj


def resolve(session: Any, ref: str, *types: type) -> Any:
    """Like ``find``, but a missing object raises ``NotFound`` with words."""
    obj = find(session, ref, *types)
    if obj is None:
        what = _describe(types or (vim.ManagedEntity,))
        raise NotFound(f"No {what} '{ref}' in vCenter.")
    return obj


def resolve_in(session: Any, datacenter: str, folder: str, ref: str, *types: type) -> Any:
    """Resolve ``ref``; a relative path is looked up under the datacenter's ``folder``
    ("host", "vm", "network", "datastore") first: ("DC0", "host", "DC0_C0")."""
    if not ref.startswith("/"):
        obj = session.content.searchIndex.FindByInventoryPath(f"{datacenter.strip('/')}/{folder}/{ref.strip('/')}")
        if obj is not None and isinstance(obj, types or (vim.ManagedEntity,)):
            return obj
    return resolve(session, ref, *types)


def datacenter_of(session: Any, obj: Any) -> Any:
    """The datacenter an object lives in."""
    for entity, _ in props.ancestry(session, obj):
        if isinstance(entity, vim.Datacenter):
            return entity
    raise NotFound(f"'{moref_of(obj)}' is not inside a datacenter.")
