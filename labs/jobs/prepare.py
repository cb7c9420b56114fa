"""Prepare a template's source VMs for publishing: power off the ones that run, turn on nested
hardware virtualization where the template needs it.

What a new user hit (issue 10): a picked VM that was powered on, or had nested virtualization
off where the template needs it, was only refused at publish, with words pointing at the vSphere
Client. This job does what those words asked, from the template page, after a confirmation.
It never touches a VM that cannot be a template source (``labs.template_sources``).
"""

from __future__ import annotations

from django.conf import settings

from courses.models import LabTemplate
from labs import template_sources
from labs.jobs.runner import Job, OperationFailed, register
from labs.models import Operation
from labs.template_sources import RUNNING_STATES
from labs.vsphere import NotFound


@register
class PrepareSources(Job):
    kind = Operation.Kind.PREPARE_SOURCES

    def run(self) -> None:
        template = self._template()
        client = self.context.client
        endpoint = self.context.operation.endpoint
        vms = list(template.vms.order_by("boot_order", "role"))
        if not vms:
            raise OperationFailed(f"{template.name} has no VMs to prepare.")
        done = self.context.result.setdefault("changes", [])
        share = 100 / len(vms)
        for vm in vms:
            with self.context.step(f"Preparing {vm.role}", share=share):
                try:
                    info = client.vm_info(vm.source_moref)
                except NotFound:
                    raise OperationFailed(
                        f"{vm.role} ({vm.source_name}) is no longer in vCenter; pick it again or remove it."
                    ) from None
                if refusal := template_sources.vm_refusal(endpoint, info):
                    raise OperationFailed(f"{vm.role} ({info.name}) {refusal} Nothing was changed on it.")
                deadline = settings.NESTLAB_VSPHERE_TASK_DEADLINE
                if info.power_state in RUNNING_STATES:
                    client.power_off(info.moref, deadline=deadline)
                    done.append(f"Powered off {vm.role} ({info.name}).")
                if vm.nested_hv_required and not info.nested_hv:
                    # After the power-off: vCenter changes this setting only on a VM that is off.
                    client.reconfigure_vm(info.moref, nested_hv=True, deadline=deadline)
                    done.append(f"Turned on nested hardware virtualization on {vm.role} ({info.name}).")
        if not done:
            done.append("Every VM was ready already: nothing changed.")

    def _template(self) -> LabTemplate:
        template = LabTemplate.objects.filter(pk=self.context.operation.params.get("template")).first()
        if template is None:
            raise OperationFailed("The template was deleted.")
        return template
