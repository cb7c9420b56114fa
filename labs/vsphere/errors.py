"""The driver's exceptions, and the one place where pyVmomi faults become them.

Everything the driver raises is a ``VSphereError`` whose message a person can read:
no Go type names (the simulator's ``*types.InvalidPowerState``), no tracebacks, no
pyVmomi object dumps. ``translate`` is applied at the edge (the facade), so callers
never see a pyVmomi or socket exception.
"""

from __future__ import annotations

import http.client
import logging
import re
import socket
import ssl

from pyVmomi import vim, vmodl

logger = logging.getLogger(__name__)


class VSphereError(Exception):
    """Base of every error the driver raises. ``str(error)`` is meant for people."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class NotFound(VSphereError):
    """An inventory object, path, snapshot or network does not exist."""


class AlreadyExists(VSphereError):
    """An object with that name is already there."""


class InvalidState(VSphereError):
    """The object is not in a state that allows the action (e.g. already powered on)."""


class InvalidArgument(VSphereError):
    """The request itself is wrong (a bad path, a value vCenter refuses)."""


class PermissionDenied(VSphereError):
    """The vCenter account lacks a privilege for the action."""


class AuthenticationFailed(VSphereError):
    """vCenter refused the user name or password."""


class Unreachable(VSphereError):
    """vCenter could not be reached, or the connection broke during a request."""


class TaskFailed(VSphereError):
    """A vCenter task ended in error. ``reason`` is vCenter's reason in words.

    ``kind`` is the driver error class the fault corresponds to (e.g. ``AlreadyExists``
    for a DuplicateName fault), so callers can react to the cause as well.
    """

    def __init__(
        self, message: str, *, reason: str, task: str | None = None, kind: type[VSphereError] = VSphereError
    ) -> None:
        super().__init__(message)
        self.reason = reason
        self.task = task
        self.kind = kind


class DeadlineExceeded(VSphereError):
    """A task did not finish in time; ``cancelled`` says whether vCenter cancelled it."""

    def __init__(self, message: str, *, task: str | None = None, cancelled: bool = False) -> None:
        super().__init__(message)
        self.task = task
        self.cancelled = cancelled


class GuestLoginFailed(VSphereError):
    """The guest operating system refused the guest user name or password (guest operations).

    Not ``AuthenticationFailed``: the vCenter account is fine, the lab VM's own account is not.
    """


class GuestToolsNotRunning(InvalidState):
    """VMware Tools are not running in the guest, so vCenter cannot reach into it."""


class GuestProgramTimeout(DeadlineExceeded):
    """A program in a guest ran past its time limit. ``pid`` is its process id in the guest;
    ``cancelled`` says whether it was stopped (TerminateProcessInGuest)."""

    def __init__(self, message: str, *, pid: int, cancelled: bool) -> None:
        super().__init__(message, cancelled=cancelled)
        self.pid = pid


_GO_TYPE = re.compile(r"\*?types\.(\w+)")
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")

# Fault class -> driver error class, most specific first (isinstance order matters).
_FAULT_KINDS: tuple[tuple[type, type[VSphereError]], ...] = (
    (vim.fault.InvalidGuestLogin, GuestLoginFailed),
    (vim.fault.GuestOperationsUnavailable, GuestToolsNotRunning),
    (vim.fault.GuestComponentsOutOfDate, GuestToolsNotRunning),
    (vim.fault.ToolsUnavailable, GuestToolsNotRunning),
    (vim.fault.GuestPermissionDenied, PermissionDenied),
    (vim.fault.GuestProcessNotFound, NotFound),
    (vim.fault.FileNotFound, NotFound),
    (vim.fault.FileAlreadyExists, AlreadyExists),
    (vim.fault.NotAFile, InvalidArgument),
    (vim.fault.InvalidLogin, AuthenticationFailed),
    (vim.fault.NotAuthenticated, AuthenticationFailed),
    (vim.fault.NoPermission, PermissionDenied),
    (vmodl.fault.SecurityError, PermissionDenied),
    (vim.fault.DuplicateName, AlreadyExists),
    (vim.fault.AlreadyExists, AlreadyExists),
    (vim.fault.NotFound, NotFound),
    (vmodl.fault.ManagedObjectNotFound, NotFound),
    (vim.fault.InvalidPowerState, InvalidState),
    (vim.fault.InvalidState, InvalidState),
    (vim.fault.TaskInProgress, InvalidState),
    (vim.fault.ResourceInUse, InvalidState),
    (vmodl.fault.InvalidArgument, InvalidArgument),
    (vmodl.fault.NotSupported, InvalidArgument),
    (vmodl.fault.MethodNotFound, InvalidArgument),
    (vim.fault.InvalidName, InvalidArgument),
    (vmodl.fault.InvalidRequest, InvalidArgument),
)


def _words(identifier: str) -> str:
    """'InvalidPowerState' -> 'invalid power state'."""
    return _CAMEL.sub(" ", identifier).lower()


def _fault_name(fault: BaseException) -> str:
    return type(fault).__name__.rsplit(".", 1)[-1]


def _moref_text(obj: object) -> str:
    moid = getattr(obj, "_moId", None)
    return str(moid) if moid else str(obj)


def _specific_words(fault: BaseException) -> str | None:
    """Words for the faults whose fields say more than their (often empty) message."""
    if isinstance(fault, vim.fault.InvalidPowerState):
        existing = getattr(fault, "existingState", None)
        requested = getattr(fault, "requestedState", None)
        if existing and requested:
            return f"the VM is {_words(str(existing))}, the action needs it {_words(str(requested))}"
        if existing:
            return f"the VM is {_words(str(existing))}"
        return "the VM's power state does not allow this"
    if isinstance(fault, vim.fault.DuplicateName):
        name = getattr(fault, "name", None)
        return f"the name '{name}' is already in use" if name else "the name is already in use"
    if isinstance(fault, vim.fault.AlreadyExists):
        name = getattr(fault, "name", None)
        return f"'{name}' already exists" if name else "it already exists"
    if isinstance(fault, vmodl.fault.ManagedObjectNotFound):
        obj = getattr(fault, "obj", None)
        return f"the object {_moref_text(obj)} no longer exists" if obj is not None else None
    if isinstance(fault, vmodl.fault.InvalidArgument):
        prop = getattr(fault, "invalidProperty", None)
        return f"vCenter refused the value of '{prop}'" if prop else None
    if isinstance(fault, vim.fault.InvalidLogin):
        return "vCenter rejected the user name or password"
    if isinstance(fault, vim.fault.NotAuthenticated):
        return "the vCenter session is not logged in"
    if isinstance(fault, vim.fault.NoPermission):
        privilege = getattr(fault, "privilegeId", None)
        return f"the vCenter account lacks the privilege {privilege}" if privilege else None
    if isinstance(fault, vmodl.fault.SystemError):
        return _clean_message(getattr(fault, "reason", None)) or _clean_message(getattr(fault, "msg", None))
    if isinstance(fault, vmodl.fault.RequestCanceled):
        return "the task was cancelled"
    if isinstance(fault, (vim.fault.ToolsUnavailable, vim.fault.GuestOperationsUnavailable)):
        return "VMware Tools are not running in the guest"
    if isinstance(fault, vim.fault.GuestComponentsOutOfDate):
        return "VMware Tools in the guest are too old for guest operations"
    if isinstance(fault, vim.fault.InvalidGuestLogin):
        return "the guest operating system rejected the guest user name or password"
    if isinstance(fault, vim.fault.GuestPermissionDenied):
        return "the guest user may not do this in the guest operating system"
    if isinstance(fault, vim.fault.GuestProcessNotFound):
        pid = getattr(fault, "pid", None)
        return f"process {pid} is not running in the guest" if pid else "the process is not running in the guest"
    if isinstance(fault, vim.fault.FileNotFound):
        name = getattr(fault, "file", None)
        return f"the file '{name}' does not exist" if name else "the file does not exist"
    if isinstance(fault, vim.fault.FileAlreadyExists):
        name = getattr(fault, "file", None)
        return f"the file '{name}' already exists" if name else "the file already exists"
    if isinstance(fault, vim.fault.NotAFile):
        name = getattr(fault, "file", None)
        return f"'{name}' is not a file" if name else "that is not a file"
    if isinstance(fault, vmodl.fault.MethodNotFound):
        method = getattr(fault, "method", None)
        return f"this vCenter does not offer {method}" if method else None
    return None


def _clean_message(text: str | None) -> str | None:
    """vCenter's own message, unless it is empty or a Go/pyVmomi type name."""
    if not text:
        return None
    text = " ".join(str(text).split())
    if _GO_TYPE.fullmatch(text) or text.startswith(("vim.", "vmodl.", "(vim.", "(vmodl.")):
        return None
    return _GO_TYPE.sub(lambda m: _words(m.group(1)), text)


def fault_words(fault: BaseException) -> str:
    """A sentence fragment saying what went wrong, for any pyVmomi fault."""
    specific = _specific_words(fault)
    if specific:
        return specific
    message = _clean_message(getattr(fault, "msg", None))
    if message:
        return message
    for localized in getattr(fault, "faultMessage", None) or ():
        message = _clean_message(getattr(localized, "message", None))
        if message:
            return message
    return _words(_fault_name(fault))


def fault_kind(fault: BaseException) -> type[VSphereError]:
    """The driver error class a pyVmomi fault corresponds to."""
    for fault_class, kind in _FAULT_KINDS:
        if isinstance(fault, fault_class):
            return kind
    return VSphereError


def _socket_words(exc: BaseException) -> str:
    if isinstance(exc, ssl.SSLCertVerificationError):
        return (
            "its TLS certificate is not trusted "
            f"({getattr(exc, 'verify_message', None) or 'verification failed'}); "
            "install the CA certificate or turn off certificate verification"
        )
    if isinstance(exc, ssl.SSLError):
        return f"the TLS handshake failed ({getattr(exc, 'reason', None) or exc.strerror or 'TLS error'})"
    if isinstance(exc, socket.gaierror):
        return "the host name could not be resolved"
    if isinstance(exc, ConnectionRefusedError):
        return "the connection was refused (is vCenter running on that port?)"
    if isinstance(exc, (TimeoutError, socket.timeout)):
        return "it did not answer in time"
    if isinstance(exc, (BrokenPipeError, ConnectionResetError, http.client.RemoteDisconnected)):
        return "the connection was closed by the server"
    if isinstance(exc, http.client.HTTPException):
        return "it sent an answer that is not HTTP"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror[0].lower() + exc.strerror[1:]
    return "the network connection failed"


def is_connection_error(exc: BaseException) -> bool:
    return isinstance(exc, (OSError, http.client.HTTPException)) and not isinstance(exc, vmodl.MethodFault)


def translate(exc: BaseException, *, action: str | None = None, where: str | None = None) -> VSphereError:
    """Turn any exception raised while talking to vCenter into a ``VSphereError``.

    ``action`` ("power on vm-42") and ``where`` ("vc.example.edu:443") only add words.
    """
    if isinstance(exc, VSphereError):
        return exc
    prefix = f"Could not {action}: " if action else ""
    if isinstance(exc, vmodl.MethodFault):
        words = fault_words(exc)
        return fault_kind(exc)(_sentence(prefix + words))
    if is_connection_error(exc):
        target = f"vCenter at {where}" if where else "vCenter"
        return Unreachable(_sentence(f"{prefix}cannot talk to {target}: {_socket_words(exc)}"))
    # Anything else (a pyVmomi deserialisation error, a bug) still gets a readable message,
    # and the traceback goes to the log for whoever has to fix it.
    logger.warning("Unexpected error while trying to %s", action or "talk to vCenter", exc_info=exc)
    return VSphereError(_sentence(f"{prefix}unexpected error ({type(exc).__name__})"))


def _sentence(text: str) -> str:
    text = text.strip()
    if not text:
        return "vCenter reported an error."
    text = text[0].upper() + text[1:]
    return text if text.endswith((".", "!", "?")) else text + "."
