"""Following VMs live: one PropertyCollector filter over every VM under a folder, read
with WaitForUpdatesEx, so a VM powered off from the vSphere Client is known within a
second without polling.

The watcher owns its PropertyCollector (the session's default one is shared and loses
updates when several threads wait on it). When vCenter restarts or the session expires,
the filter is gone with it: the watcher logs in again, builds a new filter and reports a
full resync (every VM with all its values) so the caller can mend what it missed.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pyVmomi import vim, vmodl

from . import folders, refs
from .errors import Unreachable, VSphereError, is_connection_error, translate
from .session import Session

log = logging.getLogger(__name__)
PC = vmodl.query.PropertyCollector

WATCHED_PATHS = ["name", "runtime.powerState", "guest.ipAddress", "summary.overallStatus", "snapshot"]


@dataclass(frozen=True)
class VMUpdate:
    """What changed on one VM. ``values`` holds only the properties that changed
    (all of them in a full resync): name, power_state, guest_ip, overall_status,
    current_snapshot (moref or None). ``removed``: the VM is gone from the folder."""

    moref: str
    values: dict[str, Any] = field(default_factory=dict)
    removed: bool = False


UpdateHandler = Callable[[list[VMUpdate], bool], None]
# Seconds beyond its own wait after which the watcher gives up on an answer: vCenter hangs
# (the stub tries again once, so a hang is found in about twice max_wait + this). Not less: a
# big inventory's first full answer takes a while.
HUNG_AFTER_SECONDS = 25
# Told whether vCenter answers: (False, why in words) at every failed try to reach it, (True, "")
# once it answers again.
ReachabilityHandler = Callable[[bool, str], None]
"""``handler(updates, full_resync)``; in a full resync VMs not listed no longer exist."""


def _value(path: str, value: Any) -> tuple[str, Any]:
    if path == "runtime.powerState":
        return "power_state", str(value) if value is not None else None
    if path == "guest.ipAddress":
        return "guest_ip", value or None
    if path == "summary.overallStatus":
        return "overall_status", str(value) if value is not None else None
    if path == "snapshot":
        current = getattr(value, "currentSnapshot", None) if value is not None else None
        return "current_snapshot", current._moId if current is not None else None
    return path, value


class _Filter:
    """A PropertyCollector of our own with one filter over a container view of VMs."""

    def __init__(self, session: Session, folder_ref: str) -> None:
        content = session.content
        folder = refs.resolve(session, folder_ref, vim.Folder)
        self.collector = content.propertyCollector.CreatePropertyCollector()
        self.view = content.viewManager.CreateContainerView(folder, [vim.VirtualMachine], True)
        traversal = PC.TraversalSpec(name="view", type=vim.view.ContainerView, path="view", skip=False)
        spec = PC.FilterSpec(
            objectSet=[PC.ObjectSpec(obj=self.view, skip=True, selectSet=[traversal])],
            propSet=[PC.PropertySpec(type=vim.VirtualMachine, pathSet=WATCHED_PATHS, all=False)],
        )
        self.collector.CreateFilter(spec, partialUpdates=True)
        self.version = ""

    def wait(self, seconds: int) -> tuple[list[VMUpdate], bool]:
        full = self.version == ""
        update = self.collector.WaitForUpdatesEx(self.version, PC.WaitOptions(maxWaitSeconds=seconds))
        if update is None:
            return [], False
        batches = [update]
        # vCenter splits a large update set ("truncated"); a full resync is only full once every
        # part has arrived, or VMs of the missing parts would look deleted.
        while update.truncated:
            update = self.collector.WaitForUpdatesEx(update.version, PC.WaitOptions(maxWaitSeconds=0))
            if update is None:
                break
            batches.append(update)
        self.version = batches[-1].version
        updates = []
        for filter_update in (f for batch in batches for f in batch.filterSet or ()):
            for object_update in filter_update.objectSet or ():
                moref = object_update.obj._moId
                if object_update.kind == "leave":
                    updates.append(VMUpdate(moref=moref, removed=True))
                    continue
                values = dict(_value(change.name, change.val) for change in object_update.changeSet or ())
                updates.append(VMUpdate(moref=moref, values=values))
        return updates, full

    def close(self) -> None:
        with contextlib.suppress(Exception):  # the session may be gone, and these with it
            self.view.DestroyView()
        with contextlib.suppress(Exception):
            self.collector.DestroyPropertyCollector()


def watch_vms(
    session_factory: Callable[[], Session],
    folder_ref: str,
    handler: UpdateHandler,
    stop: threading.Event,
    *,
    max_wait: int = 5,
    retry_after: Callable[[int], float] = lambda failures: min(30.0, 0.5 * 2 ** min(failures, 6)),
    on_reachability: ReachabilityHandler | None = None,
) -> None:
    """Call ``handler`` with the VMs' changes until ``stop`` is set. Never raises for
    vCenter trouble: it logs, waits (0.5 s doubling up to 30 s), reconnects and resyncs.
    ``on_reachability`` hears of every try that could not reach vCenter and of its answering
    again: the watcher is the one always connected, so it knows first."""
    failures = 0
    unreachable = False
    current: _Filter | None = None
    while not stop.is_set():
        session = session_factory()
        try:
            if current is None:
                with session.lock:
                    parent, _, name = folder_ref.rstrip("/").rpartition("/")
                    folders.ensure_folder(session, parent, name)  # the labs folder may not exist yet
                    current = _Filter(session, folder_ref)
                if failures:
                    log.info("Watcher on %s: connected again after %d failure(s); full resync", folder_ref, failures)
            updates, full = current.wait(max_wait)
            failures = 0
            session.touch()
            if unreachable:
                unreachable = False
                _tell(on_reachability, True, "")
            if updates or full:
                handler(updates, full)
        except Exception as error:
            failures += 1
            words = translate(error, action="watch the lab VMs") if not isinstance(error, VSphereError) else error
            if isinstance(error, vmodl.MethodFault | VSphereError) or is_connection_error(error):
                log.warning("Watcher on %s: %s (retrying)", folder_ref, words)
            else:
                log.exception("Watcher on %s failed unexpectedly (retrying)", folder_ref)
            if isinstance(error, Unreachable) or is_connection_error(error):
                unreachable = True
                _tell(on_reachability, False, str(words))
            if current is not None:
                current.close()
                current = None
            # A dead session (vCenter restarted) is dropped so the next try logs in afresh.
            with contextlib.suppress(Exception):
                session.close()
            stop.wait(retry_after(failures))
    if current is not None:
        current.close()


def _tell(on_reachability: ReachabilityHandler | None, reachable: bool, words: str) -> None:
    if on_reachability is None:
        return
    try:
        on_reachability(reachable, words)
    except Exception:  # whoever listens must not stop the watcher
        log.exception("Could not report whether vCenter is reachable")
