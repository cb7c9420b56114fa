"""The driver's front door: ``VSphereClient``, one method per vCenter operation.

A client is cheap and may be shared between threads: each call runs on the calling
thread's session for the endpoint (see ``session.py``). Every call is translated at this
edge: callers see only the driver's dataclasses and ``VSphereError`` subclasses.

Long operations take ``on_progress(percent, description)`` and ``deadline`` (seconds;
when it passes the task is cancelled if vCenter allows, and ``DeadlineExceeded`` raised).
An exception raised by ``on_progress`` cancels the task (when vCenter allows) and reaches
the caller as it was raised.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from typing import TypeVar

from . import (
    attributes,
    folders,
    guest,
    inventory,
    networks,
    placement,
    pools,
    power,
    snapshots,
    vms,
    watch,
    webmks,
)
from .errors import VSphereError, translate
from .session import Session, session_for
from .types import (
    ConsoleTicket,
    EndpointConfig,
    GuestCredentials,
    GuestProcess,
    GuestScriptResult,
    InventoryItem,
    NetworkInfo,
    PlacementReport,
    PoolInfo,
    PortGroupSpec,
    ProgressCallback,
    ServerInfo,
    SnapshotInfo,
    VMInfo,
)

T = TypeVar("T")


class _CallbackError(Exception):
    """Carries an exception raised by the caller's own ``on_progress`` through the driver."""

    def __init__(self, original: Exception) -> None:
        super().__init__(str(original))
        self.original = original


def _guarded(on_progress: ProgressCallback | None) -> ProgressCallback | None:
    if on_progress is None:
        return None

    def report(percent: int, description: str | None) -> None:
        try:
            on_progress(percent, description)
        except Exception as exc:
            raise _CallbackError(exc) from exc

    return report


class VSphereClient:
    """Operations on one vCenter endpoint. Refs are morefs ("vm-42") or inventory paths."""

    def __init__(self, endpoint: EndpointConfig) -> None:
        self.endpoint = endpoint

    def __repr__(self) -> str:
        return f"<VSphereClient {self.endpoint.username} @ {self.endpoint.url}>"

    @property
    def session(self) -> Session:
        """This thread's session (made on first use)."""
        return session_for(self.endpoint)

    def _call(self, action: str, operation: Callable[..., T], *args: object, **kwargs: object) -> T:
        session = self.session
        if "on_progress" in kwargs:
            kwargs["on_progress"] = _guarded(kwargs["on_progress"])  # type: ignore[arg-type]
        with session.lock:
            try:
                if session.connected and session.idle_for() > self.endpoint.keepalive_after:
                    session.keep_alive()
                return operation(session, *args, **kwargs)
            except VSphereError:
                raise
            except _CallbackError as exc:
                raise exc.original from None  # the caller's own exception, untouched
            except Exception as exc:
                raise translate(exc, action=action, where=session.where) from exc
            finally:
                session.touch()

    def close(self) -> None:
        """Log this thread's session out (the next call logs in again)."""
        session = self.session
        with session.lock:
            session.close()

    # Connection and inventory

    def server_info(self) -> ServerInfo:
        """Log in (if needed) and say which vCenter this is."""
        return self._call("connect to vCenter", inventory.server_info)

    def check_placement(self, *, datacenter: str, compute: str, datastore: str, switch: str) -> PlacementReport:
        """ "Test connection": each check passes or fails with words (connection problems too)."""
        return self._call(
            "check the placement",
            placement.check_placement,
            datacenter=datacenter,
            compute=compute,
            datastore=datastore,
            switch=switch,
        )

    def find(self, ref: str) -> InventoryItem | None:
        return self._call(f"look up {ref}", inventory.find_item, ref)

    def get(self, ref: str) -> InventoryItem:
        return self._call(f"look up {ref}", inventory.get_item, ref)

    def list_children(self, ref: str = "/") -> list[InventoryItem]:
        return self._call(f"list {ref}", inventory.list_children, ref)

    def search_vms(
        self, under: str, text: str = "", *, recursive: bool = True, limit: int = 500
    ) -> list[InventoryItem]:
        return self._call(
            f"search VMs under {under}", inventory.search_vms, under, text, recursive=recursive, limit=limit
        )

    def find_vm(self, folder: str, name: str) -> str | None:
        return self._call(f"look for VM '{name}'", inventory.find_vm, folder, name)

    def vm_info(self, vm: str) -> VMInfo:
        return self._call(f"read VM {vm}", inventory.vm_info, vm)

    def console_ticket(self, vm: str) -> ConsoleTicket:
        """A single-use WebMKS ticket for a powered-on VM's console (labs.vsphere.webmks)."""
        return self._call(f"open the console of VM {vm}", webmks.acquire_console_ticket, vm)

    # Folders and resource pools

    def ensure_folder(self, parent: str, name: str) -> str:
        return self._call(f"make folder '{name}'", folders.ensure_folder, parent, name)

    def destroy_folder(
        self, folder: str, *, on_progress: ProgressCallback | None = None, deadline: float | None = None
    ) -> None:
        return self._call(
            f"delete folder {folder}",
            folders.destroy_folder,
            folder,
            on_progress=on_progress,
            deadline=deadline,
        )

    def ensure_pool(
        self, parent: str, name: str, *, cpu_limit_mhz: int | None = None, memory_limit_mb: int | None = None
    ) -> str:
        return self._call(
            f"make resource pool '{name}'",
            pools.ensure_pool,
            parent,
            name,
            cpu_limit_mhz=cpu_limit_mhz,
            memory_limit_mb=memory_limit_mb,
        )

    def update_pool(self, pool: str, *, cpu_limit_mhz: int | None = None, memory_limit_mb: int | None = None) -> None:
        return self._call(
            f"change resource pool {pool}",
            pools.update_pool,
            pool,
            cpu_limit_mhz=cpu_limit_mhz,
            memory_limit_mb=memory_limit_mb,
        )

    def pool_info(self, pool: str) -> PoolInfo:
        return self._call(f"read resource pool {pool}", pools.pool_info, pool)

    def destroy_pool(
        self, pool: str, *, on_progress: ProgressCallback | None = None, deadline: float | None = None
    ) -> None:
        return self._call(
            f"delete resource pool {pool}",
            pools.destroy_pool,
            pool,
            on_progress=on_progress,
            deadline=deadline,
        )

    # Networks

    def list_networks(self, datacenter: str) -> list[NetworkInfo]:
        return self._call(f"list networks of {datacenter}", networks.list_networks, datacenter)

    def find_network(self, datacenter: str, name: str) -> NetworkInfo | None:
        return self._call(f"look for network '{name}'", networks.find_network, datacenter, name)

    def ensure_port_group(
        self,
        *,
        datacenter: str,
        cluster: str,
        switch: str,
        spec: PortGroupSpec,
        on_progress: ProgressCallback | None = None,
        deadline: float | None = None,
    ) -> NetworkInfo:
        return self._call(
            f"make port group '{spec.name}'",
            networks.ensure_port_group,
            datacenter=datacenter,
            cluster=cluster,
            switch=switch,
            spec=spec,
            on_progress=on_progress,
            deadline=deadline,
        )

    def remove_port_group(
        self,
        *,
        datacenter: str,
        cluster: str,
        switch: str,
        name: str,
        on_progress: ProgressCallback | None = None,
        deadline: float | None = None,
    ) -> bool:
        return self._call(
            f"remove port group '{name}'",
            networks.remove_port_group,
            datacenter=datacenter,
            cluster=cluster,
            switch=switch,
            name=name,
            on_progress=on_progress,
            deadline=deadline,
        )

    # VMs

    def clone_vm(
        self,
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
        return self._call(
            f"clone {source} as '{name}'",
            vms.clone_vm,
            source,
            name=name,
            folder=folder,
            pool=pool,
            datastore=datastore,
            snapshot=snapshot,
            linked=linked,
            on_progress=on_progress,
            deadline=deadline,
            hold=hold,
        )

    def reconfigure_vm(
        self,
        vm: str,
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
        return self._call(
            f"reconfigure {vm}",
            vms.reconfigure_vm,
            vm,
            nested_hv=nested_hv,
            num_cpus=num_cpus,
            memory_mb=memory_mb,
            annotation=annotation,
            networks=networks,
            nic_networks=nic_networks,
            extra_config=extra_config,
            on_progress=on_progress,
            deadline=deadline,
        )

    def destroy_vm(
        self, vm: str, *, on_progress: ProgressCallback | None = None, deadline: float | None = None
    ) -> None:
        return self._call(f"delete {vm}", vms.destroy_vm, vm, on_progress=on_progress, deadline=deadline)

    def rename_many(self, names: Mapping[str, str], *, deadline: float | None = None) -> int:
        """Rename several VMs and folders together (``{moref: name}``); how many were renamed."""
        return self._call(f"rename {len(names)} objects", vms.rename_entities, names, deadline=deadline)

    def set_custom_value_on_vms(self, vms_: list[str], name: str, value: str) -> None:
        """One custom attribute's value on several VMs."""
        return self._call(
            f"set custom attribute {name} on {len(vms_)} VMs", attributes.set_custom_value_on_vms, vms_, name, value
        )

    def set_custom_values(self, vm: str, values: Mapping[str, str]) -> None:
        return self._call(f"set custom attributes on {vm}", attributes.set_custom_values, vm, values)

    def get_custom_values(self, vm: str) -> dict[str, str]:
        return self._call(f"read custom attributes of {vm}", attributes.get_custom_values, vm)

    def attribute_values(self, name: str, *, under: str = "/") -> dict[str, tuple[str, str]] | None:
        """{moref: (VM name, value)} of every VM under ``under`` carrying custom attribute ``name``;
        None when the attribute is not defined in vCenter."""
        return self._call(f"read attribute '{name}'", attributes.attribute_values, name, under=under)

    def find_vms_by_attribute(self, name: str, value: str | None = None, *, under: str = "/") -> list[InventoryItem]:
        return self._call(f"look for VMs with '{name}'", attributes.find_vms_by_attribute, name, value, under=under)

    # Power

    def power_state(self, vm: str) -> str:
        return self._call(f"read the power state of {vm}", power.power_state, vm)

    def power_on(self, vm: str, *, on_progress: ProgressCallback | None = None, deadline: float | None = None) -> None:
        return self._call(f"power on {vm}", power.power_on, vm, on_progress=on_progress, deadline=deadline)

    def power_on_many(self, vms_: list[str], *, deadline: float | None = None) -> int:
        """Power on several VMs together (one boot-order group); how many were off."""
        return self._call(f"power on {len(vms_)} VMs", power.power_on_many, vms_, deadline=deadline)

    def power_off(self, vm: str, *, on_progress: ProgressCallback | None = None, deadline: float | None = None) -> None:
        return self._call(f"power off {vm}", power.power_off, vm, on_progress=on_progress, deadline=deadline)

    def reset(self, vm: str, *, on_progress: ProgressCallback | None = None, deadline: float | None = None) -> None:
        return self._call(f"reset {vm}", power.reset, vm, on_progress=on_progress, deadline=deadline)

    def shutdown_guest(
        self,
        vm: str,
        *,
        timeout: float = 120.0,
        on_progress: ProgressCallback | None = None,
        deadline: float | None = None,
    ) -> bool:
        return self._call(
            f"shut down {vm}",
            power.shutdown_guest,
            vm,
            timeout=timeout,
            on_progress=on_progress,
            deadline=deadline,
        )

    # Inside the guest (VMware Tools; labs.vsphere.guest)

    def run_guest_program(
        self,
        vm: str,
        credentials: GuestCredentials,
        program: str,
        arguments: str = "",
        *,
        timeout: float = 60.0,
        working_directory: str | None = None,
        environment: Mapping[str, str] | None = None,
    ) -> GuestProcess:
        """Run ``program`` in the guest and wait for its end; past ``timeout`` s it is
        terminated and ``GuestProgramTimeout`` raised."""
        return self._call(
            f"run {program} in VM {vm}",
            guest.run_program,
            vm,
            credentials,
            program,
            arguments,
            timeout=timeout,
            working_directory=working_directory,
            environment=environment,
        )

    def run_guest_script(
        self,
        vm: str,
        credentials: GuestCredentials,
        script: str,
        *,
        timeout: float = 60.0,
        max_output_bytes: int = 64 * 1024,
        environment: Mapping[str, str] | None = None,
    ) -> GuestScriptResult:
        """Run a shell script in a Linux guest: its exit code and output (stdout and stderr)."""
        return self._call(
            f"run a script in VM {vm}",
            guest.run_script,
            vm,
            credentials,
            script,
            timeout=timeout,
            max_output_bytes=max_output_bytes,
            environment=environment,
        )

    def start_guest_program(
        self,
        vm: str,
        credentials: GuestCredentials,
        program: str,
        arguments: str = "",
        *,
        working_directory: str | None = None,
        environment: Mapping[str, str] | None = None,
    ) -> int:
        """Start ``program`` in the guest without waiting; its pid."""
        return self._call(
            f"start {program} in VM {vm}",
            guest.start_program,
            vm,
            credentials,
            program,
            arguments,
            working_directory=working_directory,
            environment=environment,
        )

    def list_guest_processes(
        self, vm: str, credentials: GuestCredentials, pids: Sequence[int] | None = None
    ) -> tuple[GuestProcess, ...]:
        return self._call(f"list the processes in VM {vm}", guest.list_processes, vm, credentials, pids)

    def terminate_guest_process(self, vm: str, credentials: GuestCredentials, pid: int) -> None:
        self._call(f"stop process {pid} in VM {vm}", guest.terminate_process, vm, credentials, pid)

    def read_guest_file(
        self, vm: str, credentials: GuestCredentials, path: str, *, max_bytes: int = guest.DEFAULT_MAX_BYTES
    ) -> bytes:
        return self._call(f"read {path} in VM {vm}", guest.read_file, vm, credentials, path, max_bytes=max_bytes)

    def write_guest_file(
        self, vm: str, credentials: GuestCredentials, path: str, data: bytes | str, *, overwrite: bool = True
    ) -> None:
        self._call(f"write {path} in VM {vm}", guest.write_file, vm, credentials, path, data, overwrite=overwrite)

    # Snapshots

    def list_snapshots(self, vm: str) -> tuple[SnapshotInfo, ...]:
        return self._call(f"list snapshots of {vm}", snapshots.list_snapshots, vm)

    def find_snapshot(self, vm: str, snapshot: str) -> SnapshotInfo | None:
        return self._call(f"look for snapshot '{snapshot}'", snapshots.find_snapshot, vm, snapshot)

    def create_snapshot(
        self,
        vm: str,
        name: str,
        *,
        description: str = "",
        memory: bool = False,
        quiesce: bool = False,
        on_progress: ProgressCallback | None = None,
        deadline: float | None = None,
    ) -> str:
        return self._call(
            f"take snapshot '{name}' of {vm}",
            snapshots.create_snapshot,
            vm,
            name,
            description=description,
            memory=memory,
            quiesce=quiesce,
            on_progress=on_progress,
            deadline=deadline,
        )

    def revert_snapshot(
        self,
        vm: str,
        snapshot: str,
        *,
        on_progress: ProgressCallback | None = None,
        deadline: float | None = None,
    ) -> SnapshotInfo:
        return self._call(
            f"revert {vm} to '{snapshot}'",
            snapshots.revert_snapshot,
            vm,
            snapshot,
            on_progress=on_progress,
            deadline=deadline,
        )

    def remove_snapshot(
        self,
        vm: str,
        snapshot: str,
        *,
        remove_children: bool = False,
        on_progress: ProgressCallback | None = None,
        deadline: float | None = None,
    ) -> None:
        return self._call(
            f"remove snapshot '{snapshot}' of {vm}",
            snapshots.remove_snapshot,
            vm,
            snapshot,
            remove_children=remove_children,
            on_progress=on_progress,
            deadline=deadline,
        )

    def remove_all_snapshots(
        self, vm: str, *, on_progress: ProgressCallback | None = None, deadline: float | None = None
    ) -> None:
        return self._call(
            f"remove all snapshots of {vm}",
            snapshots.remove_all_snapshots,
            vm,
            on_progress=on_progress,
            deadline=deadline,
        )

    def watch_vms(
        self,
        folder: str,
        handler: watch.UpdateHandler,
        stop: threading.Event,
        *,
        max_wait: int = 5,
        on_reachability: watch.ReachabilityHandler | None = None,
    ) -> None:
        """Follow every VM under ``folder`` (made if missing) until ``stop`` is set; see watch.py.

        Runs in the calling thread on a session of its own (the thread's), and never
        raises for vCenter trouble: it reconnects and reports a full resync instead, and tells
        ``on_reachability`` when vCenter cannot be reached and when it answers again.
        """
        # A session of the watcher's own whose requests time out soon after the longest wait
        # they ask for: a vCenter that hangs (a network partition, a stopped VM) is found in
        # seconds, not after the 120 s other requests may take.
        config = dataclasses.replace(self.endpoint, request_timeout=max_wait + watch.HUNG_AFTER_SECONDS)
        watch.watch_vms(
            lambda: session_for(config),
            folder,
            handler,
            stop,
            max_wait=max_wait,
            on_reachability=on_reachability,
        )


def get_client(endpoint: EndpointConfig) -> VSphereClient:
    """A client for the endpoint; sessions are shared per process, endpoint and thread."""
    return VSphereClient(endpoint)
