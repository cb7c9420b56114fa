"""A lab whose build failed because vCenter could not be reached, as the worker leaves it."""

from __future__ import annotations

from labs.jobs.lab_build import mark_state
from labs.models import Lab, Operation
from labs.vsphere.errors import translate

VCENTER_HOST = "vc-a.internal.example.edu"


def unreachable_words() -> str:
    """The driver's words for a refused connection: they name vCenter's host and port."""
    return str(translate(ConnectionRefusedError(111, "Connection refused"), where=f"{VCENTER_HOST}:443"))


def fail_build(lab: Lab) -> Operation:
    """End the lab's provision as the runner does when vCenter is unreachable (labs/jobs/runner.py
    and ``ProvisionJob.on_failure``): the operation failed with the driver's words, the lab in error."""
    reason = unreachable_words()
    operation = lab.operations.get(kind=Operation.Kind.PROVISION)
    Operation.objects.filter(pk=operation.pk).update(state=Operation.State.FAILED, error=reason)
    mark_state(lab, Lab.State.ERROR, f"Provisioning failed: {reason} Reset tries again.")
    operation.refresh_from_db()
    return operation
