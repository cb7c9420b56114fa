"""Publish a template version: check every VM in vCenter, take the baseline snapshots,
record each VM's size for quota arithmetic."""

from __future__ import annotations

import copy
from typing import Any

from django.conf import settings

from courses import services as course_services
from courses.models import TemplateVersion
from labs import template_sources
from labs.jobs.runner import Job, OperationFailed, register
from labs.models import LabVM, Operation
from labs.vsphere import NotFound, VMInfo


def baseline_snapshot_name(version: TemplateVersion) -> str:
    """The snapshot that student labs are linked-cloned from; findable again on a retry."""
    return f"nestlab-baseline t{version.template_id} v{version.number}"


def vm_problems(vm: dict[str, Any], info: VMInfo) -> list[str]:
    """What keeps a source VM from being published, in words (empty when it is fine)."""
    label = f"{vm['role']} ({info.name})"
    problems = []
    if info.power_state != LabVM.PowerState.OFF:
        problems.append(
            f"{label} is {template_sources.power_words(info.power_state)}; power it off so its baseline is consistent "
            "(Prepare the VMs… on the template page does it)."
        )
    if vm["nested_hv_required"] and not info.nested_hv:
        problems.append(
            f"{label} needs nested hardware virtualization, but it is off on the VM "
            "(Prepare the VMs… on the template page turns it on)."
        )
    if len(vm["nic_networks"]) > len(info.nics):
        problems.append(
            f"{label} has {len(info.nics)} network adapter(s) but the template puts "
            f"{len(vm['nic_networks'])} on lab networks."
        )
    return problems


@register
class PublishTemplate(Job):
    kind = Operation.Kind.PUBLISH

    def run(self) -> None:
        version = self._version()
        spec = copy.deepcopy(version.spec)
        vms = spec["vms"]
        client = self.context.client

        infos: dict[str, VMInfo] = {}
        problems: list[str] = []
        with self.context.step(f"Checking {len(vms)} VMs in vCenter", share=30) as progress:
            for index, vm in enumerate(vms):
                try:
                    info = client.vm_info(vm["source_moref"])
                except NotFound:
                    problems.append(
                        f"{vm['role']} ({vm['source_name']}) is no longer in vCenter; "
                        "pick it again or remove it from the template."
                    )
                    continue
                infos[vm["role"]] = info
                if refusal := template_sources.vm_refusal(self.context.operation.endpoint, info):
                    # Before any snapshot: a lab VM must never be touched by a publish.
                    problems.append(f"{vm['role']} ({info.name}) {refusal}")
                    continue
                problems.extend(vm_problems(vm, info))
                progress(100 * (index + 1) / len(vms))
        if problems:
            self.context.result["problems"] = problems  # the operation page lists them one per line
            raise OperationFailed(" ".join(problems))

        snapshot_name = baseline_snapshot_name(version)
        share = 70 / len(vms)
        for vm in vms:
            info = infos[vm["role"]]
            with self.context.step(f"Baseline snapshot of {vm['role']}", share=share) as progress:
                vm["baseline_snapshot"] = self._baseline(info.moref, snapshot_name, progress)
            vm.update(
                source_name=info.name,
                source_path=info.path,
                num_cpu=vm["cpu_override"] or info.num_cpu,
                memory_mb=vm["memory_mb_override"] or info.memory_mb,
                disk_gb=info.disk_gb,
                guest_nested_hv=info.nested_hv,
            )
        spec["baseline_snapshot_name"] = snapshot_name
        course_services.template_version_publish_succeeded(version=version, spec=spec)
        self.context.result["version"] = {"id": version.pk, "number": version.number}

    def _version(self) -> TemplateVersion:
        version = self.context.operation.template_version
        if version is None:
            raise OperationFailed("The template version to publish was deleted.")
        return version

    def _baseline(self, vm_moref: str, name: str, progress) -> str:
        """Find the snapshot a previous try made, or take it (remembering it for undo)."""
        client = self.context.client
        existing = client.find_snapshot(vm_moref, name)
        if existing is not None:
            return existing.moref
        moref = client.create_snapshot(
            vm_moref,
            name,
            description="Nestlab baseline: student labs are cloned from this snapshot. Do not delete it.",
            on_progress=progress,
            deadline=settings.NESTLAB_VSPHERE_TASK_DEADLINE,
        )
        self.context.result.setdefault("snapshots_taken", []).append({"vm": vm_moref, "snapshot": moref})
        return moref

    def on_failure(self, reason: str) -> None:
        """Remove the snapshots this publish took, so a failed publish leaves the VMs as they were."""
        version = self.context.operation.template_version
        for taken in self.context.result.get("snapshots_taken", []):
            self.context.client.remove_snapshot(
                taken["vm"], taken["snapshot"], deadline=settings.NESTLAB_VSPHERE_TASK_DEADLINE
            )
        if version is not None:
            course_services.template_version_publish_failed(
                version=version, reason=reason, problems=self.context.result.get("problems")
            )
