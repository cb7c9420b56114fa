"""Celery tasks: thin; the queue message only says which operation to run."""

from __future__ import annotations

from celery import shared_task

from labs import jobs


@shared_task(name="labs.run_operation", ignore_result=True)
def run_operation(operation_id: int) -> None:
    jobs.execute(operation_id)
