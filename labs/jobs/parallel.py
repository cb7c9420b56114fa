"""Run a step's vCenter calls side by side (one thread each) and report one progress.

Worker threads only talk to vCenter; the calling thread keeps writing the operation's
progress and step text (threads never touch the database), and every call is allowed
to finish before the first error is raised, so the caller knows what was made.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")


class Reporter:
    """Thread-safe progress of each item and the latest waiting message."""

    def __init__(self, count: int) -> None:
        self._lock = threading.Lock()
        self._progress = [0.0] * count
        self._waiting: dict[int, str] = {}

    def progress_of(self, index: int) -> Callable[[int, str | None], None]:
        def report(percent: int, description: str | None = None) -> None:
            with self._lock:
                self._progress[index] = float(percent)
                self._waiting.pop(index, None)

        return report

    def waiting(self, index: int, text: str) -> None:
        with self._lock:
            self._waiting[index] = text

    def overall(self) -> tuple[float, str | None]:
        with self._lock:
            mean = sum(self._progress) / len(self._progress) if self._progress else 100.0
            waiting = next(iter(sorted(self._waiting.items())), (None, None))[1]
            return mean, waiting


# One pool per process, kept: each of its threads keeps its own vCenter session (the
# driver's sessions are per thread), so steps do not log in again and again.
POOL_SIZE = 16
_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def _shared_pool() -> ThreadPoolExecutor:
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(max_workers=POOL_SIZE, thread_name_prefix="vcenter")
        return _pool


def run_parallel(
    items: Sequence[T],
    call: Callable[[T, Reporter, int], R],
    *,
    on_tick: Callable[[float, str | None], None],
) -> list[R]:
    """``call(item, reporter, index)`` for every item at once; results in item order."""
    if not items:
        return []
    reporter = Reporter(len(items))
    pool = _shared_pool()
    futures = [pool.submit(call, item, reporter, index) for index, item in enumerate(items)]
    pending = set(futures)
    while pending:
        _, pending = wait(pending, timeout=0.25, return_when=FIRST_EXCEPTION)
        on_tick(*reporter.overall())
    # Every call has ended here; raise the first error (in item order) after all finished.
    errors: list[BaseException] = [f.exception() for f in futures if f.exception() is not None]
    if errors:
        raise errors[0]
    return [f.result() for f in futures]
