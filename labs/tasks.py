"""Celery tasks: thin; the queue message only says which operation to run."""

from __future__ import annotations

from celery import shared_task

from labs import jobs, services


@shared_task(name="labs.run_operation", ignore_result=True)
def run_operation(operation_id: int) -> None:
    jobs.execute(operation_id)


@shared_task(name="labs.power_off_labs_out_of_hours", ignore_result=True)
def power_off_labs_out_of_hours() -> int:
    return len(services.labs_out_of_hours_power_off())
