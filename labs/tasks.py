"""Celery entry points only: thin; the queue message only says which operation to run.

Which queue and how an operation is sent is labs.dispatch's (imported by services and the
reaper, which this module imports)."""

from __future__ import annotations

from celery import shared_task
from celery.signals import worker_ready
from django.conf import settings

from labs import dispatch, jobs, lifecycle, pools, services, sessions
from labs.dispatch import POOL_TICK, RUN_OPERATION, TELL_BUILD_LINE
from labs.reaper import reap


@shared_task(name=RUN_OPERATION, ignore_result=True)
def run_operation(operation_id: int, abandon_reason: str | None = None) -> None:
    jobs.execute(operation_id, abandon_reason=abandon_reason)


@shared_task(name=TELL_BUILD_LINE, ignore_result=True)
def tell_build_line(endpoint_id: int) -> int:
    return dispatch.line_tell(endpoint_id)


@shared_task(name="labs.reap_operations", ignore_result=True)
def reap_operations() -> dict:
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
    return vars(lifecycle.tick())


@shared_task(name="labs.sessions_tick", ignore_result=True)
def sessions_tick() -> dict:
    result = sessions.tick_alone()
    return vars(result) if result is not None else {"skipped": True}


@shared_task(name=POOL_TICK, ignore_result=True)
def pool_tick(course_id: int) -> dict:
    """One course's warm pool, right after a take (labs.dispatch.pool_nudge)."""
    result = pools.course_pool_tick_alone(course_id)
    return vars(result) if result is not None else {"skipped": True}


@shared_task(name="labs.pools_tick", ignore_result=True)
def pools_tick() -> int:
    """Every course's warm pool: beat's minute."""
    return len(pools.tick_alone())
