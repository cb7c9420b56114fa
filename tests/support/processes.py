"""Real processes for integration and browser tests, on the test database and Redis:
a Celery worker, the ASGI server (daphne) and the vSphere watcher."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings
from django.db import connection

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_database_url() -> str:
    """A DATABASE_URL naming the database pytest-django created for this session."""
    db = connection.settings_dict
    if db["ENGINE"] == "django.db.backends.sqlite3":
        return f"sqlite:///{db['NAME']}"
    user = db.get("USER") or ""
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    auth = f"{user}{password}@" if user else ""
    return f"postgres://{auth}{db.get('HOST') or '127.0.0.1'}:{db.get('PORT') or 5432}/{db['NAME']}"


def wait_for(predicate, *, timeout: float = 30.0, interval: float = 0.1, message: str = "condition"):
    """Poll ``predicate`` until it returns something truthy; fail the test after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"Timed out after {timeout} s waiting for {message}")
        time.sleep(interval)


def end_process(process: subprocess.Popen | None, timeout: float = 10.0) -> None:
    """Stop a service a fixture started (SIGTERM, then SIGKILL after ``timeout``)."""
    if process is None or process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@dataclass
class ChildProcess:
    """A child process of the test run with the test database, Redis and settings."""

    extra_env: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen | None = None
    output: list[str] = field(default_factory=list)

    def command(self) -> list[str]:
        raise NotImplementedError

    def ready(self) -> bool:
        """True once the process serves; the default waits for nothing."""
        return True

    def start(self, *, timeout: float = 60.0):
        env = {
            **os.environ,
            "DATABASE_URL": test_database_url(),
            "REDIS_URL": settings.REDIS_URL,
            "DJANGO_SETTINGS_MODULE": os.environ.get("DJANGO_SETTINGS_MODULE", "portal.settings"),
            "PYTHONUNBUFFERED": "1",
            **self.extra_env,
        }
        self.output = []
        self.process = subprocess.Popen(
            self.command(),
            cwd=REPO_ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        threading.Thread(target=self._pump, daemon=True).start()

        def up() -> bool:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.command()[2:5]} exited:\n" + "\n".join(self.output[-40:]))
            return self.ready()

        wait_for(up, timeout=timeout, interval=0.2, message=" ".join(self.command()[2:5]))
        return self

    def _pump(self) -> None:
        assert self.process is not None and self.process.stdout is not None
        for line in self.process.stdout:
            self.output.append(line.rstrip("\n"))

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, sig)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def kill(self) -> None:
        """SIGKILL the whole process group (the 'worker died' fault)."""
        self.stop(signal.SIGKILL)


@dataclass
class WorkerProcess(ChildProcess):
    """``celery -A portal worker`` on the test database and the given queue."""

    queue: str = "nestlab-test"
    concurrency: int = 2

    def __post_init__(self) -> None:
        self.extra_env = {"NESTLAB_CELERY_QUEUE": self.queue, **self.extra_env}

    def command(self) -> list[str]:
        return [
            sys.executable, "-m", "celery", "-A", "portal", "worker", "--loglevel", "INFO",
            "--concurrency", str(self.concurrency), "--hostname", f"test-{self.queue}@%h",
            "--queues", f"{self.queue},{self.queue}-build,{self.queue}-checks",
            "--without-mingle", "--without-gossip",
        ]  # fmt: skip

    def ready(self) -> bool:
        return any(" ready." in line for line in self.output)


@dataclass
class WebProcess(ChildProcess):
    """The ASGI server (daphne) on a port of its own."""

    port: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __post_init__(self) -> None:
        self.extra_env = {"DEBUG": "0", **self.extra_env}

    def command(self) -> list[str]:
        return [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(self.port), "portal.asgi:application"]

    def ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/healthz", timeout=2) as response:
                return response.status == 200
        except OSError:
            return False


@dataclass
class WatcherProcess(ChildProcess):
    """``manage.py runwatcher``: the vSphere watcher of every endpoint in the test database."""

    refresh: float = 1.0

    def command(self) -> list[str]:
        return [sys.executable, "manage.py", "runwatcher", "--refresh", str(self.refresh)]

    def ready(self) -> bool:
        return any("vSphere watcher started" in line for line in self.output)
