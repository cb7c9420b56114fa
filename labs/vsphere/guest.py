"""Guest operations: programs and files inside a VM, through VMware Tools.

vCenter passes the calls to the VM's Tools (``GuestOperationsManager``), so nothing needs a
network path into the lab: a check runs a program (``StartProgramInGuest``), polls it
(``ListProcessesInGuest``) until it ends or its time limit passes (then
``TerminateProcessInGuest``), and reads what it wrote through a file transfer
(``InitiateFileTransferFromGuest`` answers a one-use URL on the ESXi host, fetched with
HTTP GET; uploads are an HTTP PUT). On Linux guests Tools run the program through
``/bin/sh -c``, so arguments may redirect output (``> /tmp/out 2>&1``).

Every call needs the VM powered on (else ``InvalidState``), Tools running (else
``GuestToolsNotRunning``) and a guest account (``GuestCredentials``; a wrong one raises
``GuestLoginFailed``). See docs/driver.md.
"""

from __future__ import annotations

import http.client
import logging
import secrets
import shlex
import time
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

from pyVmomi import vim, vmodl

from . import props, refs
from .connection import ssl_context
from .errors import GuestProgramTimeout, InvalidArgument, InvalidState, Unreachable
from .types import GuestCredentials, GuestProcess, GuestScriptResult

log = logging.getLogger(__name__)

DEFAULT_MAX_BYTES = 1024 * 1024
"""What ``read_file`` accepts by default: check output and small files, not disk images."""
TERMINATED_EXIT_CODE = 143
POLL_FIRST, POLL_MAX = 0.1, 1.0


def _auth(credentials: GuestCredentials) -> vim.vm.guest.NamePasswordAuthentication:
    return vim.vm.guest.NamePasswordAuthentication(
        username=credentials.username, password=credentials.password, interactiveSession=False
    )


def _vm(session: Any, vm_ref: str) -> tuple[Any, str]:
    vm = refs.resolve(session, vm_ref, vim.VirtualMachine)
    return vm, str(props.read(session, vm, ["name"]).get("name", vm_ref))


def _managers(session: Any) -> tuple[Any, Any]:
    """(process manager, file manager) of this vCenter."""
    manager = session.content.guestOperationsManager
    if manager is None:
        raise InvalidArgument("This vCenter offers no guest operations.")
    values = props.read(session, manager, ["processManager", "fileManager"])
    if "processManager" not in values or "fileManager" not in values:
        raise InvalidArgument("This vCenter offers no guest process or file manager.")
    return values["processManager"], values["fileManager"]


def _spec(
    program: str, arguments: str, working_directory: str | None, environment: Mapping[str, str] | None
) -> vim.vm.guest.ProcessManager.ProgramSpec:
    return vim.vm.guest.ProcessManager.ProgramSpec(
        programPath=program,
        arguments=arguments,
        workingDirectory=working_directory or None,
        envVariables=[f"{key}={value}" for key, value in (environment or {}).items()],
    )


def _process(info: Any) -> GuestProcess:
    ended = info.endTime
    exit_code = info.exitCode
    return GuestProcess(
        pid=int(info.pid),
        name=str(info.name or ""),
        owner=str(info.owner or ""),
        command_line=str(info.cmdLine or ""),
        started_at=info.startTime,
        ended_at=ended,
        exit_code=int(exit_code) if ended is not None and exit_code is not None else None,
    )


def start_program(
    session: Any,
    vm_ref: str,
    credentials: GuestCredentials,
    program: str,
    arguments: str = "",
    *,
    working_directory: str | None = None,
    environment: Mapping[str, str] | None = None,
) -> int:
    """Start ``program`` (an absolute path in the guest) and return its pid at once."""
    vm, _ = _vm(session, vm_ref)
    processes, _ = _managers(session)
    spec = _spec(program, arguments, working_directory, environment)
    return int(processes.StartProgramInGuest(vm, _auth(credentials), spec))


def list_processes(
    session: Any, vm_ref: str, credentials: GuestCredentials, pids: Sequence[int] | None = None
) -> tuple[GuestProcess, ...]:
    """The guest's processes (only ``pids``, when given), by pid."""
    vm, _ = _vm(session, vm_ref)
    processes, _ = _managers(session)
    infos = processes.ListProcessesInGuest(vm, _auth(credentials), list(pids) if pids else None)
    return tuple(sorted((_process(info) for info in infos or ()), key=lambda p: p.pid))


def terminate_process(session: Any, vm_ref: str, credentials: GuestCredentials, pid: int) -> None:
    """Stop a running process (SIGTERM, then SIGKILL on Linux); ``NotFound`` if it is not running."""
    vm, _ = _vm(session, vm_ref)
    processes, _ = _managers(session)
    processes.TerminateProcessInGuest(vm, _auth(credentials), pid)


def run_program(
    session: Any,
    vm_ref: str,
    credentials: GuestCredentials,
    program: str,
    arguments: str = "",
    *,
    timeout: float = 60.0,
    working_directory: str | None = None,
    environment: Mapping[str, str] | None = None,
) -> GuestProcess:
    """Start ``program``, wait until it ends, and return it (``exit_code`` set).

    After ``timeout`` seconds it is terminated and ``GuestProgramTimeout`` raised.
    """
    vm, name = _vm(session, vm_ref)
    processes, _ = _managers(session)
    auth = _auth(credentials)
    spec = _spec(program, arguments, working_directory, environment)
    pid = int(processes.StartProgramInGuest(vm, auth, spec))
    deadline = time.monotonic() + max(0.0, timeout)
    pause = POLL_FIRST
    while True:
        process = _poll(processes, vm, auth, pid, name)
        if not process.running:
            return process
        left = deadline - time.monotonic()
        if left <= 0:
            break
        time.sleep(min(pause, left))
        pause = min(pause * 2, POLL_MAX)
    stopped = True
    try:
        processes.TerminateProcessInGuest(vm, auth, pid)
    except vim.fault.GuestProcessNotFound:
        process = _poll(processes, vm, auth, pid, name)
        if not process.running:
            return process  # it ended on its own just now
        stopped = False
    except vmodl.MethodFault as fault:
        log.warning("Could not stop pid %s in VM %s after its time limit: %s", pid, name, fault)
        stopped = False
    outcome = "was stopped" if stopped else "could not be stopped"
    raise GuestProgramTimeout(
        f"The program {program} in VM '{name}' did not finish within {timeout:g} s and {outcome}.",
        pid=pid,
        cancelled=stopped,
    )


def _poll(processes: Any, vm: Any, auth: Any, pid: int, name: str) -> GuestProcess:
    infos = processes.ListProcessesInGuest(vm, auth, [pid])
    for info in infos or ():
        if int(info.pid) == pid:
            return _process(info)
    raise InvalidState(f"Process {pid} is gone from VM '{name}' (the guest restarted or powered off).")


def _transfer_target(session: Any, url: str) -> tuple[str, str, int, str]:
    """(scheme, host, port, path?query) of a transfer URL; a host of '*' means vCenter's own."""
    parts = urlsplit(url)
    scheme = (parts.scheme or "https").lower()
    host = parts.hostname or "*"
    if host == "*":
        host = session.address.host
    port = parts.port or (443 if scheme == "https" else 80)
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    return scheme, host, port, target


def _http(session: Any, method: str, url: str, body: bytes | None = None) -> http.client.HTTPResponse:
    scheme, host, port, target = _transfer_target(session, url)
    endpoint = session.endpoint
    timeout = endpoint.request_timeout
    connection: http.client.HTTPConnection
    if scheme == "https":
        context = ssl_context(endpoint.verify_tls, endpoint.ca_pem)
        connection = http.client.HTTPSConnection(host, port, timeout=timeout, context=context)
    else:
        connection = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        headers = {"Content-Type": "application/octet-stream"} if body is not None else {}
        connection.request(method, target, body=body, headers=headers)
        return connection.getresponse()
    except OSError as error:
        connection.close()
        raise Unreachable(
            f"Could not reach the ESXi host {host}:{port} for the guest file transfer: {error}."
        ) from None


def _download(session: Any, url: str, limit: int) -> tuple[bytes, bool]:
    """Up to ``limit`` bytes from a transfer URL, and whether there was more."""
    response = _http(session, "GET", url)
    try:
        if response.status != 200:
            raise Unreachable(f"The ESXi host refused the guest file download (HTTP {response.status}).")
        data = response.read(limit + 1)
    finally:
        response.close()
    return data[:limit], len(data) > limit


def read_file(
    session: Any, vm_ref: str, credentials: GuestCredentials, path: str, *, max_bytes: int = DEFAULT_MAX_BYTES
) -> bytes:
    """The content of the guest file ``path``; larger than ``max_bytes`` raises ``InvalidArgument``."""
    vm, name = _vm(session, vm_ref)
    _, files = _managers(session)
    info = files.InitiateFileTransferFromGuest(vm, _auth(credentials), path)
    if info.size is not None and info.size > max_bytes:
        raise InvalidArgument(
            f"The file {path} in VM '{name}' is {info.size} bytes, more than the {max_bytes} bytes allowed."
        )
    data, more = _download(session, info.url, max_bytes)
    if more:
        raise InvalidArgument(f"The file {path} in VM '{name}' grew past the {max_bytes} bytes allowed.")
    return data


def write_file(
    session: Any,
    vm_ref: str,
    credentials: GuestCredentials,
    path: str,
    data: bytes | str,
    *,
    overwrite: bool = True,
) -> None:
    """Write ``data`` (str as UTF-8) to the guest file ``path``; its directory must exist."""
    payload = data.encode() if isinstance(data, str) else bytes(data)
    vm, name = _vm(session, vm_ref)
    _, files = _managers(session)
    url = files.InitiateFileTransferToGuest(
        vm, _auth(credentials), path, vim.vm.guest.FileManager.PosixFileAttributes(), len(payload), overwrite
    )
    response = _http(session, "PUT", url, payload)
    try:
        response.read()
        if response.status != 200:
            raise Unreachable(f"The ESXi host refused the upload of {path} to VM '{name}' (HTTP {response.status}).")
    finally:
        response.close()


def run_script(
    session: Any,
    vm_ref: str,
    credentials: GuestCredentials,
    script: str,
    *,
    timeout: float = 60.0,
    max_output_bytes: int = 64 * 1024,
    environment: Mapping[str, str] | None = None,
    shell: str = "/bin/sh",
) -> GuestScriptResult:
    """Run a shell script in a Linux guest and return its exit code and output.

    The output is collected in a file of the guest's /tmp (as a real check reads a program's
    output), read back (cut at ``max_output_bytes``) and removed.
    """
    output_path = f"/tmp/nestlab-{secrets.token_hex(8)}.out"
    arguments = f"-c {shlex.quote(script)} > {output_path} 2>&1"
    process = run_program(
        session, vm_ref, credentials, shell, arguments, timeout=timeout, environment=environment, working_directory="/"
    )
    data, truncated = b"", False
    vm, _ = _vm(session, vm_ref)
    _, files = _managers(session)
    auth = _auth(credentials)
    try:
        info = files.InitiateFileTransferFromGuest(vm, auth, output_path)
    except vim.fault.FileNotFound:
        pass  # the shell could not create it: no output
    else:
        data, truncated = _download(session, info.url, max_output_bytes)
        try:
            start_program(session, vm_ref, credentials, "/bin/rm", f"-f {output_path}")
        except vmodl.MethodFault as fault:
            log.info("Could not remove %s from the guest: %s", output_path, fault)
    exit_code = process.exit_code if process.exit_code is not None else 0
    return GuestScriptResult(
        exit_code=exit_code, output=data.decode("utf-8", "replace"), pid=process.pid, truncated=truncated
    )
