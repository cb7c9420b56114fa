"""Celery tasks: thin; the queue message only says which operation to run."""

from __future__ import annotations

from celery import shared_task
from celery.signals import worker_ready
from django.conf import settings

from labs import jobs, services

# Operations that clone VMs wait for vCenter capacity and run for minutes: they get a
# queue (and workers) of their own, so a class being provisioned never keeps a student's
# power-on or snapshot waiting behind it (docs/benchmarks.md has the measurement).
BUILD_KINDS = frozenset({"provision", "clone", "reset", "publish"})


def queue_for(kind: str, *, reverts: bool = False) -> str:
    """The build queue for operations that clone VMs, the quick one for the rest. A reset
    that ``reverts`` (a ready lab with its baseline) is quick: it clones nothing, and on the
    build queue it waited minutes behind a class being provisioned (docs/benchmarks.md)."""
    default = settings.CELERY_TASK_DEFAULT_QUEUE
    builds = kind in BUILD_KINDS and not (kind == "reset" and reverts)
    return f"{default}-build" if builds else default


def send_operation(operation_id: int, *, task_id: str | None = None, **kwargs) -> None:
    """Hand an operation to a worker on the queue it belongs to."""
    from labs.models import Lab, LabSnapshot, Operation

    kind, lab_id = Operation.objects.values_list("kind", "lab_id").get(pk=operation_id)
    # A reset rebuilds a lab that has no baseline, or one in error (its VMs may be gone);
    # a ready lab with a baseline is reverted to it (ResetLab checks the baseline in vCenter
    # and, in the rare case it vanished meanwhile, rebuilds on the quick worker).
    reverts = (
        kind == Operation.Kind.RESET
        and Lab.objects.filter(pk=lab_id, state=Lab.State.READY).exists()
        and LabSnapshot.objects.filter(lab_id=lab_id, is_baseline=True).exists()
    )
    queue = queue_for(kind, reverts=reverts)
    run_operation.apply_async(args=[operation_id], kwargs=kwargs, task_id=task_id, queue=queue)


@shared_task(name="labs.run_operation", ignore_result=True)
def run_operation(operation_id: int, abandon_reason: str | None = None) -> None:
    jobs.execute(operation_id, abandon_reason=abandon_reason)


@shared_task(name="labs.reap_operations", ignore_result=True)
def reap_operations() -> dict:
    from labs.reaper import reap

    return vars(reap())


@worker_ready.connect
def reap_at_worker_start(sender=None, **kwargs) -> None:
    """A worker that starts after a crash finds the operations the dead one left.

    A supervisor restarts a killed worker within seconds, before the dead run's heartbeat
    is old enough to tell it dead; so the reaper runs again once it is, instead of leaving
    the operation to the next tick of beat after that (up to a minute later).
    """
    reap_operations.delay()
    reap_operations.apply_async(countdown=settings.NESTLAB_OPERATION_HEARTBEAT_TIMEOUT + 1)


@shared_task(name="labs.power_off_labs_out_of_hours", ignore_result=True)
def power_off_labs_out_of_hours() -> int:
    return len(services.labs_out_of_hours_power_off())


@shared_task(name="labs.reconcile_endpoints", ignore_result=True)
def reconcile_endpoints() -> int:
    return len(services.endpoints_reconcile_all())


@shared_task(name="labs.lifecycle_tick", ignore_result=True)
def lifecycle_tick() -> dict:
    from labs import lifecycle

    return vars(lifecycle.tick())
