""" "Test connection": does the placement an admin typed in exist in this vCenter?"""

from __future__ import annotations

from typing import Any

from pyVmomi import vim

from . import inventory, networks, props, refs
from .errors import NotFound, translate
from .types import PlacementCheck, PlacementReport

_SKIPPED = "not checked: the check above failed"


def _compute(session: Any, dc_path: str, compute: str) -> Any | None:
    try:
        return refs.resolve_in(session, dc_path, "host", compute, vim.ComputeResource, vim.ResourcePool, vim.HostSystem)
    except NotFound:
        return None


def _hosts_of(session: Any, compute: Any) -> list[Any]:
    if isinstance(compute, vim.ResourcePool):
        compute = props.read(session, compute, ["owner"])["owner"]
    if isinstance(compute, vim.HostSystem):
        return [compute]
    return list(props.read(session, compute, ["host"]).get("host") or ())


def _size(num_bytes: int | None) -> str:
    value = float(num_bytes or 0)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if value < 1024 or unit == "TB":
            return f"{value:.0f} {unit}" if unit in ("B", "KB") else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TB"


def check_placement(session: Any, *, datacenter: str, compute: str, datastore: str, switch: str) -> PlacementReport:
    """Check the connection, then each placement setting; every check says why it failed.

    ``compute`` is a cluster, host or resource pool path, absolute or relative to the
    datacenter's host folder ("DC0_C0", "DC0_C0/Resources/Labs"); ``datastore`` and
    ``switch`` are names (a distributed switch, or a standard vSwitch on every host).
    """
    checks: list[PlacementCheck] = []
    try:
        # A round trip, not the service content a session read when it logged in: a vCenter
        # that went down after this process last talked to it must fail this check in words.
        session.keep_alive()
        about = inventory.server_info(session)
    except Exception as exc:  # noqa: BLE001 - every failure becomes a failed check, in words
        error = translate(exc, where=session.where)
        checks.append(PlacementCheck("vCenter", False, str(error)))
        for name in ("datacenter", "compute", "datastore", "switch"):
            checks.append(PlacementCheck(name, False, "not checked: no connection to vCenter"))
        return PlacementReport(tuple(checks))
    checks.append(PlacementCheck("vCenter", True, f"{about.full_name} (API {about.api_version})"))

    dc_path = "/" + datacenter.strip("/")
    dc = refs.find(session, dc_path, vim.Datacenter)
    if dc is None:
        checks.append(PlacementCheck("datacenter", False, f"No datacenter '{datacenter}'."))
        for name in ("compute", "datastore", "switch"):
            checks.append(PlacementCheck(name, False, _SKIPPED))
        return PlacementReport(tuple(checks))
    checks.append(PlacementCheck("datacenter", True, f"Datacenter {dc_path.lstrip('/')}.", dc._moId))

    target = _compute(session, dc_path, compute)
    hosts: list[Any] = []
    if target is None:
        checks.append(PlacementCheck("compute", False, f"No cluster, host or resource pool '{compute}' in {dc_path}."))
    else:
        hosts = _hosts_of(session, target)
        kind = refs.kind_of(target).replace("_", " ")
        checks.append(PlacementCheck("compute", True, f"A {kind} with {len(hosts)} host(s).", target._moId))

    checks.append(_check_datastore(session, dc, datastore))
    checks.append(_check_switch(session, dc, switch, hosts, compute_ok=target is not None))
    return PlacementReport(tuple(checks))


def _check_datastore(session: Any, dc: Any, datastore: str) -> PlacementCheck:
    found = props.read_view(session, dc, {vim.Datastore: ["name", "summary.freeSpace", "summary.capacity"]})
    for obj, values in found:
        if values.get("name") == datastore or obj._moId == datastore:
            free, capacity = values.get("summary.freeSpace"), values.get("summary.capacity")
            detail = f"Datastore {values['name']}: {_size(free)} free of {_size(capacity)}."
            return PlacementCheck("datastore", True, detail, obj._moId)
    names = ", ".join(sorted(values.get("name", "") for _, values in found)) or "none"
    return PlacementCheck("datastore", False, f"No datastore '{datastore}' (this datacenter has: {names}).")


def _check_switch(session: Any, dc: Any, switch: str, hosts: list[Any], *, compute_ok: bool) -> PlacementCheck:
    dvs = networks.find_switch(session, dc, switch)
    if dvs is not None:
        return PlacementCheck("switch", True, f"Distributed switch {switch}.", dvs._moId)
    if not compute_ok:
        return PlacementCheck("switch", False, f"No distributed switch '{switch}'; hosts not checked (no compute).")
    if not hosts:
        return PlacementCheck("switch", False, f"No distributed switch '{switch}', and no hosts to look for a vSwitch.")
    values = props.read_many(session, hosts, ["name", "config.network.vswitch"])
    missing = [
        v.get("name", moref)
        for moref, v in values.items()
        if switch not in {s.name for s in v.get("config.network.vswitch") or ()}
    ]
    if missing:
        return PlacementCheck(
            "switch",
            False,
            f"No distributed switch '{switch}', and no such vSwitch on: {', '.join(sorted(missing))}.",
        )
    return PlacementCheck("switch", True, f"Standard vSwitch {switch} on all {len(hosts)} host(s).")
