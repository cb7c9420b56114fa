"""Build and run the vCenter simulator (govmomi's vcsim) for development and tests.

The launcher's Go source lives in ``vcsim/``. It is built once against Debian's
``golang-go`` and ``golang-github-vmware-govmomi-dev`` packages (GOPATH mode) and
cached in ``vcsim/bin/``; it is rebuilt only when its source is newer than the
binary. A launcher named by ``NESTLAB_VCSIM_BIN`` is used instead when set (it must
be a build of ``vcsim/``: the stock ``vcsim`` command lacks Nestlab's flags).

A running simulator's behaviour rules (task durations, failing and hanging calls,
per-method delays) can be changed at run time, so one simulator per test session
serves tests that need different behaviour::

    with vcsim.rules(task_durations={"CloneVM_Task": 1.5}, fail=["CloneVM_Task:FAIL"]):
        ...

Command line (docs/simulator.md)::

    python -m portal.simulator build [--force]
    python -m portal.simulator serve [--port 8989] [--demo] [launcher flags...]

Nothing here imports pyVmomi or Django: the development supervisor and the test
fixtures both use it. Only the standard library is used.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
SOURCE_DIR = REPO_ROOT / "vcsim"
BINARY = SOURCE_DIR / "bin" / "nestlab-vcsim"
GOPATH = "/usr/share/gocode"
# Go sources the launcher imports, and the Debian packages that install them under GOPATH.
GO_SOURCES = {
    "github.com/vmware/govmomi/simulator": "golang-github-vmware-govmomi-dev",
    "github.com/gorilla/websocket": "golang-github-gorilla-websocket-dev",
    "golang.org/x/image/font/basicfont": "golang-golang-x-image-dev",
}
# govmomi files compiled in place of Debian's through `go build -overlay`: our file in
# vcsim/overlay/, the path it replaces under GOPATH, and the sha256 of the original it was
# made from (a different govmomi is refused in words rather than silently patched).
OVERLAY_DIR = SOURCE_DIR / "overlay"
GO_OVERLAYS = {
    "property_collector.go": (
        "github.com/vmware/govmomi/simulator/property_collector.go",
        "5cb6432ace55751a9da6da01b3912d23fe7cb1f4efbd163ad15b54464a02af13",
    ),
}
URL_MARKER = "NESTLAB_VCSIM_URL="
CONFIG_PATH = "/_nestlab/config"
WEBMKS_PATH = "/_nestlab/webmks"
RESET_PATH = "/_nestlab/reset"
GUEST_PATH = "/_nestlab/guest"
OUTPUT_LINES_KEPT = 2000
# The launcher's whole output also goes to a log file (issue 16: a launcher that died under load
# left no trace, its output was only in the memory of the process that started it). Under load
# the simulator writes several MB a minute (a line per PropertyCollector batch), so the file is
# rotated once at this size: the newest LOG_MAX_BYTES..2*LOG_MAX_BYTES survive, the crash included.
LOG_DIR = REPO_ROOT / "var" / "vcsim"
LOG_MAX_BYTES = 16 * 1024 * 1024

# A duration for the rules API: seconds (int or float) or a Go duration string ("500ms").
Duration = float | int | str


CONSOLE_USERNAME = "nestlab-console@vsphere.local"
CONSOLE_PASSWORD = "nestlab-console"

# What every simulated guest accepts for guest operations unless set otherwise (-guest-username,
# -guest-password, or per VM with Simulator.set_guest).
GUEST_USERNAME = "root"
GUEST_PASSWORD = "nestlab"


class SimulatorError(RuntimeError):
    """The simulator could not be built, started or configured; the message says why."""


def _source_files() -> Iterable[Path]:
    return sorted([*SOURCE_DIR.glob("*.go"), *OVERLAY_DIR.glob("*.go")])


def _write_overlay(path: Path) -> None:
    """Write the ``go build -overlay`` map for GO_OVERLAYS to ``path``, after checking
    that each replaced file is the one our copy was made from."""
    import hashlib
    import json

    replace = {}
    for name, (source, digest) in GO_OVERLAYS.items():
        original = Path(GOPATH, "src", source)
        found = hashlib.sha256(original.read_bytes()).hexdigest()
        if found != digest:
            raise SimulatorError(
                f"vcsim/overlay/{name} replaces {original}, but that file is not the one it was made "
                f"from (sha256 {found}, expected {digest}): another govmomi version is installed. "
                "Port the change marked 'Nestlab:' in the overlay to it and update GO_OVERLAYS."
            )
        replace[str(original)] = str(OVERLAY_DIR / name)
    path.write_text(json.dumps({"Replace": replace}))


def _binary_is_fresh() -> bool:
    if not BINARY.exists():
        return False
    built = BINARY.stat().st_mtime
    return all(path.stat().st_mtime <= built for path in _source_files())


def find_binary() -> Path | None:
    """An already available launcher: $NESTLAB_VCSIM_BIN, then our cached build if fresh."""
    named = os.environ.get("NESTLAB_VCSIM_BIN")
    if named:
        return Path(named)
    if _binary_is_fresh():
        return BINARY
    return None


def _check_toolchain() -> None:
    missing = []
    if shutil.which("go") is None:
        missing.append("the Go compiler (Debian package golang-go)")
    for source, package in GO_SOURCES.items():
        if not Path(GOPATH, "src", source).is_dir():
            missing.append(f"{source} under {GOPATH} (Debian package {package})")
    if missing:
        raise SimulatorError(
            "Building the vCenter simulator needs "
            + " and ".join(missing)
            + f": install them with `sudo apt-get install golang-go {' '.join(GO_SOURCES.values())}` "
            "(or `make vcsim`), or point NESTLAB_VCSIM_BIN at an already built nestlab-vcsim."
        )


def build(*, quiet: bool = False, force: bool = False) -> Path:
    """Return the launcher binary, building it first when it is missing or stale."""
    existing = None if force else find_binary()
    if existing is not None:
        return existing
    _check_toolchain()
    BINARY.parent.mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        "GO111MODULE": "off",
        "GOPATH": GOPATH,
        "GOCACHE": os.environ.get("GOCACHE", str(REPO_ROOT / "var" / "gocache")),
    }
    # Build into a name of our own and rename, so neither a concurrent reader nor a
    # concurrent build (two test runs at once) ever sees half a file.
    partial = BINARY.with_name(f"{BINARY.name}.partial-{os.getpid()}")
    overlay = BINARY.with_name(f"overlay-{os.getpid()}.json")
    try:
        _write_overlay(overlay)
        result = subprocess.run(
            ["go", "build", "-overlay", str(overlay), "-o", str(partial), "."],
            cwd=SOURCE_DIR,
            env=env,
            capture_output=True,
            text=True,
        )
        if result.returncode != 0:
            raise SimulatorError(f"Building the vCenter simulator failed:\n{result.stderr}")
        partial.replace(BINARY)
    finally:
        partial.unlink(missing_ok=True)
        overlay.unlink(missing_ok=True)
    if not quiet:
        print(f"Built the vCenter simulator: {BINARY}")
    return BINARY


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _milliseconds(value: Duration) -> float | str:
    """Seconds (number) become milliseconds, the wire unit; Go duration strings pass as they are."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise TypeError(f"a duration is seconds or a Go duration string such as '500ms', not {value!r}")
    if isinstance(value, str):
        return value
    return value * 1000


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
    echo: bool = False  # also print the simulator's output lines (the `serve` command)
    # A second account, as an endpoint's console-only account would be on a real vCenter.
    console_username: str = CONSOLE_USERNAME
    console_password: str = CONSOLE_PASSWORD
    # Where the launcher's output is written ($NESTLAB_VCSIM_LOG_DIR or var/vcsim/<port>.log when
    # not given). Removed by stop() unless the launcher had died on its own or keep_log is set.
    log_path: Path | None = None
    keep_log: bool = False

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/sdk"

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

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
            "-extra-user",
            f"{self.console_username}:{self.console_password}",
            *self.args,
        ]
        self.output = []
        if self.log_path is None:
            self.log_path = Path(os.environ.get("NESTLAB_VCSIM_LOG_DIR") or LOG_DIR) / f"{self.port}.log"
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            command,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            # A byte that is not UTF-8 (a rule or a name echoed in a log line) must not stop the
            # reader: with nobody reading, the pipe fills and every goroutine that logs blocks,
            # which stops the simulator answering at all (issue 16).
            encoding="utf-8",
            errors="replace",
            start_new_session=True,
        )
        ready = threading.Event()
        process = self.process
        log_path = self.log_path

        def pump() -> None:
            assert process.stdout is not None
            log = log_path.open("w", encoding="utf-8")
            try:
                for line in process.stdout:
                    # Read to the end whatever happens to the copies: the launcher blocks when
                    # its output is not read.
                    with contextlib.suppress(Exception):
                        log.write(line)
                        log.flush()
                        if log.tell() > LOG_MAX_BYTES:
                            log.close()
                            log_path.replace(log_path.with_suffix(".log.1"))
                            log = log_path.open("w", encoding="utf-8")
                    line = line.rstrip("\n")
                    self.output.append(line)
                    if len(self.output) > OUTPUT_LINES_KEPT + 500:
                        del self.output[:500]
                    if self.echo:
                        with contextlib.suppress(Exception):
                            print(line, flush=True)
                    if line.startswith(URL_MARKER):
                        ready.set()
            finally:
                log.close()

        threading.Thread(target=pump, daemon=True, name="vcsim-output").start()
        deadline = time.monotonic() + timeout
        while not ready.wait(0.1):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise SimulatorError("The vCenter simulator did not start:\n" + "\n".join(self.output[-20:]))
        return self

    @property
    def alive(self) -> bool:
        """Whether the launcher process is still running."""
        return self.process is not None and self.process.poll() is None

    def check(self) -> None:
        """Raise SimulatorError saying how the launcher ended if it is no longer running.

        A launcher that dies (a Go runtime fatal error, a panic outside a request, a kill)
        leaves only "connection refused" to its clients; this names the exit status, the
        last lines it wrote and its log file.
        """
        if self.process is None or self.alive:
            return
        code = self.process.returncode
        how = f"was killed by signal {-code}" if code < 0 else f"exited with status {code}"
        raise SimulatorError(
            f"The vCenter simulator {how}; its log is {self.log_path}. Last lines:\n" + "\n".join(self.output[-40:])
        )

    def stop(self) -> None:
        if self.process is None:
            return
        died = self.process.poll() is not None
        if not died:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        # A launcher that died by itself keeps its log: it is the evidence.
        if not died and not self.keep_log and self.log_path is not None:
            for path in (self.log_path, self.log_path.with_suffix(".log.1")):
                path.unlink(missing_ok=True)

    def restart(self) -> None:
        """Stop and start again on the same port: the 'vCenter restarted' fault.

        Objects made at run time are gone afterwards, the demo inventory is back with
        the same names and morefs, and the rules are the command-line flags again.
        """
        self.stop()
        self.start()

    def __enter__(self) -> Simulator:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # --- behaviour rules at run time ---------------------------------------------

    def _control(self, method: str, path: str, payload: Mapping[str, Any] | None = None) -> dict:
        data = None if payload is None else json.dumps(payload).encode()
        request = urllib.request.Request(
            self.base_url + path,
            data=data,
            method=method,
            headers={"Content-Type": "application/json"} if data is not None else {},
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return json.load(response)
        except urllib.error.HTTPError as error:
            try:
                detail = json.load(error).get("error", "")
            except ValueError:
                detail = ""
            raise SimulatorError(f"The simulator refused {method} {path}: {detail or error}") from error
        except OSError as error:
            raise SimulatorError(f"The simulator at {self.base_url} is not answering: {error}") from error

    def get_config(self) -> dict:
        """The rules in force, as the launcher reports them.

        ``{"task_durations": {"CloneVM_Task": "2s"}, "fail": ["CloneVM_Task:FAIL"],
        "hang": [], "method_delays": {"CurrentTime": 400}}`` (method delays in ms).
        """
        return self._control("GET", CONFIG_PATH)

    def configure(
        self,
        *,
        task_durations: Mapping[str, Duration] | None = None,
        fail: Iterable[str] | None = None,
        hang: Iterable[str] | None = None,
        method_delays: Mapping[str, Duration] | None = None,
    ) -> dict:
        """Replace the kinds of rule given (None leaves that kind as it is; empty clears it).

        ``task_durations`` and ``method_delays`` map a SOAP method name (or ``"*"``) to
        seconds or a Go duration string (``"500ms"``); ``fail`` and ``hang`` are
        ``"Method[:substring]"`` rules. Returns the rules now in force.
        """
        payload: dict[str, Any] = {}
        if task_durations is not None:
            payload["task_durations"] = {k: _milliseconds(v) for k, v in task_durations.items()}
        if method_delays is not None:
            payload["method_delays"] = {k: _milliseconds(v) for k, v in method_delays.items()}
        if fail is not None:
            payload["fail"] = list(fail)
        if hang is not None:
            payload["hang"] = list(hang)
        return self._control("PUT", CONFIG_PATH, payload)

    def reset_rules(self) -> dict:
        """Back to the rules given on the launcher's command line."""
        return self._control("POST", RESET_PATH, {})

    @contextlib.contextmanager
    def rules(
        self,
        *,
        task_durations: Mapping[str, Duration] | None = None,
        fail: Iterable[str] | None = None,
        hang: Iterable[str] | None = None,
        method_delays: Mapping[str, Duration] | None = None,
    ) -> Iterator[Simulator]:
        """Apply rules for the ``with`` block, then put back the rules in force before it."""
        before = self.get_config()
        self.configure(task_durations=task_durations, fail=fail, hang=hang, method_delays=method_delays)
        try:
            yield self
        finally:
            self._control("PUT", CONFIG_PATH, before)

    # --- the WebMKS console host (vcsim/webmks.go) ----------------------------------

    def consoles(self) -> dict:
        """The console host's state: ``host``, ``port``, ``thumbprint``, ``ticketsIssued``,
        and per VM moref under ``screens`` its ``name``, the ``text`` typed so far,
        ``ctrlAltDel``, ``keyEvents``, ``pointerEvents``, open ``sessions`` and all
        ``connections`` it ever had."""
        return self._control("GET", WEBMKS_PATH)

    def stall_consoles(self, stalled: bool = True) -> dict:
        """New console connections are accepted and never answered (a host that hangs)."""
        return self._control("PUT", WEBMKS_PATH, {"stall": stalled})

    def drop_consoles(self) -> int:
        """Close every open console connection at once, without a close frame (a host gone)."""
        return self._control("POST", WEBMKS_PATH + "/drop", {})["dropped"]

    # --- guest operations (vcsim/guest.go) ---------------------------------------------

    def guests(self) -> dict:
        """The guests' state: ``root`` (the sandbox directory of this run), the default
        ``username``, and per VM moref under ``vms`` its ``sandbox`` directory (the guest's
        file system), ``username``, ``tools_running``, ``processes`` and ``running``."""
        return self._control("GET", GUEST_PATH)

    def set_guest(
        self,
        vm: str | None = None,
        *,
        username: str | None = None,
        password: str | None = None,
        tools_running: bool | None = None,
    ) -> dict:
        """Set a VM's guest user and password, or whether its VMware Tools run (None leaves
        a setting as it is). Without ``vm``: the credentials of every VM without its own."""
        payload: dict[str, Any] = {}
        if vm is not None:
            payload["vm"] = vm
        if username is not None:
            payload["username"] = username
        if password is not None:
            payload["password"] = password
        if tools_running is not None:
            payload["tools_running"] = tools_running
        return self._control("PUT", GUEST_PATH, payload)

    def reset_guests(self) -> dict:
        """Forget per-VM guest credentials and Tools settings (files and processes stay)."""
        return self._control("POST", GUEST_PATH + "/reset", {})


def start(
    *,
    host: str = "127.0.0.1",
    port: int | None = None,
    username: str = "administrator@vsphere.local",
    password: str = "nestlab",
    args: Iterable[str] = (),
    echo: bool = False,
    log_path: Path | None = None,
    keep_log: bool = False,
) -> Simulator:
    """Build if needed and start a simulator; the caller stops it."""
    return Simulator(
        host=host,
        port=port or free_port(),
        username=username,
        password=password,
        args=list(args),
        echo=echo,
        log_path=log_path,
        keep_log=keep_log,
    ).start()


# --- command line ------------------------------------------------------------------


def _serve(options: argparse.Namespace, extra: list[str]) -> int:
    args = [*extra, *(["-demo"] if options.demo else [])]
    server = start(
        host=options.host,
        port=options.port,
        username=options.username,
        password=options.password,
        args=args,
        echo=True,
    )
    print(
        f"vCenter simulator at {server.url}  user {server.username}  password {server.password}\n"
        f"rules: {server.base_url}{CONFIG_PATH} (GET/PUT), {server.base_url}{RESET_PATH} (POST)\n"
        "Ctrl-C stops it.",
        flush=True,
    )
    try:
        while server.process is not None and server.process.poll() is None:
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m portal.simulator",
        description="Build or run Nestlab's vCenter simulator (see docs/simulator.md).",
        allow_abbrev=False,
    )
    commands = parser.add_subparsers(dest="command", required=True)
    build_parser = commands.add_parser("build", help="build the launcher if it is missing or older than vcsim/*.go")
    build_parser.add_argument("--force", action="store_true", help="rebuild even when fresh")
    serve_parser = commands.add_parser(
        "serve",
        help="run a simulator in the foreground; other arguments go to the launcher",
        allow_abbrev=False,
    )
    serve_parser.add_argument("--host", default="127.0.0.1")
    serve_parser.add_argument("--port", type=int, default=8989)
    serve_parser.add_argument("--username", default="administrator@vsphere.local")
    serve_parser.add_argument("--password", default="nestlab")
    serve_parser.add_argument("--demo", action="store_true", help="seed the demo lab inventory")

    options, extra = parser.parse_known_args(argv)
    if extra and extra[0] == "--":
        extra = extra[1:]
    try:
        if options.command == "build":
            if extra:
                parser.error(f"unrecognized arguments: {' '.join(extra)}")
            path = build(quiet=True, force=options.force)
            print(path)
            return 0
        return _serve(options, extra)
    except SimulatorError as error:
        print(error, file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
