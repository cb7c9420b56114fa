"""Publish a template version: check every VM in vCenter, take the baseline snapshots,
record each VM's size for quota arithmetic.

A template may be published to extra endpoints besides its own (``LabTemplate.extra_endpoints``):
each holds a copy of every source VM at the same inventory path under its own datacenter. The
template's own endpoint decides: when it fails, the publish fails and leaves nothing behind.
An extra endpoint that fails (unreachable, a VM missing or different) gets a failed baseline
with the reason in words and none of this publish's snapshots; the version publishes with the
endpoints that succeeded, and labs are built only there (labs.placement).
"""

from __future__ import annotations

import copy
from typing import Any

from django.conf import settings

from courses import services as course_services
from courses.models import TemplateVersion, VCenterEndpoint, VersionBaseline
from labs import template_sources
from labs.endpoints import endpoint_client
from labs.jobs.runner import Job, OperationFailed, register
from labs.models import LabVM, Operation
from labs.vsphere import NotFound, VMInfo, VSphereClient, VSphereError


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


def copy_differences(vm: dict[str, Any], original: VMInfo, copy: VMInfo) -> list[str]:
    """How an extra endpoint's copy of a source VM differs from the original, in words (empty: the same VM)."""
    label = f"{vm['role']} ({copy.path})"
    differences = []
    for what, mine, theirs in (
        ("CPUs", copy.num_cpu, original.num_cpu),
        ("MB of memory", copy.memory_mb, original.memory_mb),
        ("network adapters", len(copy.nics), len(original.nics)),
    ):
        if mine != theirs:
            differences.append(f"{label} has {mine} {what}, the template's VM {theirs}")
    if abs(copy.disk_gb - original.disk_gb) > 0.5:
        differences.append(f"{label} has {copy.disk_gb:.0f} GB of disk, the template's VM {original.disk_gb:.0f} GB")
    return differences


def copy_path(path: str, source: VCenterEndpoint, target: VCenterEndpoint) -> str:
    """The same inventory path under the target endpoint's datacenter."""
    prefix = f"/{source.datacenter}/"
    return f"/{target.datacenter}/{path[len(prefix) :]}" if path.startswith(prefix) else path


class EndpointRefused(Exception):
    """An extra endpoint cannot serve the version; the message says why, in words."""


@register
class PublishTemplate(Job):
    kind = Operation.Kind.PUBLISH

    def run(self) -> None:
        version = self._version()
        spec = copy.deepcopy(version.spec)
        vms = spec["vms"]
        client = self.context.client
        home = self.context.operation.endpoint
        extras = list(version.template.extra_endpoints.exclude(pk=home.pk).order_by("name"))
        home_share = 100 / (1 + len(extras))

        infos: dict[str, VMInfo] = {}
        problems: list[str] = []
        with self.context.step(f"Checking {len(vms)} VMs in vCenter", share=home_share * 0.3) as progress:
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
                if refusal := template_sources.vm_refusal(home, info):
                    # Before any snapshot: a lab VM must never be touched by a publish.
                    problems.append(f"{vm['role']} ({info.name}) {refusal}")
                    continue
                problems.extend(vm_problems(vm, info))
                progress(100 * (index + 1) / len(vms))
        if problems:
            self.context.result["problems"] = problems  # the operation page lists them one per line
            raise OperationFailed(" ".join(problems))

        snapshot_name = baseline_snapshot_name(version)
        share = home_share * 0.7 / len(vms)
        home_vms = {}
        for vm in vms:
            info = infos[vm["role"]]
            with self.context.step(f"Baseline snapshot of {vm['role']}", share=share) as progress:
                vm["baseline_snapshot"] = self._baseline(client, home, info.moref, snapshot_name, progress)
            home_vms[vm["role"]] = {"moref": info.moref, "snapshot": vm["baseline_snapshot"]}
            vm.update(
                source_name=info.name,
                source_path=info.path,
                num_cpu=vm["cpu_override"] or info.num_cpu,
                memory_mb=vm["memory_mb_override"] or info.memory_mb,
                disk_gb=info.disk_gb,
                guest_nested_hv=info.nested_hv,
            )
        spec["baseline_snapshot_name"] = snapshot_name
        baselines = [{"endpoint_id": home.pk, "state": VersionBaseline.State.READY, "vms": home_vms}]
        for endpoint in extras:
            with self.context.step(f"Baseline on {endpoint.name}", share=home_share):
                baselines.append(self._publish_on(endpoint, vms, infos, snapshot_name))
        failed = [baseline["error"] for baseline in baselines if baseline["state"] == VersionBaseline.State.FAILED]
        if failed:
            self.context.result["endpoint_problems"] = failed  # the version serves the others
        course_services.template_version_publish_succeeded(version=version, spec=spec, baselines=baselines)
        self.context.result["version"] = {"id": version.pk, "number": version.number}

    def _publish_on(
        self, endpoint: VCenterEndpoint, vms: list[dict[str, Any]], originals: dict[str, VMInfo], snapshot_name: str
    ) -> dict[str, Any]:
        """The version's baseline on an extra endpoint, or a failed one that says why (and leaves
        none of this publish's snapshots there)."""
        home = self.context.operation.endpoint
        taken_before = len(self.context.result.get("snapshots_taken", []))
        try:
            client = endpoint_client(endpoint)
            copies: dict[str, VMInfo] = {}
            for vm in vms:
                original = originals[vm["role"]]
                path = copy_path(original.path, home, endpoint)
                found = client.find(path)
                if found is None:
                    raise EndpointRefused(
                        f"{vm['role']} is not at {path} on {endpoint.name}: copy the template's VMs there "
                        "(a subscribed content library, say) and publish again."
                    )
                copy_info = client.vm_info(found.moref)
                problems = copy_differences(vm, original, copy_info)
                if refusal := template_sources.vm_refusal(endpoint, copy_info):
                    problems.append(f"{vm['role']} ({path}) {refusal}")
                problems.extend(vm_problems(vm, copy_info))
                if problems:
                    raise EndpointRefused(" ".join(problems))
                copies[vm["role"]] = copy_info
            baseline_vms = {
                role: {
                    "moref": info.moref,
                    "snapshot": self._baseline(client, endpoint, info.moref, snapshot_name, lambda *_: None),
                }
                for role, info in copies.items()
            }
        except (EndpointRefused, VSphereError) as failure:
            error = f"Not published to {endpoint.name}: {failure}"
            try:
                self._remove_snapshots(self.context.result.get("snapshots_taken", [])[taken_before:])
            except VSphereError as cleanup:
                error += f" Its baseline snapshots there could not be removed ({cleanup}); remove them by hand."
            del self.context.result.setdefault("snapshots_taken", [])[taken_before:]
            return {"endpoint_id": endpoint.pk, "state": VersionBaseline.State.FAILED, "vms": {}, "error": error}
        return {"endpoint_id": endpoint.pk, "state": VersionBaseline.State.READY, "vms": baseline_vms}

    def _version(self) -> TemplateVersion:
        version = self.context.operation.template_version
        if version is None:
            raise OperationFailed("The template version to publish was deleted.")
        return version

    def _baseline(self, client: VSphereClient, endpoint: VCenterEndpoint, vm_moref: str, name: str, progress) -> str:
        """Find the snapshot a previous try made, or take it (remembering it for undo)."""
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
        self.context.result.setdefault("snapshots_taken", []).append(
            {"endpoint_id": endpoint.pk, "vm": vm_moref, "snapshot": moref}
        )
        return moref

    def _remove_snapshots(self, taken: list[dict[str, Any]]) -> None:
        home = self.context.operation.endpoint
        for snapshot in taken:
            endpoint_id = snapshot.get("endpoint_id", home.pk)  # older rows name no endpoint: the home one
            client = (
                self.context.client
                if endpoint_id == home.pk
                else endpoint_client(VCenterEndpoint.objects.get(pk=endpoint_id))
            )
            client.remove_snapshot(
                snapshot["vm"], snapshot["snapshot"], deadline=settings.NESTLAB_VSPHERE_TASK_DEADLINE
            )

    def on_failure(self, reason: str) -> None:
        """Remove the snapshots this publish took, so a failed publish leaves the VMs as they were."""
        version = self.context.operation.template_version
        self._remove_snapshots(self.context.result.get("snapshots_taken", []))
        if version is not None:
            course_services.template_version_publish_failed(
                version=version, reason=reason, problems=self.context.result.get("problems")
            )
