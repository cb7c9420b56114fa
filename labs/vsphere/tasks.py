"""Waiting for vCenter tasks, with progress and a deadline.

The waiter watches the task through its own PropertyCollector and reads only
``info.state``, ``info.progress``, ``info.error``, ``info.result``, ``info.cancelable`` and
``info.description``. Reading the whole ``task.info`` is not an option: the simulator
puts a snapshot in ``info.entity`` for revert/remove, which pyVmomi cannot deserialise.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Sequence
from typing import Any

from pyVmomi import vim, vmodl

from .errors import DeadlineExceeded, TaskFailed, Unreachable, fault_kind, fault_words
from .types import ProgressCallback

PC = vmodl.query.PropertyCollector

_PATHS = ["info.state", "info.progress", "info.error", "info.result", "info.cancelable", "info.description"]
MAX_WAIT_SECONDS = 1
"""Longest single WaitForUpdatesEx: keeps deadlines precise and the socket well under its timeout."""
CANCEL_GRACE_SECONDS = 5.0


class _TaskView:
    """The latest known values of the watched task properties."""

    def __init__(self) -> None:
        self.state: str | None = None
        self.progress: int | None = None
        self.error: Any = None
        self.result: Any = None
        self.cancelable = False
        self.description: str | None = None

    def apply(self, name: str, value: Any) -> None:
        if name == "info.state":
            self.state = str(value) if value is not None else None
        elif name == "info.progress":
            self.progress = value
        elif name == "info.error":
            self.error = value
        elif name == "info.result":
            self.result = value
        elif name == "info.cancelable":
            self.cancelable = bool(value)
        elif name == "info.description":
            self.description = getattr(value, "message", None) or None


def result_moref(result: Any) -> str | None:
    """A task result as the driver hands it out: a moref string, or None."""
    return getattr(result, "_moId", None)


def clamp_percent(value: Any) -> int:
    try:
        return max(0, min(100, int(value)))
    except (TypeError, ValueError):
        return 0


class _Watch:
    def __init__(self, session: Any, task: Any) -> None:
        self.task = task
        self.view = _TaskView()
        self.version = ""
        self.collector = session.content.propertyCollector.CreatePropertyCollector()
        spec = PC.FilterSpec(
            objectSet=[PC.ObjectSpec(obj=task, skip=False)],
            propSet=[PC.PropertySpec(type=vim.Task, pathSet=_PATHS, all=False)],
        )
        self.collector.CreateFilter(spec, partialUpdates=False)

    def poll(self, seconds: float) -> None:
        wait = max(0, min(MAX_WAIT_SECONDS, math.ceil(seconds)))
        update = self.collector.WaitForUpdatesEx(self.version, PC.WaitOptions(maxWaitSeconds=wait))
        if update is None:
            return
        self.version = update.version
        for filter_update in update.filterSet or ():
            for object_update in filter_update.objectSet or ():
                for change in object_update.changeSet or ():
                    self.view.apply(change.name, change.val)

    @property
    def done(self) -> bool:
        return self.view.state in ("success", "error")

    def close(self) -> None:
        # The session may be gone, and the collector with it.
        with contextlib.suppress(Exception):
            self.collector.DestroyPropertyCollector()


def wait_for_task(
    session: Any,
    task: Any,
    *,
    action: str,
    on_progress: ProgressCallback | None = None,
    deadline: float | None = None,
) -> str | None:
    """Wait until ``task`` ends; return its result as a moref string (or None).

    ``action`` names the work in messages ("clone vm-42 as 'lab-1-esxi-01'").
    ``deadline`` is in seconds from now; when it passes, the task is cancelled if vCenter
    allows it and ``DeadlineExceeded`` is raised. ``on_progress(percent, description)`` is
    called when the progress changes, and with 100 on success; if it raises (say, the user
    cancelled the operation), the task is cancelled when vCenter allows and the exception
    propagates.
    """
    started = time.monotonic()
    end = None if deadline is None else started + max(0.0, deadline)
    watch = _Watch(session, task)
    reported: tuple[int, str | None] | None = None
    try:
        while True:
            remaining = MAX_WAIT_SECONDS if end is None else end - time.monotonic()
            watch.poll(max(0.0, remaining))
            view = watch.view
            if view.state == "success":
                if on_progress is not None and (reported is None or reported[0] != 100):
                    on_progress(100, view.description)
                return result_moref(view.result)
            if view.state == "error":
                raise _failure(task, action, view.error)
            if on_progress is not None and view.progress is not None:
                current = (clamp_percent(view.progress), view.description)
                if current != reported:
                    reported = current
                    _report(watch, on_progress, current)
            if end is not None and time.monotonic() >= end:
                return _give_up(watch, action, deadline or 0.0)
    except vmodl.fault.ManagedObjectNotFound as fault:
        # Our own collector (or the task) is unknown: vCenter restarted, or the session was
        # replaced, between two polls. Not NotFound: callers read that as "the object is gone".
        raise Unreachable(
            f"Could not {action}: vCenter lost track of the task while Nestlab waited for it (it restarted, "
            "or the session ended); the task may or may not have been carried out."
        ) from fault
    finally:
        watch.close()


def _report(watch: _Watch, on_progress: ProgressCallback, current: tuple[int, str | None]) -> None:
    """Call back; a callback that raises aborts the wait, and the task is cancelled if it can be."""
    try:
        on_progress(*current)
    except BaseException:
        if watch.view.cancelable:
            with contextlib.suppress(Exception):
                watch.task.CancelTask()
        raise


def _failure(task: Any, action: str, error: Any) -> TaskFailed:
    reason = fault_words(error) if error is not None else "vCenter gave no reason"
    return TaskFailed(
        f"Could not {action}: {reason}.",
        reason=reason,
        task=task._moId,
        kind=fault_kind(error) if error is not None else TaskFailed,
    )


def _give_up(watch: _Watch, action: str, deadline: float) -> str | None:
    """Cancel the task after its deadline; raise DeadlineExceeded unless it just finished."""
    task_id = watch.task._moId
    if not watch.view.cancelable:
        raise DeadlineExceeded(
            f"Could not {action} within {deadline:g} s; vCenter does not allow cancelling it, "
            "so it continues in vCenter.",
            task=task_id,
        )
    with contextlib.suppress(vmodl.MethodFault):  # it may have ended meanwhile: see below
        watch.task.CancelTask()
    grace_end = time.monotonic() + CANCEL_GRACE_SECONDS
    while not watch.done and time.monotonic() < grace_end:
        watch.poll(grace_end - time.monotonic())
    if watch.view.state == "success":
        return result_moref(watch.view.result)
    cancelled = watch.view.state == "error"
    detail = "it was cancelled" if cancelled else "cancellation was requested"
    raise DeadlineExceeded(f"Could not {action} within {deadline:g} s; {detail}.", task=task_id, cancelled=cancelled)


def wait_for_tasks(session: Any, tasks: Sequence[Any], *, action: str, deadline: float | None = None) -> None:
    """Wait until every one of ``tasks`` ends, through one PropertyCollector for all of them
    (quick tasks started together: a warm-pool hand-over's renames); the first that failed
    raises ``TaskFailed``; past ``deadline`` (seconds) ``DeadlineExceeded`` (nothing cancelled).
    """
    if not tasks:
        return
    end = None if deadline is None else time.monotonic() + max(0.0, deadline)
    collector = session.content.propertyCollector.CreatePropertyCollector()
    views = {task._moId: _TaskView() for task in tasks}
    try:
        collector.CreateFilter(
            PC.FilterSpec(
                objectSet=[PC.ObjectSpec(obj=task, skip=False) for task in tasks],
                propSet=[PC.PropertySpec(type=vim.Task, pathSet=_PATHS, all=False)],
            ),
            partialUpdates=False,
        )
        version = ""
        while any(view.state not in ("success", "error") for view in views.values()):
            remaining = MAX_WAIT_SECONDS if end is None else end - time.monotonic()
            if remaining <= 0:
                raise DeadlineExceeded(f"Could not {action} within {deadline:g} s.")
            wait = max(0, min(MAX_WAIT_SECONDS, math.ceil(remaining)))
            update = collector.WaitForUpdatesEx(version, PC.WaitOptions(maxWaitSeconds=wait))
            if update is None:
                continue
            version = update.version
            for filter_update in update.filterSet or ():
                for object_update in filter_update.objectSet or ():
                    view = views.get(object_update.obj._moId)
                    for change in object_update.changeSet or ():
                        if view is not None:
                            view.apply(change.name, change.val)
        for task in tasks:
            view = views[task._moId]
            if view.state == "error":
                raise _failure(task, action, view.error)
    except vmodl.fault.ManagedObjectNotFound as fault:
        raise Unreachable(
            f"Could not {action}: vCenter lost track of the tasks while Nestlab waited for them."
        ) from fault
    finally:
        with contextlib.suppress(Exception):
            collector.DestroyPropertyCollector()


def wait_for_value(session: Any, obj: Any, path: str, wanted: Any, *, timeout: float) -> bool:
    """Wait until property ``path`` of ``obj`` equals ``wanted``; False if ``timeout`` passes first.

    Watches through its own PropertyCollector (updates arrive as they happen, no polling).
    """
    end = time.monotonic() + max(0.0, timeout)
    collector = session.content.propertyCollector.CreatePropertyCollector()
    try:
        spec = PC.FilterSpec(
            objectSet=[PC.ObjectSpec(obj=obj, skip=False)],
            propSet=[PC.PropertySpec(type=type(obj), pathSet=[path], all=False)],
        )
        collector.CreateFilter(spec, partialUpdates=False)
        version = ""
        while True:
            remaining = end - time.monotonic()
            wait = max(0, min(MAX_WAIT_SECONDS, math.ceil(remaining)))
            update = collector.WaitForUpdatesEx(version, PC.WaitOptions(maxWaitSeconds=wait))
            if update is not None:
                version = update.version
                for filter_update in update.filterSet or ():
                    for object_update in filter_update.objectSet or ():
                        for change in object_update.changeSet or ():
                            if change.name == path and str(change.val) == str(wanted):
                                return True
            if remaining <= 0:
                return False
    finally:
        with contextlib.suppress(Exception):
            collector.DestroyPropertyCollector()
