"""The operation runner: claim, run the steps, heartbeat, record the outcome."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from functools import cached_property
from typing import Any, ClassVar

from django.conf import settings
from django.db import close_old_connections, connection
from django.db.models import F, Q
from django.db.models.functions import Coalesce
from django.utils import timezone

from core.crypto import SecretUnreadable
from core.errors import ServiceUnavailable
from labs import audit, placement, realtime
from labs.endpoints import endpoint_client
from labs.models import Operation
from labs.vsphere.errors import Unreachable, VSphereError

logger = logging.getLogger(__name__)

# Progress writes closer together than this are coalesced (a vCenter task can report
# every percent); step changes and the final state are always written.
PROGRESS_WRITE_INTERVAL = 0.25
# At most this long between beats; shorter when the heartbeat timeout is short (tests),
# so that a live operation never looks dead between two beats.
HEARTBEAT_INTERVAL = 10.0


def heartbeat_interval() -> float:
    """Seconds between beats: a quarter of the timeout after which the reaper calls a worker dead."""
    return max(0.05, min(HEARTBEAT_INTERVAL, settings.NESTLAB_OPERATION_HEARTBEAT_TIMEOUT / 4))


class OperationFailed(Exception):
    """A step cannot go on; the message is shown to the user as the reason."""


class OperationCancelled(Exception):
    """Someone asked to cancel the operation; raised between steps."""


class Job:
    """One kind of operation. Subclasses set ``kind`` and implement ``run``.

    Steps must be idempotent: after a worker dies the operation may be run again from
    the start, and a step must then find what it already made instead of making it twice.
    """

    kind: ClassVar[str]

    def __init__(self, context: JobContext) -> None:
        self.context = context

    def run(self) -> None:
        raise NotImplementedError

    def on_failure(self, reason: str) -> None:
        """Undo or reconcile half-done work; called before the row is marked failed."""

    def on_cleanup_failed(self, reason: str) -> None:
        """``on_failure`` itself raised (vCenter went away meanwhile, say): leave what the
        job changed in the database in a state that says so, rather than half-way."""


REGISTRY: dict[str, type[Job]] = {}


def register(job_class: type[Job]) -> type[Job]:
    if job_class.kind in REGISTRY:
        raise ValueError(f"Operation kind {job_class.kind!r} is registered twice.")
    REGISTRY[job_class.kind] = job_class
    return job_class


class JobContext:
    """What a job sees: its operation row, the vCenter client, and step/progress helpers."""

    def __init__(self, operation: Operation) -> None:
        self.operation = operation
        self.result: dict[str, Any] = dict(operation.result or {})
        self._completed_share = 0.0
        self._last_write = 0.0

    @cached_property
    def client(self):
        """A vSphere client for the operation's endpoint (the per-process session)."""
        return endpoint_client(self.operation.endpoint)

    @contextmanager
    def step(self, text: str, *, share: float) -> Iterator[StepProgress]:
        """Run one step worth ``share`` percent of the whole operation."""
        self.raise_if_cancelled()
        start = self._completed_share
        self._write(step=text, progress=int(start), force=True)
        yield StepProgress(self, start, share)
        self._completed_share = min(100.0, start + share)
        self._write(progress=int(self._completed_share), force=False)

    def note(self, text: str) -> None:
        """Change the step text (e.g. "waiting for capacity") without moving progress."""
        if text != self.operation.step:
            self._write(step=text, force=True)

    def raise_if_cancelled(self) -> None:
        if Operation.objects.filter(pk=self.operation.pk, cancel_requested=True).exists():
            raise OperationCancelled()

    def _write(self, *, force: bool, **fields: Any) -> None:
        now = time.monotonic()
        if not force and now - self._last_write < PROGRESS_WRITE_INTERVAL:
            return
        if fields.get("progress") == self.operation.progress and "step" not in fields:
            return
        self._last_write = now
        for name, value in fields.items():
            setattr(self.operation, name, value)
        _save_and_push(self.operation, **fields)


class StepProgress:
    """Maps a step's own 0-100 progress into the operation's overall progress."""

    def __init__(self, context: JobContext, start: float, share: float) -> None:
        self._context = context
        self._start = start
        self._share = share

    def __call__(self, percent: int | float, description: str | None = None) -> None:
        self._context._write(force=False, progress=overall_progress(self._start, self._share, percent))


def overall_progress(start: float, share: float, percent: float) -> int:
    """Where ``percent`` of a step that began at ``start`` and is worth ``share`` lands overall."""
    bounded = max(0.0, min(100.0, float(percent)))
    return min(100, int(start + share * bounded / 100.0))


def _save_and_push(operation: Operation, **fields: Any) -> None:
    """Write the given fields (plus heartbeat and seq) and push the new state."""
    now = timezone.now()
    Operation.objects.filter(pk=operation.pk).update(heartbeat_at=now, seq=F("seq") + 1, **fields)
    operation.heartbeat_at = now
    # Read the number back: a cancel request may have bumped it meanwhile, and a client
    # drops a message whose seq is not newer than the last one it applied.
    operation.seq = Operation.objects.values_list("seq", flat=True).get(pk=operation.pk)
    realtime.operation_changed(operation)


class _Heartbeat(threading.Thread):
    """Beats while a step waits on vCenter without reporting progress."""

    def __init__(self, operation_id: int) -> None:
        super().__init__(name=f"heartbeat-{operation_id}", daemon=True)
        self._operation_id = operation_id
        self._stopped = threading.Event()
        self._interval = heartbeat_interval()

    def run(self) -> None:
        try:
            while not self._stopped.wait(self._interval):
                Operation.objects.filter(pk=self._operation_id, state=Operation.State.RUNNING).update(
                    heartbeat_at=timezone.now()
                )
        except Exception:
            logger.warning("Heartbeat of operation %s failed", self._operation_id, exc_info=True)
        finally:
            connection.close()

    def stop(self) -> None:
        self._stopped.set()
        self.join(timeout=self._interval + 5)


def _claim(operation_id: int) -> Operation | None:
    """Move a queued operation (or one whose worker died) to running; None if not ours.

    The conditional UPDATE makes a duplicate delivery of the same Celery message a no-op.
    """
    now = timezone.now()
    stale = now - timedelta(seconds=settings.NESTLAB_OPERATION_HEARTBEAT_TIMEOUT)
    claimed = (
        Operation.objects.filter(pk=operation_id)
        .filter(Q(state=Operation.State.QUEUED) | Q(state=Operation.State.RUNNING, heartbeat_at__lt=stale))
        .update(
            state=Operation.State.RUNNING,
            started_at=Coalesce(F("started_at"), now),
            heartbeat_at=now,
            attempts=F("attempts") + 1,
            seq=F("seq") + 1,
        )
    )
    if not claimed:
        return None
    operation = Operation.objects.select_related("endpoint", "actor").get(pk=operation_id)
    realtime.operation_changed(operation)
    return operation


def _finish(operation: Operation, state: str, *, error: str = "", result: dict | None = None) -> None:
    fields: dict[str, Any] = {
        "state": state,
        "error": error,
        "finished_at": timezone.now(),
        "result": result if result is not None else operation.result,
    }
    if state == Operation.State.SUCCEEDED:
        fields["progress"] = 100
        # A job may sum up how it went (a check: "2 of 3 checks pass"): the last words people see.
        fields["step"] = (fields["result"] or {}).get("summary") or "Done"
    for name, value in fields.items():
        setattr(operation, name, value)
    _save_and_push(operation, **fields)
    audit.operation_ended(operation)


def execute(operation_id: int, *, abandon_reason: str | None = None) -> None:
    """Run one operation to a final state. Called by the Celery task; never raises.

    With ``abandon_reason`` (the reaper, after workers died on it too often) the steps are
    not run again: the job undoes what it can and the operation ends failed with the reason.
    """
    close_old_connections()
    operation = _claim(operation_id)
    if operation is None:
        logger.info("Operation %s is not runnable (finished or running elsewhere)", operation_id)
        return
    if operation.cancel_requested:
        _finish(operation, Operation.State.CANCELLED, error="Cancelled before it started.")
        return
    if abandon_reason is not None:
        context = JobContext(operation)
        _fail(REGISTRY[operation.kind](context), context, abandon_reason)
        return

    context = JobContext(operation)
    job = REGISTRY[operation.kind](context)
    heartbeat = _Heartbeat(operation.pk)
    heartbeat.start()
    try:
        job.run()
    except OperationCancelled:
        _undo(job, context, "Cancelled on request.", Operation.State.CANCELLED)
    except (OperationFailed, VSphereError, SecretUnreadable, ServiceUnavailable) as failure:
        if isinstance(failure, Unreachable):
            # New labs go to the course's other vCenters for a while (labs.placement).
            placement.endpoint_unreachable_mark(endpoint_id=operation.endpoint_id, reason=str(failure))
        _fail(job, context, str(failure))
    except Exception:
        logger.exception("Operation %s (%s) crashed", operation.pk, operation.kind)
        _fail(
            job,
            context,
            f"Nestlab hit an internal error while running this operation (#{operation.pk}); "
            "the worker log has the details.",
        )
    else:
        _finish(operation, Operation.State.SUCCEEDED, result=context.result)
    finally:
        heartbeat.stop()


def _fail(job: Job, context: JobContext, reason: str) -> None:
    _undo(job, context, reason, Operation.State.FAILED)


def _undo(job: Job, context: JobContext, reason: str, state: str) -> None:
    """Let the job undo or settle what it did (a failure and a cancel alike), then end the row."""
    try:
        job.on_failure(reason)
    except Exception:
        logger.exception("Clean-up after operation %s failed", context.operation.pk)
        reason += " Cleaning up afterwards failed too: an admin can run Reconcile on the vCenter to tidy up."
        try:
            job.on_cleanup_failed(reason)
        except Exception:
            logger.exception("Operation %s could not record that its clean-up failed", context.operation.pk)
    _finish(context.operation, state, error=reason, result=context.result)
