"""The operations on student labs: provision, snapshot, revert, reset, delete snapshot,
clone, power and delete."""

from __future__ import annotations

import contextlib
from collections.abc import Callable

from django.conf import settings
from django.utils import timezone

from courses.models import VersionBaseline
from labs import capacity, realtime, services
from labs.dispatch import RESET_REVERTS
from labs.jobs.lab_build import (
    BASELINE_NAME,
    OWNER_ATTRIBUTE,
    CloneSource,
    LabBuilder,
    mark_ready,
    mark_state,
    release_vlans,
)
from labs.jobs.parallel import Reporter, run_parallel
from labs.jobs.runner import Job, OperationFailed, register
from labs.metering import lab_power_changed, vanished_words
from labs.models import Lab, LabSnapshot, LabVM, Operation
from labs.vsphere import NotFound, Unreachable, VSphereError

GUEST_SHUTDOWN_TIMEOUT = 120
# A provision's param: leave the lab powered off once built (a warm-pool lab nobody needs yet).
STAY_OFF = "stay_off"


class LabJob(Job):
    """A job on one lab: the lab is busy while it runs and back to its state after."""

    busy_state = Lab.State.BUSY

    def __init__(self, context) -> None:
        super().__init__(context)
        # What the lab goes back to when the job ends; set here (not in run) because an
        # abandoned or cancelled operation reaches on_failure without run.
        lab = context.operation.lab
        self.prior_state = Lab.State.READY if lab is None or lab.state == Lab.State.BUSY else lab.state

    @property
    def lab(self) -> Lab:
        lab = self.context.operation.lab
        if lab is None:
            raise OperationFailed("The lab was deleted.")
        return lab

    @property
    def builder(self) -> LabBuilder:
        if not hasattr(self, "_builder"):
            self._builder = LabBuilder(self.context, self.lab)
        return self._builder

    def run(self) -> None:
        lab = self.lab
        if self.busy_state and lab.state != self.busy_state:
            mark_state(lab, self.busy_state, lab.error)
        self.perform()

    def perform(self) -> None:
        raise NotImplementedError

    def ticker(self, progress: Callable[[float], None], text: str) -> Callable[[float, str | None], None]:
        """Progress from parallel calls, and the step text while they wait for capacity."""

        def tick(percent: float, waiting: str | None) -> None:
            self.context.note(waiting or text)
            progress(percent)

        return tick

    def step(self, text: str, share: float, action: Callable[[Callable[[float, str | None], None]], object]):
        with self.context.step(text, share=share) as progress:
            return action(self.ticker(progress, text))

    def finish(self, state: str | None = None) -> None:
        lab = self.lab
        lab.refresh_from_db()
        if (state or self.prior_state) == Lab.State.READY:
            mark_ready(lab)
        else:
            mark_state(lab, state or self.prior_state, lab.error)

    def on_failure(self, reason: str) -> None:
        if self.context.operation.lab is None:
            return
        gone = self.vanished_roles()
        if gone:
            mark_state(self.lab, Lab.State.ERROR, vanished_words(gone))
        else:
            self.finish()

    def on_cleanup_failed(self, reason: str) -> None:
        """The undo itself failed: the lab is in error with the reason, never left busy."""
        lab = self.context.operation.lab
        if lab is not None and lab.state != Lab.State.DELETED:
            mark_state(lab, Lab.State.ERROR, reason)

    def vanished_roles(self) -> list[str]:
        """After a failure, read the lab's VMs back from vCenter; the roles of those gone.

        Best effort: when vCenter cannot be asked now, the watcher's full resync once it is
        back finds them (the lab is no longer busy by then, so it may mark it).
        """
        try:
            self.builder.refresh_power()
        except VSphereError:
            return []
        missing = self.lab.vms.exclude(moref="").filter(power_state=LabVM.PowerState.MISSING)
        return sorted(missing.values_list("role", flat=True))


def _clone_sources(lab: Lab) -> list[CloneSource]:
    """The version's sources and baseline snapshots on the lab's own endpoint."""
    spec = lab.template_version.spec
    baseline = VersionBaseline.objects.filter(
        version=lab.template_version, endpoint=lab.endpoint, state=VersionBaseline.State.READY
    ).first()
    if baseline is None:
        raise OperationFailed(
            f"{lab.template_version} has no baseline on {lab.endpoint.name} (it was not published there): "
            "the lab cannot be built there."
        )
    return [
        CloneSource(
            vm=vm,
            source_moref=baseline.vms[vm.role]["moref"],
            snapshot=baseline.vms[vm.role]["snapshot"] if spec["linked_clones"] else None,
            linked=spec["linked_clones"],
        )
        for vm in lab.vms.all()
    ]


def build_lab(job: LabJob, sources: list[CloneSource]) -> None:
    """Folder, pool, networks, clones, configuration, baseline, power-on: a whole lab."""
    builder = job.builder
    n = len(sources)
    # The build's turn on its endpoint (labs.capacity): counted from here to the end of its
    # clones, so the next build in line is sent to a builder once these clones are done.
    with capacity.build_turn(
        endpoint_id=builder.endpoint.pk,
        operation_id=job.context.operation.pk,
        vms=n,
        limit=builder.endpoint.concurrency_limit,
    ):
        job.step(
            "Making the lab's folder and resource pool",
            4,
            lambda tick: (builder.ensure_folder(), builder.ensure_pool()),
        )
        job.step("Making the lab's isolated network", 4, lambda tick: builder.ensure_networks())
        job.step(f"Cloning {n} VMs", 52, lambda tick: builder.clone_all(sources, tick))
    job.step("Configuring CPUs, memory, nested virtualization and networks", 14, builder.configure_all)
    baseline = job.step(
        "Taking the lab's baseline snapshot",
        12,
        lambda tick: builder.snapshot_all(BASELINE_NAME, "The lab as it was handed out.", tick),
    )
    snapshot = builder.record_baseline(baseline, job.context.operation.actor)
    job.lab.current_snapshot = snapshot
    job.lab.save(update_fields=["current_snapshot"])
    # The page's snapshot tree learns of the baseline (it showed none while the lab was built).
    realtime.snapshots_changed(job.lab)
    if job.context.operation.params.get(STAY_OFF):
        # A warm-pool lab waits powered off when no class session is near (labs.pools).
        builder.refresh_power()
        return
    job.step("Powering on in boot order", 14, builder.power_on_in_boot_order)


@register
class ProvisionLab(LabJob):
    kind = Operation.Kind.PROVISION
    busy_state = Lab.State.PROVISIONING

    def perform(self) -> None:
        try:
            build_lab(self, _clone_sources(self.lab))
        except Unreachable:
            self.unreachable = True
            raise
        self.finish(Lab.State.READY)

    def _nothing_made(self) -> bool:
        lab = self.lab
        lab.refresh_from_db(fields=["folder_moref", "pool_moref"])
        return not lab.folder_moref and not lab.pool_moref and not lab.vms.exclude(moref="").exists()

    def on_failure(self, reason: str) -> None:
        """No orphans: remove what was made; the lab stays, in error, saying why.

        A new lab whose endpoint could not be reached before anything was made there is built
        on another endpoint of its course instead (labs.placement), when one can take it."""
        lab = self.context.operation.lab
        if lab is None:
            return
        if self.kind == Operation.Kind.PROVISION and getattr(self, "unreachable", False) and self._nothing_made():
            moved = services.lab_build_move(lab=lab, failed=self.context.operation, reason=reason)
            if moved is not None:
                self.context.result["moved_to"] = {"endpoint": moved.endpoint_id, "operation": moved.pk}
                return
        problems = self.builder.tear_down()
        self.builder.refresh_power()
        leftover = f" Clean-up could not remove: {'; '.join(problems)}." if problems else ""
        mark_state(lab, Lab.State.ERROR, f"Provisioning failed: {reason}{leftover} Reset tries again.")


@register
class CloneLab(ProvisionLab):
    """A new lab from another lab's current state (full clones: no hidden snapshots on the source)."""

    kind = Operation.Kind.CLONE

    def perform(self) -> None:
        source_lab = Lab.objects.get(pk=self.context.operation.params["source_lab"])
        by_role = {vm.role: vm for vm in source_lab.vms.all()}
        sources = []
        for vm in self.lab.vms.all():
            origin = by_role.get(vm.role)
            if origin is None or not origin.moref:
                raise OperationFailed(f"The source lab has no {vm.role} VM to clone.")
            sources.append(CloneSource(vm=vm, source_moref=origin.moref, snapshot=None, linked=False))
        build_lab(self, sources)
        self.finish(Lab.State.READY)


@register
class HandOverLab(LabJob):
    """A warm-pool lab becomes its student's (labs.services, on Start): its VMs and folder get the
    student's lab names and the owner attribute, and it is powered on if it waited off. A quick
    operation: renames and power-ons, no clone. The database says whose it is from the click;
    when a rename fails the lab is still theirs and works (Nestlab finds VMs by moref and by the
    lab-id attribute), and the operation says which name could not be given."""

    kind = Operation.Kind.HAND_OVER

    def perform(self) -> None:
        lab, client = self.lab, self.context.client
        deadline = settings.NESTLAB_VSPHERE_TASK_DEADLINE
        vms = list(lab.vms.exclude(moref="").exclude(power_state=LabVM.PowerState.MISSING))
        owner = lab.student.username if lab.student_id else ""

        def rename_all(tick: Callable[[float, str | None], None]) -> None:
            names = {vm.moref: vm.name for vm in vms}
            if lab.folder_moref:
                names[lab.folder_moref] = lab.name
            client.rename_many(names, deadline=deadline)
            tick(80, None)
            client.set_custom_value_on_vms([vm.moref for vm in vms], OWNER_ATTRIBUTE, owner)

        self.step(f"Giving the lab to {owner}: renaming its {len(vms)} VMs and folder", 40, rename_all)
        # A pool lab waiting on (a session is near) needs nothing more: the watcher keeps its VM
        # rows' power true, and reading it back from vCenter would double the hand-over's calls.
        if any(vm.power_state != LabVM.PowerState.ON for vm in vms):
            self.step("Powering on in boot order", 60, lambda tick: self._power_on(vms, tick))
        self.finish(Lab.State.READY)

    def _power_on(self, vms: list[LabVM], tick: Callable[[float, str | None], None]) -> None:
        """Each boot-order group powered on together, one batch of tasks each (a quarter of the
        calls of the build's power-on, VM by VM with a read back: bench/warm_start.py)."""
        client, deadline = self.context.client, settings.NESTLAB_VSPHERE_TASK_DEADLINE
        groups = sorted({vm.boot_order for vm in vms})
        for number, order in enumerate(groups, start=1):
            client.power_on_many([vm.moref for vm in vms if vm.boot_order == order], deadline=deadline)
            tick(100 * number / len(groups), None)
        for vm in vms:
            vm.power_state = LabVM.PowerState.ON
        LabVM.objects.bulk_update(vms, ["power_state"])
        for vm in vms:
            realtime.vm_changed(vm)
        lab_power_changed(lab=self.lab)


@register
class SnapshotLab(LabJob):
    kind = Operation.Kind.SNAPSHOT

    def perform(self) -> None:
        params = self.context.operation.params
        lab, builder = self.lab, self.builder
        builder.refresh_power()
        power_states = {str(vm.pk): vm.power_state for vm in lab.vms.all()}
        taken = self.step(
            f"Taking snapshot '{params['name']}' of {lab.vms.count()} VMs together",
            90,
            lambda tick: builder.snapshot_all(params["name"], params.get("description", ""), tick),
        )
        snapshot = LabSnapshot.objects.create(
            lab=lab,
            name=params["name"],
            description=params.get("description", ""),
            parent=lab.current_snapshot,
            vm_snapshots=taken,
            power_states=power_states,
            created_by=self.context.operation.actor,
        )
        lab.current_snapshot = snapshot
        lab.save(update_fields=["current_snapshot"])
        self.context.result["snapshot"] = snapshot.pk
        realtime.snapshots_changed(lab)
        self.finish()

    def on_failure(self, reason: str) -> None:
        """Remove the VM snapshots already taken, so the lab has all of it or none."""
        name = self.context.operation.params["name"]
        for vm in self.lab.vms.exclude(moref=""):
            try:
                found = self.context.client.find_snapshot(vm.moref, name)
                if found is not None:
                    self.context.client.remove_snapshot(vm.moref, found.moref)
            except NotFound:
                pass
        super().on_failure(reason)


def restore_power(job: LabJob, power_states: dict[str, str], tick: Callable[[float, str | None], None]) -> None:
    """After a revert: VMs that were on when the snapshot was taken are on again, in boot order."""
    client = job.context.client
    vms = sorted(job.lab.vms.exclude(moref=""), key=lambda vm: (vm.boot_order, vm.role))
    for index, vm in enumerate(vms):
        wanted = power_states.get(str(vm.pk), LabVM.PowerState.OFF)
        now = client.power_state(vm.moref)
        if wanted == LabVM.PowerState.ON and now != LabVM.PowerState.ON:
            client.power_on(vm.moref, deadline=settings.NESTLAB_VSPHERE_TASK_DEADLINE)
        elif wanted != LabVM.PowerState.ON and now == LabVM.PowerState.ON:
            client.power_off(vm.moref, deadline=settings.NESTLAB_VSPHERE_TASK_DEADLINE)
        tick(100 * (index + 1) / len(vms), None)


def revert_to(job: LabJob, snapshot: LabSnapshot) -> None:
    lab, client = job.lab, job.context.client
    vms = [vm for vm in lab.vms.exclude(moref="") if str(vm.pk) in snapshot.vm_snapshots]

    def revert(vm: LabVM, reporter: Reporter, index: int) -> None:
        client.revert_snapshot(
            vm.moref,
            snapshot.vm_snapshots[str(vm.pk)],
            on_progress=reporter.progress_of(index),
            deadline=settings.NESTLAB_VSPHERE_TASK_DEADLINE,
        )

    job.step(f"Reverting {len(vms)} VMs to '{snapshot.name}'", 70, lambda tick: run_parallel(vms, revert, on_tick=tick))
    job.step("Restoring power states", 25, lambda tick: restore_power(job, snapshot.power_states, tick))
    job.builder.refresh_power()
    lab.current_snapshot = snapshot
    lab.save(update_fields=["current_snapshot"])
    realtime.snapshots_changed(lab)


@register
class RevertLab(LabJob):
    kind = Operation.Kind.REVERT

    def perform(self) -> None:
        snapshot = LabSnapshot.objects.filter(pk=self.context.operation.params["snapshot"], lab=self.lab).first()
        if snapshot is None:
            raise OperationFailed("That snapshot was deleted.")
        revert_to(self, snapshot)
        self.finish(Lab.State.READY)

    def on_failure(self, reason: str) -> None:
        mark_state(
            self.lab,
            Lab.State.ERROR,
            f"The revert stopped part way: {reason} Revert again, or Reset the lab.",
        )


@register
class ResetLab(LabJob):
    """Back to the baseline; when the baseline (or a VM) is gone, build the lab again."""

    kind = Operation.Kind.RESET

    def perform(self) -> None:
        lab = self.lab
        # labs.services.lab_reset planned the revert or the rebuild (and labs.dispatch chose the
        # queue by it); a planned revert becomes a rebuild only if vCenter lost the baseline since.
        planned_revert = self.context.operation.params.get(RESET_REVERTS, False)
        baseline = lab.snapshots.filter(is_baseline=True).first() if planned_revert else None
        if baseline is not None and self._baseline_intact(baseline):
            revert_to(self, baseline)
        else:
            self.step("The baseline is gone: removing what is left", 10, lambda tick: self.builder.tear_down())
            build_lab(self, _clone_sources(lab))
        self.finish(Lab.State.READY)

    def _baseline_intact(self, baseline: LabSnapshot) -> bool:
        client = self.context.client
        for vm in self.lab.vms.all():
            moref = baseline.vm_snapshots.get(str(vm.pk))
            if not vm.moref or not moref:
                return False
            try:
                if client.find_snapshot(vm.moref, moref) is None:
                    return False
            except NotFound:
                return False
        return True

    def on_failure(self, reason: str) -> None:
        mark_state(self.lab, Lab.State.ERROR, f"Reset failed: {reason} Try Reset again, or ask your instructor.")


@register
class DeleteSnapshot(LabJob):
    kind = Operation.Kind.DELETE_SNAPSHOT

    def perform(self) -> None:
        lab, client = self.lab, self.context.client
        snapshot = LabSnapshot.objects.filter(pk=self.context.operation.params["snapshot"], lab=lab).first()
        if snapshot is None:
            self.finish()
            return
        vms = [vm for vm in lab.vms.exclude(moref="") if str(vm.pk) in snapshot.vm_snapshots]

        def remove(vm: LabVM, reporter: Reporter, index: int) -> None:
            with contextlib.suppress(NotFound):  # already gone is what we wanted
                client.remove_snapshot(
                    vm.moref,
                    snapshot.vm_snapshots[str(vm.pk)],
                    on_progress=reporter.progress_of(index),
                    deadline=settings.NESTLAB_VSPHERE_TASK_DEADLINE,
                )

        self.step(f"Deleting snapshot '{snapshot.name}'", 95, lambda tick: run_parallel(vms, remove, on_tick=tick))
        # Its children now hang off its parent, as in vCenter.
        snapshot.children.update(parent=snapshot.parent)
        if lab.current_snapshot_id == snapshot.pk:
            lab.current_snapshot = snapshot.parent
            lab.save(update_fields=["current_snapshot"])
        snapshot.delete()
        realtime.snapshots_changed(lab)
        self.finish()


@register
class PowerLab(LabJob):
    kind = Operation.Kind.POWER

    def perform(self) -> None:
        params = self.context.operation.params
        action, vm_id = params["action"], params.get("vm")
        # A VM gone from vCenter ("missing") cannot be powered; the rest of the lab still can.
        present = self.lab.vms.exclude(moref="").exclude(power_state=LabVM.PowerState.MISSING)
        vms = list(present.order_by("boot_order", "role"))
        if vm_id is not None:
            vms = [vm for vm in vms if vm.pk == vm_id]
        if action == "off":
            vms.reverse()  # shut down in reverse boot order: vCenter before the hosts it manages
        words = {"on": "Powering on", "off": "Shutting down", "reset": "Resetting"}[action]
        target = vms[0].role if vm_id is not None and vms else "the lab"
        self.step(f"{words} {target}", 95, lambda tick: self._apply(action, vms, tick))
        self.builder.refresh_power()
        self.finish()

    def _apply(self, action: str, vms: list[LabVM], tick: Callable[[float, str | None], None]) -> None:
        client = self.context.client
        deadline = settings.NESTLAB_VSPHERE_TASK_DEADLINE
        for index, vm in enumerate(vms):
            state = client.power_state(vm.moref)
            if action == "on" and state != LabVM.PowerState.ON:
                client.power_on(vm.moref, deadline=deadline)
            elif action == "off" and state == LabVM.PowerState.ON:
                client.shutdown_guest(vm.moref, timeout=GUEST_SHUTDOWN_TIMEOUT, deadline=deadline)
            elif action == "reset":
                if state == LabVM.PowerState.ON:
                    client.reset(vm.moref, deadline=deadline)
                else:
                    client.power_on(vm.moref, deadline=deadline)
            tick(100 * (index + 1) / len(vms), None)


@register
class DeleteLab(LabJob):
    kind = Operation.Kind.DELETE
    busy_state = Lab.State.DELETING

    def perform(self) -> None:
        lab = self.lab
        problems = self.step(
            f"Removing {lab.vms.count()} VMs, the network, pool and folder", 95, lambda tick: self.builder.tear_down()
        )
        self.builder.refresh_power()
        if problems:
            raise OperationFailed(f"Some of the lab could not be removed: {'; '.join(problems)}.")
        release_vlans(lab)
        lab.refresh_from_db()
        lab.deleted_at = timezone.now()
        lab.save(update_fields=["deleted_at"])
        mark_state(lab, Lab.State.DELETED)

    def on_failure(self, reason: str) -> None:
        mark_state(self.lab, Lab.State.ERROR, f"Deleting failed: {reason} Delete again to retry.")
