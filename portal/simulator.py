"""Build and run the vCenter simulator (govmomi's vcsim) for development and tests.

The launcher's Go source lives in ``vcsim/``. It is built once against Debian's
``golang-go`` and ``golang-github-vmware-govmomi-dev`` packages (GOPATH mode) and
cached in ``vcsim/bin/``; it is rebuilt only when its source is newer than the
binary. A simulator named by ``NESTLAB_VCSIM_BIN``, or a ``vcsim`` on PATH, is used
instead when present.

Nothing here imports pyVmomi or Django: the development supervisor and the test
fixtures both use it.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
SOURCE_DIR = REPO_ROOT / "vcsim"
BINARY = SOURCE_DIR / "bin" / "nestlab-vcsim"
GOPATH = "/usr/share/gocode"
URL_MARKER = "NESTLAB_VCSIM_URL="


class SimulatorError(RuntimeError):
    """The simulator could not be built or started; the message says why."""


def _source_files() -> Iterable[Path]:
    return sorted(SOURCE_DIR.glob("*.go"))


def _binary_is_fresh() -> bool:
    if not BINARY.exists():
        return False
    built = BINARY.stat().st_mtime
    return all(path.stat().st_mtime <= built for path in _source_files())


def find_binary() -> Path | None:
    """An already available simulator: $NESTLAB_VCSIM_BIN, then our cached build."""
    named = os.environ.get("NESTLAB_VCSIM_BIN")
    if named:
        return Path(named)
    if _binary_is_fresh():
        return BINARY
    return None


def build(*, quiet: bool = False) -> Path:
    """Return the launcher binary, building it first when it is missing or stale."""
    existing = find_binary()
    if existing is not None:
        return existing
    if shutil.which("go") is None or not Path(GOPATH, "src/github.com/vmware/govmomi").is_dir():
        raise SimulatorError(
            "The vCenter simulator needs Debian's golang-go and golang-github-vmware-govmomi-dev "
            "packages: run `make vcsim` (it installs them with apt-get) or set NESTLAB_VCSIM_BIN."
        )
    BINARY.parent.mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        "GO111MODULE": "off",
        "GOPATH": GOPATH,
        "GOCACHE": os.environ.get("GOCACHE", str(REPO_ROOT / "var" / "gocache")),
    }
    # Build into a temporary name and rename, so a concurrent reader never sees half a file.
    partial = BINARY.with_suffix(".partial")
    result = subprocess.run(
        ["go", "build", "-o", str(partial), "."],
        cwd=SOURCE_DIR,
        env=env,
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        raise SimulatorError(f"Building the vCenter simulator failed:\n{result.stderr}")
    partial.replace(BINARY)
    if not quiet:
        print(f"Built the vCenter simulator: {BINARY}")
    return BINARY


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Simulator:
    """A running simulator process. ``url`` is the SDK address (http://host:port/sdk)."""

    host: str
    port: int
    username: str
    password: str
    args: list[str] = field(default_factory=list)
    process: subprocess.Popen | None = None
    output: list[str] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/sdk"

    def start(self, *, timeout: float = 30.0) -> Simulator:
        binary = build(quiet=True)
        command = [
            str(binary),
            "-listen",
            f"{self.host}:{self.port}",
            "-username",
            self.username,
            "-password",
            self.password,
            *self.args,
        ]
        self.output = []
        self.process = subprocess.Popen(
            command,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        ready = threading.Event()

        def pump() -> None:
            assert self.process is not None and self.process.stdout is not None
            for line in self.process.stdout:
                self.output.append(line.rstrip("\n"))
                if line.startswith(URL_MARKER):
                    ready.set()

        threading.Thread(target=pump, daemon=True, name="vcsim-output").start()
        deadline = time.monotonic() + timeout
        while not ready.wait(0.1):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise SimulatorError(
                    "The vCenter simulator did not start:\n" + "\n".join(self.output[-20:])
                )
        return self

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def restart(self) -> None:
        """Stop and start again on the same port: the 'vCenter restarted' fault."""
        self.stop()
        self.start()

    def __enter__(self) -> Simulator:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def start(
    *,
    host: str = "127.0.0.1",
    port: int | None = None,
    username: str = "administrator@vsphere.local",
    password: str = "nestlab",
    args: Iterable[str] = (),
) -> Simulator:
    """Build if needed and start a simulator; the caller stops it."""
    return Simulator(
        host=host,
        port=port or free_port(),
        username=username,
        password=password,
        args=list(args),
    ).start()
