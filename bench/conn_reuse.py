"""Benchmark: the PostgreSQL connections daphne opens for a burst of API requests, and what a
request costs in CPU (issue 16, connection reuse under ASGI).

    .venv/bin/python bench/conn_reuse.py                         # 0 and 300 s CONN_MAX_AGE
    .venv/bin/python bench/conn_reuse.py --conn-max-age 300 --requests 4000 --clients 32

Set-up: a throwaway PostgreSQL database (--database-url, created, migrated and dropped WITH
(FORCE)), one student with an API token, and for each --conn-max-age value a fresh daphne as
runportal starts it (DATABASE_CONN_MAX_AGE and NESTLAB_WEB_CONN_MAX_AGE set for daphne
only). --clients keep-alive clients then send --requests authenticated requests of one --route as
fast as daphne answers: `operations` (the default: `GET /api/v1/operations/`, a list: token auth, a
count and a page), or a poll: `operation` / `lab` (`GET /api/v1/operations/{id}/`, `/labs/{id}/`, a
ready lab of the demo template's size and its last operation), and `operation-304` / `lab-304` (the
same with the last ETag in If-None-Match: nothing changed, 304).

It prints, for each value:
- connections opened: the growth of pg_stat_database.sessions for our database (PostgreSQL
  14+), read after the statistics have been flushed (--settle seconds);
- connections daphne holds at the end, and the most seen while the burst ran;
- answer time p50/p95, requests per second;
- CPU per request: daphne, our database's live PostgreSQL backends, and the server's ended
  backends (every database's: other users of the server count there too).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

from _live import Child, _free_port, cpu_busy_share, machine_cpu, percentile
from load_api import Database, HTTPClient, _ended_backends_cpu, say
from provision_class import REPO_ROOT, _cpu_seconds, _install_signal_handlers, _pids_matching

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/nestlab_connbench"


def _sessions(database: Database) -> int:
    connection = database._admin()
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_stat_clear_snapshot()")
            cursor.execute("SELECT sessions FROM pg_stat_database WHERE datname = %s", [database.name])
            return int(cursor.fetchone()[0])
    finally:
        connection.close()


def _held_by(database: Database, pid: int) -> int:
    """Connections the process holds to our database (matched by client port)."""
    import psutil

    try:
        ports, _ = database.connections()
    except Exception:  # noqa: BLE001 - a full server refuses us too; the next sample counts
        return 0
    try:
        return sum(1 for s in psutil.Process(pid).net_connections(kind="tcp") if s.laddr.port in ports)
    except psutil.Error:
        return 0


ROUTES = ("operations", "operation", "operation-304", "lab", "lab-304")


async def _burst(url: str, token: str, clients: int, requests: int, target: dict) -> tuple[list[float], int]:
    from urllib.parse import urlsplit

    base = urlsplit(url)
    left = [requests]
    seconds: list[float] = []
    errors = [0]

    async def client() -> None:
        http = HTTPClient(base.hostname, base.port, token, 60.0)
        try:
            while left[0] > 0:
                left[0] -= 1
                started = time.monotonic()
                status, _ = await http.request("GET", target["path"], headers=target["headers"])
                seconds.append(time.monotonic() - started)
                if status != target["status"]:
                    errors[0] += 1
        finally:
            http.close()

    await asyncio.gather(*(client() for _ in range(clients)))
    return seconds, errors[0]


def _start_pgbouncer(database: Database, workdir: Path, pool_size: int) -> tuple[Child, int]:
    """Debian's pgbouncer in transaction mode in front of our database, as the postgres user
    (it refuses to run as root), with trust authentication like the server here."""
    import subprocess
    from urllib.parse import urlsplit

    server = urlsplit(database.url)
    port = _free_port()
    config = workdir / "pgbouncer.ini"
    config.write_text(
        "[databases]\n"
        f"{database.name} = host={server.hostname} port={server.port or 5432} dbname={database.name}\n"
        "[pgbouncer]\n"
        f"listen_addr = 127.0.0.1\nlisten_port = {port}\nauth_type = trust\n"
        f"auth_file = {workdir / 'userlist.txt'}\npool_mode = transaction\n"
        f"default_pool_size = {pool_size}\nmax_client_conn = 1000\n"
        f"unix_socket_dir = \nlogfile = {workdir / 'pgbouncer.log'}\n"
    )
    (workdir / "userlist.txt").write_text(f'"{server.username or "postgres"}" ""\n')
    subprocess.run(["chmod", "-R", "a+rwX", str(workdir)], check=True)
    user = [] if os.geteuid() else ["runuser", "-u", "postgres", "--"]
    bouncer = Child("pgbouncer", [*user, "pgbouncer", str(config)], dict(os.environ), workdir / "pgbouncer.out")

    def listening() -> bool:
        import socket

        with socket.socket() as probe:
            return probe.connect_ex(("127.0.0.1", port)) == 0

    bouncer.start(listening, timeout=20)
    return bouncer, port


def _server_connections(database: Database) -> int:
    try:
        ports, _ = database.connections()
    except Exception:  # noqa: BLE001 - the next sample counts
        return 0
    return len(ports) - 1  # our own look


def run(options, database: Database, token: str, conn_max_age: int, workdir: Path, target: dict) -> dict:
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    bouncer = None
    database_url = database.url
    if options.pgbouncer:
        from urllib.parse import urlsplit, urlunsplit

        bouncer, bouncer_port = _start_pgbouncer(database, workdir, options.pgbouncer_pool)
        parts = urlsplit(database.url)
        database_url = urlunsplit(parts._replace(netloc=f"{parts.username or 'postgres'}@127.0.0.1:{bouncer_port}"))
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        # Both: before issue 16's fix daphne's requests used the first, since then the second.
        "DATABASE_CONN_MAX_AGE": str(conn_max_age),
        "NESTLAB_WEB_CONN_MAX_AGE": str(conn_max_age),
        "LOG_LEVEL": "WARNING",
    }
    if options.web_concurrency:
        env["NESTLAB_WEB_CONCURRENCY"] = str(options.web_concurrency)
    daphne = Child(
        f"daphne (CONN_MAX_AGE {conn_max_age})",
        [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "portal.asgi:application"],
        env,
        workdir / f"daphne-{conn_max_age}.log",
    )

    def healthy() -> bool:
        import urllib.request

        try:
            with urllib.request.urlopen(f"{url}/healthz", timeout=2) as response:
                return response.status == 200
        except OSError:
            return False

    try:
        daphne.start(healthy, timeout=90)
        # Warm up (imports, first queries), then let the statistics settle.
        asyncio.run(_burst(url, token, 4, 40, target))
        time.sleep(options.settle)
        sessions_before = _sessions(database)
        pid = daphne.process.pid
        bouncer_pids = (
            [bouncer.process.pid] + ([child.pid for child in _children(bouncer.process.pid)]) if bouncer else []
        )

        def cpu_now() -> dict[str, float]:
            now = {
                "daphne": _cpu_seconds([pid]),
                "PostgreSQL (our backends)": _cpu_seconds(_pids_matching(f" {database.name} "), children=False),
                "PostgreSQL (ended backends, any database)": _ended_backends_cpu(),
                "Redis server": _cpu_seconds(_pids_matching("redis-server"), children=False),
            }
            if bouncer:
                now["pgbouncer"] = _cpu_seconds(bouncer_pids, children=False)
            return now

        cpu = cpu_now()
        machine = machine_cpu()
        peak = [0]
        done = threading.Event()

        def watch() -> None:
            while not done.is_set():
                # Through PgBouncer daphne holds none of PostgreSQL's: count the server's instead.
                held_now = _server_connections(database) if bouncer else _held_by(database, pid)
                peak[0] = max(peak[0], held_now)
                done.wait(0.05)

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        load = os.getloadavg()[0]
        started = time.monotonic()
        seconds, errors = asyncio.run(_burst(url, token, options.clients, options.requests, target))
        wall = time.monotonic() - started
        after = cpu_now()
        busy = cpu_busy_share(machine, machine_cpu(), wall)
        done.set()
        watcher.join()
        held = _server_connections(database) if bouncer else _held_by(database, pid)
        time.sleep(options.settle)
        opened = _sessions(database) - sessions_before
        ms = [s * 1000 for s in seconds]
        return {
            "conn_max_age": conn_max_age,
            "requests": len(seconds),
            "errors": errors,
            "opened": opened,
            "held_end": held,
            "held_peak": peak[0],
            "p50": percentile(ms, 50),
            "p95": percentile(ms, 95),
            "per_s": len(seconds) / wall,
            "cpu_ms": {name: (after[name] - cpu[name]) * 1000 / len(seconds) for name in cpu},
            "busy": busy,
            "load": load,
        }
    finally:
        daphne.stop()
        if bouncer:
            bouncer.stop()


def _poll_target(route: str) -> tuple[str, dict]:
    """A ready lab of the demo template's size, not running (a running lab's hours move its
    ETag), and its last operation; the student's token and what the route asks."""
    from rest_framework.authtoken.models import Token
    from rest_framework.test import APIClient

    from labs.models import Lab, Operation
    from tests.factories import open_course
    from tests.integration.labs.api.conftest import ready_lab

    lab = ready_lab(open_course(students=1))
    Lab.objects.filter(pk=lab.pk).update(running_since=None)
    token = Token.objects.create(user=lab.student).key
    path = (
        f"/api/v1/labs/{lab.pk}/"
        if route.startswith("lab")
        else f"/api/v1/operations/{Operation.objects.filter(lab=lab).latest('pk').pk}/"
    )
    if not route.endswith("-304"):
        return token, {"path": path, "headers": None, "status": 200}
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    answer = client.get(path, HTTP_HOST="127.0.0.1")
    if answer.status_code != 200:
        raise SystemExit(f"GET {path} answered {answer.status_code}: {answer.content[:300]!r}")
    return token, {"path": path, "headers": {"If-None-Match": answer["ETag"]}, "status": 304}


def _children(pid: int) -> list:
    import psutil

    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.Error:
        return []


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], allow_abbrev=False)
    parser.add_argument("--database-url", default=DEFAULT_DATABASE_URL)
    parser.add_argument("--conn-max-age", type=int, nargs="+", default=[0, 300], help="values for daphne (0 300)")
    parser.add_argument("--route", choices=ROUTES, default="operations", help="what each request asks (operations)")
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--web-concurrency", type=int, help="NESTLAB_WEB_CONCURRENCY for daphne (product: 16)")
    parser.add_argument("--settle", type=float, default=11.0, help="seconds for PostgreSQL to flush its statistics")
    parser.add_argument(
        "--pgbouncer",
        action="store_true",
        help="daphne reaches PostgreSQL through Debian's pgbouncer (transaction mode), started here",
    )
    parser.add_argument("--pgbouncer-pool", type=int, default=16, help="pgbouncer's default_pool_size (16)")
    options = parser.parse_args(argv)
    sys.path.insert(0, str(REPO_ROOT))
    _install_signal_handlers()
    database = Database(options.database_url)
    workdir = Path(tempfile.mkdtemp(prefix="nestlab-connbench-"))
    os.environ.update(
        DATABASE_URL=database.url,
        NESTLAB_VAR_DIR=str(workdir),
        DJANGO_SETTINGS_MODULE="portal.settings",
        DEBUG="0",
        LOG_LEVEL="WARNING",
    )
    os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/9")
    database.create()
    try:
        import django

        django.setup()
        from django.core.management import call_command
        from django.db import connections
        from rest_framework.authtoken.models import Token

        from tests.factories import StudentFactory

        call_command("migrate", verbosity=0)
        if options.route == "operations":
            token = Token.objects.create(user=StudentFactory()).key
            target = {"path": "/api/v1/operations/", "headers": None, "status": 200}
        else:
            token, target = _poll_target(options.route)
        connections.close_all()
        results = [run(options, database, token, value, workdir, target) for value in options.conn_max_age]
    finally:
        from django.db import connections

        connections.close_all()
        database.drop()
    say(
        f"{options.requests} x GET {target['path']}"
        + (" with its ETag in If-None-Match (304)" if target["headers"] else "")
        + f" from {options.clients} keep-alive clients, one daphne"
        + (f", NESTLAB_WEB_CONCURRENCY={options.web_concurrency}" if options.web_concurrency else "")
        + (
            f"; through pgbouncer (transaction mode, pool {options.pgbouncer_pool}): 'held' counts PostgreSQL's "
            "connections to the database (pgbouncer's)"
            if options.pgbouncer
            else ""
        )
    )
    for r in results:
        cpu = ", ".join(f"{name} {value:.2f}" for name, value in r["cpu_ms"].items())
        say(
            f"  CONN_MAX_AGE {r['conn_max_age']:>4}: {r['requests']} requests ({r['errors']} not as expected), "
            f"{r['opened']} connections opened, daphne held {r['held_peak']} at most and {r['held_end']} at the end; "
            f"p50 {r['p50']:.1f} ms, p95 {r['p95']:.1f} ms, {r['per_s']:.0f}/s; CPU ms per request: {cpu}; "
            f"machine {r['busy']:.0%} busy, load {r['load']:.2f}"
        )
    return 0 if all(not r["errors"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
