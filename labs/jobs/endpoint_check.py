"""Check a vCenter endpoint: it answers, the login works, the placement exists."""

from __future__ import annotations

from labs import placement
from labs.jobs.runner import Job, OperationFailed, register
from labs.models import Operation


@register
class EndpointCheck(Job):
    kind = Operation.Kind.ENDPOINT_CHECK

    def run(self) -> None:
        endpoint = self.context.operation.endpoint
        with self.context.step(f"Logging in to {endpoint.url}", share=40):
            client = self.context.client
            server = client.server_info()
        placement.endpoint_reachable_mark(endpoint_id=endpoint.pk)  # it answered: new labs may go there again
        self.context.result["vcenter"] = {"name": server.full_name, "api_version": server.api_version}
        with self.context.step("Looking up the datacenter, cluster, datastore and switch", share=60):
            report = client.check_placement(
                datacenter=endpoint.datacenter,
                compute=endpoint.compute_path,
                datastore=endpoint.datastore,
                switch=endpoint.lab_switch,
            )
        self.context.result["checks"] = [
            {"name": check.name, "ok": check.ok, "message": check.detail} for check in report.checks
        ]
        if not report.ok:
            # Checks after a failed one report "not checked": the first failures say why.
            reasons = [check.detail for check in report.failures() if not check.detail.startswith("not checked")]
            raise OperationFailed(" ".join(dict.fromkeys(reasons)) or "The placement checks failed.")
