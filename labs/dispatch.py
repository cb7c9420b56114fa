"""Which queue an operation goes to, and the message that sends it there.

The message names the Celery task (``labs.run_operation``) instead of importing it, so the
request side (services) and the reaper hand work to workers without importing the Celery
entry points (labs.tasks), which import them: no import cycle, none dodged inside a function.
"""

from __future__ import annotations

from celery import current_app
from django.conf import settings

from labs.models import Operation

RUN_OPERATION = "labs.run_operation"

# Operations that clone VMs wait for vCenter capacity and run for minutes: they get a
# queue (and workers) of their own, so a class being provisioned never keeps a student's
# power-on or snapshot waiting behind it (docs/benchmarks.md has the measurement).
BUILD_KINDS = frozenset({Operation.Kind.PROVISION, Operation.Kind.CLONE, Operation.Kind.RESET, Operation.Kind.PUBLISH})

# A reset's plan, decided once when it is asked for (labs.services.lab_reset) and kept in the
# operation's params: a ready lab with a baseline is reverted to it, anything else is built
# again. The queue follows the plan and so does ResetLab (which rebuilds only if the baseline
# vanished from vCenter meanwhile).
RESET_REVERTS = "reverts"


def queue_for(kind: str, *, reverts: bool = False) -> str:
    """The build queue for operations that clone VMs, the quick one for the rest. A reset
    that ``reverts`` is quick: it clones nothing, and on the build queue it waited minutes
    behind a class being provisioned (docs/benchmarks.md)."""
    default = settings.CELERY_TASK_DEFAULT_QUEUE
    builds = kind in BUILD_KINDS and not (kind == Operation.Kind.RESET and reverts)
    return f"{default}-build" if builds else default


def send_operation(operation_id: int, *, task_id: str | None = None, **kwargs) -> None:
    """Hand an operation to a worker on the queue it belongs to."""
    kind, params = Operation.objects.values_list("kind", "params").get(pk=operation_id)
    queue = queue_for(kind, reverts=bool((params or {}).get(RESET_REVERTS)))
    current_app.send_task(RUN_OPERATION, args=[operation_id], kwargs=kwargs, task_id=task_id, queue=queue)
