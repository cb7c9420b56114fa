"""Every write of the labs app: start and cancel operations on vCenter."""

from __future__ import annotations

import uuid
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone

from courses import services as course_services
from courses.models import LabTemplate, VCenterEndpoint
from labs import realtime
from labs.models import Operation
from portal import roles


def _enqueue(operation_id: int, task_id: str) -> None:
    from labs.tasks import run_operation

    run_operation.apply_async(args=[operation_id], task_id=task_id)


def operation_start(
    *,
    kind: str,
    endpoint: VCenterEndpoint,
    actor: AbstractBaseUser | None,
    params: dict[str, Any] | None = None,
    **targets: Any,
) -> Operation:
    """Record an operation and hand it to a worker once the caller's transaction commits.

    Callers check permission and quota first, inside the same transaction, so a refused
    request leaves no row and an accepted one is never lost between the row and the queue.
    """
    with transaction.atomic():
        operation = Operation(
            kind=kind,
            endpoint=endpoint,
            actor=actor if actor is not None and actor.is_authenticated else None,
            params=params or {},
            celery_task_id=str(uuid.uuid4()),
            **targets,
        )
        operation.full_clean()
        operation.save()
        transaction.on_commit(lambda: _enqueue(operation.pk, operation.celery_task_id), robust=False)
    return operation


def operation_cancel(*, operation: Operation, actor: AbstractBaseUser) -> Operation:
    """Cancel a queued operation at once; ask a running one to stop after its current step."""
    if not (roles.is_admin(actor) or operation.actor_id == actor.pk):
        raise PermissionDenied("Only the person who started an operation, or an admin, can cancel it.")
    with transaction.atomic():
        locked = Operation.objects.select_for_update().get(pk=operation.pk)
        if locked.is_final:
            raise ValidationError(f"The operation already ended ({locked.get_state_display().lower()}).")
        if locked.state == Operation.State.QUEUED:
            locked.state = Operation.State.CANCELLED
            locked.error = "Cancelled before it started."
            locked.finished_at = timezone.now()
        locked.cancel_requested = True
        locked.seq += 1
        locked.save(update_fields=["state", "error", "finished_at", "cancel_requested", "seq"])
        realtime.operation_changed(locked)
    return locked


def endpoint_check_start(*, endpoint: VCenterEndpoint, actor: AbstractBaseUser) -> Operation:
    """Check that a vCenter answers, the login works and the placement exists (admins only)."""
    if not roles.is_admin(actor):
        raise PermissionDenied("Only admins can check vCenter connections.")
    return operation_start(kind=Operation.Kind.ENDPOINT_CHECK, endpoint=endpoint, actor=actor)


def template_publish(*, template: LabTemplate, actor: AbstractBaseUser) -> Operation:
    """Freeze the template's draft into a new version and check and snapshot it in vCenter.

    The version stays "publishing" until the operation ends; only then can courses use it.
    """
    with transaction.atomic():
        version = course_services.template_version_create(template=template, actor=actor)
        return operation_start(
            kind=Operation.Kind.PUBLISH,
            endpoint=template.endpoint,
            actor=actor,
            params={"template": template.pk, "version": version.number},
            template_version=version,
        )
