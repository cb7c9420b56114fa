"""Building a lab in vCenter: the steps provision, clone and reset share.

Every step is idempotent (a retried operation finds the folder, pool, port groups and
VMs it already made, by name), and ``tear_down`` removes whatever exists, so a failed
build leaves no orphans behind.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from django.conf import settings
from django.utils import timezone

from courses import guides
from courses.models import LABS_FOLDER_NAME
from labs import capacity, realtime
from labs.jobs.parallel import Reporter, run_parallel
from labs.jobs.runner import JobContext
from labs.metering import lab_power_changed
from labs.models import LAB_ATTRIBUTE, Lab, LabNetwork, LabSnapshot, LabVM
from labs.vsphere import NotFound, PortGroupSpec, VSphereClient, VSphereError

logger = logging.getLogger(__name__)

# The custom attribute that names a lab's student: empty on a warm-pool lab, written when a Start
# hands it over (labs.jobs.lab_ops.HandOverLab).
OWNER_ATTRIBUTE = "nestlab.owner"
LABS_FOLDER = LABS_FOLDER_NAME  # the one name, kept in courses.models (endpoint rules need it)
BASELINE_NAME = "Baseline"


@dataclass(frozen=True)
class CloneSource:
    """Where one lab VM is cloned from."""

    vm: LabVM
    source_moref: str
    snapshot: str | None
    linked: bool


class LabBuilder:
    """The vCenter side of one lab, driven from a job's context."""

    def __init__(self, context: JobContext, lab: Lab) -> None:
        self.context = context
        self.lab = lab
        self.endpoint = lab.endpoint
        self.spec = lab.template_version.spec

    @property
    def client(self) -> VSphereClient:
        return self.context.client

    @property
    def deadline(self) -> float:
        return settings.NESTLAB_VSPHERE_TASK_DEADLINE

    def vm_spec(self, role: str) -> dict:
        return next(vm for vm in self.spec["vms"] if vm["role"] == role)

    # Placement

    def ensure_folder(self) -> str:
        datacenter_vms = f"/{self.endpoint.datacenter}/vm"
        root = self.client.ensure_folder(datacenter_vms, LABS_FOLDER)
        course = self.client.ensure_folder(root, self.lab.course.code)
        self.lab.folder_moref = self.client.ensure_folder(course, self.lab.name)
        self.lab.save(update_fields=["folder_moref"])
        return self.lab.folder_moref

    def ensure_pool(self) -> str:
        # The lab may use what its VMs are configured with, and no more.
        self.lab.pool_moref = self.client.ensure_pool(
            self.endpoint.compute_path, self.lab.name, memory_limit_mb=self.lab.memory_mb or None
        )
        self.lab.save(update_fields=["pool_moref"])
        return self.lab.pool_moref

    def ensure_networks(self) -> None:
        for network in self.lab.networks.filter(released=False):
            self.client.ensure_port_group(
                datacenter=self.endpoint.datacenter,
                cluster=self.endpoint.compute_path,
                switch=self.endpoint.lab_switch,
                spec=PortGroupSpec(
                    name=network.port_group,
                    vlan_id=network.vlan_id,
                    promiscuous=True,
                    forged_transmits=True,
                    mac_changes=True,
                ),
                deadline=self.deadline,
            )

    # VMs

    def clone_all(self, sources: list[CloneSource], progress: Callable[[float, str | None], None]) -> None:
        """Clone every VM side by side, each holding one of the endpoint's capacity slots."""
        operation = self.context.operation
        owner = f"operation-{operation.pk}"
        if operation.attempts > 1:
            # Resumed after its worker died: the dead run's slots are free now, not in a minute.
            released = capacity.release_owner(self.endpoint.pk, owner)
            if released:
                logger.info("Operation %s: freed %d capacity slot(s) of its dead run", operation.pk, released)

        def clone(source: CloneSource, reporter: Reporter, index: int) -> str:
            existing = self.client.find_vm(self.lab.folder_moref, source.vm.name)
            if existing is not None:
                return existing

            def waiting(ahead: int) -> None:
                line = f"{ahead} clone(s) ahead" if ahead else "next in line"
                reporter.waiting(
                    index,
                    f"Waiting for vCenter capacity: {line} "
                    f"(at most {self.endpoint.concurrency_limit} at once on this vCenter)",
                )

            @contextmanager
            def slot() -> Iterator[None]:
                with capacity.vcenter_slot(
                    endpoint_id=self.endpoint.pk, limit=self.endpoint.concurrency_limit, on_wait=waiting, owner=owner
                ):
                    reporter.progress_of(index)(0)
                    yield

            # The driver takes the slot once its look-ups are done: the slot is spent cloning.
            return self.client.clone_vm(
                source.source_moref,
                name=source.vm.name,
                folder=self.lab.folder_moref,
                pool=self.lab.pool_moref,
                datastore=f"/{self.endpoint.datacenter}/datastore/{self.endpoint.datastore}",
                snapshot=source.snapshot,
                linked=source.linked,
                on_progress=reporter.progress_of(index),
                deadline=self.deadline,
                hold=slot,
            )

        morefs = run_parallel(sources, clone, on_tick=progress)
        for source, moref in zip(sources, morefs, strict=True):
            source.vm.moref = moref
            source.vm.save(update_fields=["moref"])

    def configure_all(self, progress: Callable[[float, str | None], None]) -> None:
        """CPU, memory, nested HV, NICs on the lab's port groups, owner and lab id."""
        port_groups = {network.name: network.port_group for network in self.lab.networks.all()}
        vms = list(self.lab.vms.all())
        owner = self.lab.student.username if self.lab.student_id else ""
        whose = f"for {owner}" if owner else "in its warm pool"

        def configure(vm: LabVM, reporter: Reporter, index: int) -> None:
            spec = self.vm_spec(vm.role)
            self.client.reconfigure_vm(
                vm.moref,
                nested_hv=bool(spec["nested_hv_required"] or spec.get("guest_nested_hv")),
                num_cpus=spec["num_cpu"],
                memory_mb=spec["memory_mb"],
                annotation=(
                    f"Nestlab lab {self.lab.name}: {vm.role} of {self.lab.course.code} "
                    f"{whose}. Managed by Nestlab; changes here may be lost on Reset."
                ),
                nic_networks=[port_groups[name] for name in spec["nic_networks"]],
                extra_config=guides.guestinfo(self.lab.variables) or None,
                on_progress=reporter.progress_of(index),
                deadline=self.deadline,
            )
            self.client.set_custom_values(
                vm.moref,
                {
                    LAB_ATTRIBUTE: str(self.lab.pk),
                    OWNER_ATTRIBUTE: owner,
                    "nestlab.course": self.lab.course.code,
                },
            )

        run_parallel(vms, configure, on_tick=progress)

    def snapshot_all(
        self, name: str, description: str, progress: Callable[[float, str | None], None]
    ) -> dict[str, str]:
        """One snapshot per VM, taken together; returns {LabVM id: snapshot moref}."""
        vms = list(self.lab.vms.all())

        def take(vm: LabVM, reporter: Reporter, index: int) -> str:
            existing = self.client.find_snapshot(vm.moref, name)
            if existing is not None:
                return existing.moref
            return self.client.create_snapshot(
                vm.moref, name, description=description, on_progress=reporter.progress_of(index), deadline=self.deadline
            )

        morefs = run_parallel(vms, take, on_tick=progress)
        return {str(vm.pk): moref for vm, moref in zip(vms, morefs, strict=True)}

    def record_baseline(self, vm_snapshots: dict[str, str], actor) -> LabSnapshot:
        baseline, _ = LabSnapshot.objects.update_or_create(
            lab=self.lab,
            is_baseline=True,
            defaults={
                "name": BASELINE_NAME,
                "description": "The lab as it was handed out. Reset returns here.",
                "vm_snapshots": vm_snapshots,
                "power_states": {str(vm.pk): LabVM.PowerState.ON.value for vm in self.lab.vms.all()},
                "created_by": actor,
            },
        )
        return baseline

    def power_on_in_boot_order(self, progress: Callable[[float, str | None], None]) -> None:
        vms = list(self.lab.vms.order_by("boot_order", "role"))
        groups = sorted({vm.boot_order for vm in vms})
        for number, order in enumerate(groups):
            group = [vm for vm in vms if vm.boot_order == order]

            def on(vm: LabVM, reporter: Reporter, index: int) -> None:
                if self.client.power_state(vm.moref) != LabVM.PowerState.ON:
                    self.client.power_on(vm.moref, on_progress=reporter.progress_of(index), deadline=self.deadline)

            def tick(percent: float, waiting: str | None, number: int = number) -> None:
                progress((number * 100 + percent) / len(groups), waiting)

            run_parallel(group, on, on_tick=tick)
        self.refresh_power()

    def refresh_power(self) -> None:
        """Read every VM's power state and IP back from vCenter, and meter the lab's hours."""
        for vm in self.lab.vms.exclude(moref=""):
            try:
                info = self.client.vm_info(vm.moref)
            except NotFound:
                vm.power_state = LabVM.PowerState.MISSING
            else:
                vm.power_state = info.power_state
                vm.guest_ip = info.guest_ip or ""
                vm.overall_status = info.overall_status
            vm.save(update_fields=["power_state", "guest_ip", "overall_status"])
            realtime.vm_changed(vm)
        lab_power_changed(lab=self.lab)

    # Undo

    def _ours(self, moref: str, name: str) -> bool:
        """Whether ``moref`` is still the object of that name: a moref remembered from before
        vCenter lost its inventory (the simulator restarted, a backup restored) may since
        name another lab's object, which must never be removed in this lab's place."""
        found = self.client.find(moref)
        return found is not None and found.name == name

    def tear_down(self) -> list[str]:
        """Remove everything of the lab that exists in vCenter; return what could not be removed."""
        problems: list[str] = []
        if self.lab.folder_moref and not self._ours(self.lab.folder_moref, self.lab.name):
            self.lab.folder_moref = ""
            self.lab.save(update_fields=["folder_moref"])
        folder = self.lab.folder_moref
        for vm in self.lab.vms.all():
            moref = vm.moref if vm.moref and self._ours(vm.moref, vm.name) else None
            moref = moref or (self.client.find_vm(folder, vm.name) if folder else None)
            if not moref:
                if vm.moref:  # gone already (or the moref names something else now)
                    vm.moref, vm.power_state = "", LabVM.PowerState.OFF
                    vm.save(update_fields=["moref", "power_state"])
                    realtime.vm_changed(vm)
                continue
            try:
                self.client.destroy_vm(moref, deadline=self.deadline)
            except NotFound:
                pass
            except VSphereError as error:  # keep removing the rest; report all; keep the reference
                problems.append(f"{vm.name}: {error}")
                vm.moref = moref
                vm.save(update_fields=["moref"])
                continue
            vm.moref = ""
            vm.power_state = LabVM.PowerState.OFF
            vm.save(update_fields=["moref", "power_state"])
            realtime.vm_changed(vm)  # pages show it off (it is gone) without a reload
        for network in self.lab.networks.all():
            try:
                self.client.remove_port_group(
                    datacenter=self.endpoint.datacenter,
                    cluster=self.endpoint.compute_path,
                    switch=self.endpoint.lab_switch,
                    name=network.port_group,
                    deadline=self.deadline,
                )
            except NotFound:
                pass
            except VSphereError as error:
                problems.append(f"port group {network.port_group}: {error}")
        if problems:
            # VMs are still there: their pool and folder must stay, and so must the references
            # to all of them, so that deleting again (or the reconciler) finds what is left.
            return problems
        for field, label, destroy in (
            ("pool_moref", "resource pool", self.client.destroy_pool),
            ("folder_moref", "folder", self.client.destroy_folder),
        ):
            moref = getattr(self.lab, field)
            if not moref:
                continue
            if not self._ours(moref, self.lab.name):
                setattr(self.lab, field, "")
                self.lab.save(update_fields=[field])
                continue
            try:
                destroy(moref)
            except NotFound:
                pass
            except VSphereError as error:
                problems.append(f"{label}: {error}")
                continue
            setattr(self.lab, field, "")
            self.lab.save(update_fields=[field])
        if not problems:
            self.lab.snapshots.all().delete()
            realtime.snapshots_changed(self.lab)  # the tree is empty now, and pages say so
        return problems


def release_vlans(lab: Lab) -> None:
    LabNetwork.objects.filter(lab=lab).update(released=True)


def mark_ready(lab: Lab) -> None:
    lab.state = Lab.State.READY
    lab.error = ""
    lab.ready_at = lab.ready_at or timezone.now()
    lab.save(update_fields=["state", "error", "ready_at"])
    realtime.lab_changed(lab)


def mark_state(lab: Lab, state: str, error: str = "") -> None:
    lab.state = state
    lab.error = error
    lab.save(update_fields=["state", "error"])
    realtime.lab_changed(lab)
