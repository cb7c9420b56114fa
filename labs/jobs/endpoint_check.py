"""Check a vCenter endpoint: it answers, the login works, the placement exists."""

from __future__ import annotations

from labs.jobs.runner import Job, OperationFailed, register
from labs.models import Operation


@register
class EndpointCheck(Job):
    kind = Operation.Kind.ENDPOINT_CHECK

    def run(self) -> None:
        endpoint = self.context.operation.endpoint
        with self.context.step(f"Logging in to {endpoint.url}", share=40):
            client = self.context.client
            about = client.about()
        self.context.result["vcenter"] = {"name": about.name, "version": about.version}
        with self.context.step("Looking up the datacenter, cluster, datastore and switch", share=60):
            report = client.validate_placement(
                datacenter=endpoint.datacenter,
                compute_path=endpoint.compute_path,
                datastore=endpoint.datastore,
                switch=endpoint.lab_switch,
            )
        self.context.result["checks"] = [
            {"name": check.name, "ok": check.ok, "message": check.message} for check in report.checks
        ]
        failures = [check.message for check in report.checks if not check.ok]
        if failures:
            raise OperationFailed(" ".join(failures))
