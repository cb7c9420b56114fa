"""Celery tasks of the project itself: thin."""

from __future__ import annotations

from celery import shared_task

from core import audit


@shared_task(name="core.prune_audit_log", ignore_result=True)
def prune_audit_log() -> int:
    return audit.audit_prune()
