"""Reconcile an endpoint: compare what vCenter holds with what the database says.

VMs carrying a ``nestlab.lab_id`` attribute and ``nestlab-lab*`` port groups that belong
to no live lab are orphans: recorded when first seen, removed once they have stayed
orphans past the grace period (a lab being built or deleted right now is never touched).
Labs whose VMs vanished from vCenter are marked broken, in words; Reset rebuilds them.
"""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from labs.jobs.runner import Job, OperationFailed, register
from labs.metering import lab_vms_vanished
from labs.models import LAB_ATTRIBUTE, Lab, LabNetwork, LabVM, Operation, Orphan
from labs.vsphere import NotFound, VSphereError

PORT_GROUP_PREFIX = "nestlab-lab"
# More labs than this (and more than half of them) vanishing in one pass aborts the pass.
MAX_BROKEN_AT_ONCE = 5


def _busy_lab_ids(endpoint_id: int) -> set[int]:
    """Labs being built, changed or removed right now: their VMs come and go legitimately."""
    return set(
        Operation.objects.filter(
            endpoint_id=endpoint_id, state__in=Operation.ACTIVE_STATES, lab__isnull=False
        ).values_list("lab_id", flat=True)
    )


@register
class Reconcile(Job):
    kind = Operation.Kind.RECONCILE

    def run(self) -> None:
        operation = self.context.operation
        endpoint = operation.endpoint
        client = self.context.client
        now = timezone.now()
        busy = _busy_lab_ids(endpoint.pk)
        labs = {lab.pk: lab for lab in Lab.objects.filter(endpoint=endpoint)}

        with self.context.step("Reading the lab VMs in vCenter", share=30):
            in_vcenter = client.attribute_values(LAB_ATTRIBUTE, under=f"/{endpoint.datacenter}/vm")
        known = {
            vm.moref: vm
            for vm in LabVM.objects.filter(lab__endpoint=endpoint, lab__state__in=Lab.ACTIVE_STATES).exclude(moref="")
        }
        if in_vcenter is None:
            if known:
                # Labs were built, so the attribute existed: vCenter is not telling the whole story.
                raise OperationFailed(
                    f"vCenter has no '{LAB_ATTRIBUTE}' custom attribute although {len(known)} lab VM(s) carry it "
                    "in Nestlab's records; nothing was changed. Check the portal account's privileges."
                )
            in_vcenter = {}
        found: list[tuple[str, str, str, str]] = []
        for moref, (name, lab_id) in in_vcenter.items():
            if moref in known:
                continue
            lab = labs.get(int(lab_id)) if lab_id.isdigit() else None
            if lab is not None and (lab.pk in busy or lab.state == Lab.State.PROVISIONING):
                continue
            if lab is None:
                reason = f"no lab has id {lab_id}"
            elif not lab.is_active:
                reason = f"its lab {lab.name} is {lab.get_state_display().lower()}"
            else:
                reason = f"not one of the VMs of lab {lab.name}"
            found.append((Orphan.Kind.VM, moref, name, reason))

        with self.context.step("Checking the lab networks", share=15):
            live_groups = set(
                LabNetwork.objects.filter(endpoint=endpoint, released=False).values_list("port_group", flat=True)
            )
            busy_groups = set(
                LabNetwork.objects.filter(endpoint=endpoint, lab_id__in=busy).values_list("port_group", flat=True)
            )
            for network in client.list_networks(f"/{endpoint.datacenter}"):
                name = network.name
                if name.startswith(PORT_GROUP_PREFIX) and name not in live_groups and name not in busy_groups:
                    found.append((Orphan.Kind.PORT_GROUP, name, name, "no live lab uses this network"))

        broken = self._mark_broken_labs(endpoint.pk, in_vcenter, busy)
        seen = self._record(endpoint, found, now)
        with self.context.step("Removing orphans past their grace period", share=45):
            removed, failed = self._remove(endpoint, operation, now)
        self.context.result.update(
            {
                "orphans_seen": seen,
                "removed": removed,
                "not_removed": failed,
                "broken_labs": broken,
                "grace_minutes": settings.NESTLAB_ORPHAN_GRACE_MINUTES,
            }
        )

    def _mark_broken_labs(self, endpoint_id: int, in_vcenter: dict, busy: set[int]) -> list[str]:
        # Ready labs, and labs in error after a failed operation (whose VMs may have gone
        # since: their rows must not keep saying "poweredOn"). VMs already known missing
        # are not news.
        settled = list(
            Lab.objects.filter(endpoint_id=endpoint_id, state__in=(Lab.State.READY, Lab.State.ERROR)).exclude(
                pk__in=busy
            )
        )
        missing_by_lab = {
            lab.pk: sorted(
                vm.role
                for vm in lab.vms.all()
                if vm.moref and vm.power_state != LabVM.PowerState.MISSING and vm.moref not in in_vcenter
            )
            for lab in settled
        }
        hit = [lab for lab in settled if missing_by_lab[lab.pk]]
        if len(hit) > max(MAX_BROKEN_AT_ONCE, len(settled) // 2):
            # Half the class vanishing at once is far likelier a bad read than a real loss.
            raise OperationFailed(
                f"{len(hit)} of {len(settled)} labs would be marked broken at once; that looks like a "
                "problem reading vCenter, so nothing was changed. Run Reconcile again, or check vCenter."
            )
        broken = []
        for lab in hit:
            lab_vms_vanished(lab=lab, roles=missing_by_lab[lab.pk])
            broken.append(lab.name)
        return broken

    def _record(self, endpoint, found, now) -> list[dict]:
        present = {(kind, moref) for kind, moref, _, _ in found}
        for kind, moref, name, reason in found:
            Orphan.objects.update_or_create(
                endpoint=endpoint,
                kind=kind,
                moref=moref,
                removed_at__isnull=True,
                defaults={"name": name, "reason": reason, "last_seen": now},
            )
        # Orphans no longer there went away by other means: close their rows.
        for orphan in Orphan.objects.filter(endpoint=endpoint, removed_at__isnull=True):
            if (orphan.kind, orphan.moref) not in present:
                orphan.removed_at = now
                orphan.error = "It was gone before Nestlab removed it."
                orphan.save(update_fields=["removed_at", "error"])
        return [{"kind": k, "name": n, "reason": r} for k, _, n, r in found]

    def _remove(self, endpoint, operation, now) -> tuple[list[str], list[str]]:
        client = self.context.client
        grace = timedelta(minutes=settings.NESTLAB_ORPHAN_GRACE_MINUTES)
        removed, failed = [], []
        for orphan in Orphan.objects.filter(endpoint=endpoint, removed_at__isnull=True, first_seen__lte=now - grace):
            try:
                if orphan.kind == Orphan.Kind.VM:
                    client.destroy_vm(orphan.moref, deadline=settings.NESTLAB_VSPHERE_TASK_DEADLINE)
                elif orphan.kind == Orphan.Kind.PORT_GROUP:
                    client.remove_port_group(
                        datacenter=endpoint.datacenter,
                        cluster=endpoint.compute_path,
                        switch=endpoint.lab_switch,
                        name=orphan.moref,
                        deadline=settings.NESTLAB_VSPHERE_TASK_DEADLINE,
                    )
            except NotFound:
                pass
            except VSphereError as error:
                orphan.error = str(error)
                orphan.save(update_fields=["error"])
                failed.append(f"{orphan.name}: {error}")
                continue
            orphan.removed_at, orphan.removed_by, orphan.error = now, operation, ""
            orphan.save(update_fields=["removed_at", "removed_by", "error"])
            removed.append(orphan.name)
        return removed, failed
