"""Running operations: the machinery every kind of operation shares.

A kind of operation is a ``Job`` subclass registered with ``@register(kind)``; its
``run`` method performs the steps through the vSphere driver, each inside
``context.step(...)``, which records the step text and maps the step's own progress
(for example a vCenter task's 0-100) into the operation's overall progress.
``execute`` (called by the Celery task) claims the row, runs the job, keeps a
heartbeat and writes the final state with the reason in words.
"""

from labs.jobs.runner import Job, JobContext, OperationCancelled, OperationFailed, execute, register

# Kinds register themselves on import.
from labs.jobs import endpoint_check, guide_check, lab_ops, prepare, publish, reconcile  # noqa: F401  isort: skip

__all__ = ["Job", "JobContext", "OperationCancelled", "OperationFailed", "execute", "register"]
