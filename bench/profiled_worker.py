"""The real Celery worker, with timers around what a provisioning operation waits on.

    python bench/profiled_worker.py OUTDIR worker [celery worker options...]

Used by `bench/provision_class.py --profile DIR` (and by its experiment flags). Nothing of
the product is changed on disk: in each worker process this wraps, by assignment,

- every SQL statement (django.db.backends.utils.CursorWrapper.execute): count and seconds
  per statement kind, so SQLite's waits for its write lock show up as slow statements;
- every capacity slot (labs.capacity.vcenter_slot): when it was asked for, got, given back,
  and within it when the clone task had been made and was seen done
  (labs.vsphere.vms.wait_for_task);
- every realtime push (core.realtime._send): count and seconds.

and writes OUTDIR/worker-<pid>.json after every task. Experiments, from the environment:
NESTLAB_BENCH_POLL_SECONDS sets labs.capacity.WAKE_TIMEOUT_SECONDS (how long a waiting clone
sleeps when no release wakes it); NESTLAB_BENCH_PROGRESS_INTERVAL sets labs.jobs.runner.PROGRESS_WRITE_INTERVAL.
"""

from __future__ import annotations

import json
import os
import re
import sys
import threading
import time
from collections import defaultdict
from contextlib import contextmanager
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
OUT: Path | None = None
_lock = threading.Lock()
_stats: dict = {}
_installed = False


def _reset() -> None:
    _stats.clear()
    _stats.update(
        {
            "pid": os.getpid(),
            "sql": defaultdict(lambda: [0, 0.0, 0.0]),  # kind -> [count, seconds, slowest]
            "slots": [],  # [asked, got, released] (time.time())
            "pushes": [0, 0.0],
            "tasks": [0, 0.0],
            "settings": {},
        }
    )


def _kind(sql: str) -> str:
    words = sql.lstrip().split(None, 1)
    verb = words[0].upper() if words else "?"
    if verb in ("BEGIN", "SAVEPOINT", "RELEASE", "ROLLBACK", "COMMIT"):
        return verb
    match = re.search(r'(?:FROM|INTO|UPDATE)\s+"?(\w+)"?', sql, re.I)
    return f"{verb} {match.group(1) if match else '?'}"


def _record_sql(sql: str, seconds: float) -> None:
    with _lock:
        entry = _stats["sql"][_kind(sql)]
        entry[0] += 1
        entry[1] += seconds
        entry[2] = max(entry[2], seconds)


def _install() -> None:
    global _installed
    if _installed:
        return
    _installed = True
    _reset()
    from django.db.backends import utils
    from django.db.backends.base import base

    from core import realtime
    from labs import capacity
    from labs.jobs import runner

    if os.environ.get("NESTLAB_BENCH_POLL_SECONDS"):
        capacity.WAKE_TIMEOUT_SECONDS = float(os.environ["NESTLAB_BENCH_POLL_SECONDS"])
    if os.environ.get("NESTLAB_BENCH_PROGRESS_INTERVAL"):
        runner.PROGRESS_WRITE_INTERVAL = float(os.environ["NESTLAB_BENCH_PROGRESS_INTERVAL"])
    _stats["settings"] = {
        "WAKE_TIMEOUT_SECONDS": capacity.WAKE_TIMEOUT_SECONDS,
        "PROGRESS_WRITE_INTERVAL": runner.PROGRESS_WRITE_INTERVAL,
    }

    execute, executemany = utils.CursorWrapper.execute, utils.CursorWrapper.executemany

    def timed_execute(self, sql, params=None):
        started = time.perf_counter()
        try:
            return execute(self, sql, params)
        finally:
            _record_sql(sql, time.perf_counter() - started)

    def timed_executemany(self, sql, param_list):
        started = time.perf_counter()
        try:
            return executemany(self, sql, param_list)
        finally:
            _record_sql(sql, time.perf_counter() - started)

    utils.CursorWrapper.execute, utils.CursorWrapper.executemany = timed_execute, timed_executemany

    commit = base.BaseDatabaseWrapper._commit

    def timed_commit(self):
        started = time.perf_counter()
        try:
            return commit(self)
        finally:
            _record_sql("COMMIT", time.perf_counter() - started)

    base.BaseDatabaseWrapper._commit = timed_commit

    slot = capacity.vcenter_slot
    current = threading.local()  # the slot this thread holds, so the task wait can mark it

    @contextmanager
    def timed_slot(**kwargs):
        asked = time.time()
        with slot(**kwargs):
            record = [asked, time.time(), 0.0, 0.0, 0.0]  # asked, got, task made, task seen done, released
            current.record = record
            try:
                yield
            finally:
                current.record = None
                record[4] = time.time()
                with _lock:
                    _stats["slots"].append(record)

    capacity.vcenter_slot = timed_slot

    from labs.vsphere import vms

    wait_for_task = vms.wait_for_task

    def timed_wait(*args, **kwargs):
        record = getattr(current, "record", None)
        if record is not None:
            record[2] = time.time()
        try:
            return wait_for_task(*args, **kwargs)
        finally:
            if record is not None:
                record[3] = time.time()

    vms.wait_for_task = timed_wait

    send = realtime._send

    def timed_send(groups, payload):
        started = time.perf_counter()
        try:
            return send(groups, payload)
        finally:
            with _lock:
                _stats["pushes"][0] += len(groups)
                _stats["pushes"][1] += time.perf_counter() - started

    realtime._send = timed_send


def _dump() -> None:
    if OUT is None or not _installed:
        return
    with _lock:
        data = {**_stats, "sql": {kind: list(v) for kind, v in _stats["sql"].items()}}
    target = OUT / f"worker-{os.getpid()}.json"
    partial = target.with_suffix(".partial")
    partial.write_text(json.dumps(data))
    partial.replace(target)


def main(argv: list[str]) -> None:
    global OUT
    OUT = Path(argv[0])
    OUT.mkdir(parents=True, exist_ok=True)
    sys.path.insert(0, str(REPO_ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
    from celery import signals

    from portal.celery import app

    task_started: dict[str, float] = {}

    @signals.worker_process_init.connect(weak=False)
    def child_ready(**_):  # prefork: each child process
        global _installed
        _installed = False  # a forked child starts its own figures
        _install()

    @signals.worker_ready.connect(weak=False)
    def worker_ready(**_):  # threads/solo pools run tasks in this process
        _install()

    @signals.task_prerun.connect(weak=False)
    def prerun(task_id=None, **_):
        task_started[task_id] = time.perf_counter()

    @signals.task_postrun.connect(weak=False)
    def postrun(task_id=None, **_):
        with _lock:
            _stats["tasks"][0] += 1
            _stats["tasks"][1] += time.perf_counter() - task_started.pop(task_id, time.perf_counter())
        _dump()

    @signals.worker_process_shutdown.connect(weak=False)
    def child_done(**_):
        _dump()

    app.worker_main(argv[1:])


if __name__ == "__main__":
    main(sys.argv[1:])
