"""Operations in the audit log: each one twice, when it is accepted and when it ends.

``operation_accepted`` is called by ``labs.services.operation_start`` inside the transaction
that creates the row (a refused or rolled-back click leaves neither); ``operation_ended`` by
the runner when it ends a row (succeeded, failed, cancelled, abandoned by the reaper) and by
``labs.services.operation_cancel`` for a queued one it ends at once. The portal's own
operations (lifecycle, reconciler, lab hours) have no actor.
"""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser

from core.audit import Category, Result, Source, Target, audit_record, describe, never_fails
from labs.models import Operation

ACTIONS = {
    Operation.Kind.ENDPOINT_CHECK: "endpoint.check",
    Operation.Kind.RECONCILE: "endpoint.reconcile",
    Operation.Kind.PUBLISH: "template.publish",
    Operation.Kind.PREPARE_SOURCES: "template.prepare_sources",
    Operation.Kind.PROVISION: "lab.provision",
    Operation.Kind.SNAPSHOT: "lab.snapshot",
    Operation.Kind.DELETE_SNAPSHOT: "lab.delete_snapshot",
    Operation.Kind.REVERT: "lab.revert",
    Operation.Kind.RESET: "lab.reset",
    Operation.Kind.CLONE: "lab.clone",
    Operation.Kind.POWER: "lab.power",
    Operation.Kind.DELETE: "lab.delete",
}
RESULTS = {
    Operation.State.SUCCEEDED: Result.SUCCEEDED,
    Operation.State.FAILED: Result.FAILED,
    Operation.State.CANCELLED: Result.CANCELLED,
}
# Request parameters worth naming in the log (the others are ids the target already gives).
PARAMS_SHOWN = ("action", "name", "snapshot", "source_lab", "version", "reason", "template")


def _target(operation: Operation) -> Target:
    if operation.lab_id is not None:
        return describe(operation.lab)
    if operation.template_version_id is not None:
        return describe(operation.template_version)
    return describe(operation.endpoint)


def _what(operation: Operation) -> str:
    shown = [f"{name} {operation.params[name]}" for name in PARAMS_SHOWN if operation.params.get(name) is not None]
    return f"{operation.get_kind_display()} #{operation.pk}" + (f" ({', '.join(shown)})" if shown else "")


@never_fails
def operation_accepted(operation: Operation) -> None:
    """The click (or the portal's own decision) that queued an operation."""
    audit_record(
        category=Category.OPERATION,
        action=ACTIONS.get(operation.kind, f"operation.{operation.kind}"),
        result=Result.ACCEPTED,
        actor=operation.actor,
        target=_target(operation),
        detail=f"{_what(operation)} is queued.",
    )


@never_fails
def operation_ended(operation: Operation, *, cancelled_by: AbstractBaseUser | None = None) -> None:
    """How an operation ended, with the error in words. Ended by a worker unless ``cancelled_by``
    someone before it started (then the entry is theirs, from their page or API call)."""
    if operation.state == Operation.State.SUCCEEDED:
        seconds = operation.duration_seconds
        outcome = "succeeded" + (f" in {seconds:.0f} s" if seconds is not None else "")
    else:
        outcome = f"{operation.get_state_display().lower()}: {operation.error or 'no reason given'}"
    by_worker = cancelled_by is None
    audit_record(
        category=Category.OPERATION,
        action=ACTIONS.get(operation.kind, f"operation.{operation.kind}"),
        result=RESULTS.get(operation.state, Result.FAILED),
        actor=operation.actor if by_worker else cancelled_by,
        target=_target(operation),
        detail=f"{_what(operation)} {outcome}"
        + ("" if by_worker or cancelled_by.pk == operation.actor_id else f" (by {cancelled_by.get_username()})"),
        source=Source.WORKER if by_worker else None,
    )


@never_fails
def operation_cancel_requested(operation: Operation, *, actor: AbstractBaseUser) -> None:
    """Someone asked a running operation to stop; its end (cancelled, or done anyway) follows."""
    audit_record(
        category=Category.OPERATION,
        action="operation.cancel",
        result=Result.ACCEPTED,
        actor=actor,
        target=_target(operation),
        detail=f"Asked {_what(operation)} to stop after its current step.",
    )
