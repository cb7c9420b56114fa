"""Celery tasks: thin; the queue message only says which operation to run."""

from __future__ import annotations

from celery import shared_task
from celery.signals import worker_ready

from labs import jobs, services


@shared_task(name="labs.run_operation", ignore_result=True)
def run_operation(operation_id: int, abandon_reason: str | None = None) -> None:
    jobs.execute(operation_id, abandon_reason=abandon_reason)


@shared_task(name="labs.reap_operations", ignore_result=True)
def reap_operations() -> dict:
    from labs.reaper import reap

    return vars(reap())


@worker_ready.connect
def reap_at_worker_start(sender=None, **kwargs) -> None:
    """A worker that starts after a crash finds the operations the dead one left."""
    reap_operations.delay()


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
