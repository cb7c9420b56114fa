"""Every pyVmomi fault and socket error becomes a VSphereError with words."""

from __future__ import annotations

import http.client
import socket
import ssl

import pytest
from pyVmomi import vim, vmodl

from labs.vsphere import errors
from labs.vsphere.errors import (
    AlreadyExists,
    AuthenticationFailed,
    GuestLoginFailed,
    GuestToolsNotRunning,
    InvalidArgument,
    InvalidState,
    NotFound,
    PermissionDenied,
    TaskFailed,
    Unreachable,
    VSphereError,
    fault_kind,
    fault_words,
    translate,
)


@pytest.mark.parametrize(
    ("fault", "kind", "words"),
    [
        (
            vim.fault.InvalidPowerState(
                msg="*types.InvalidPowerState", existingState="poweredOff", requestedState="poweredOn"
            ),
            InvalidState,
            "the VM is powered off, the action needs it powered on",
        ),
        (
            vim.fault.DuplicateName(msg="*types.DuplicateName", name="lab-1"),
            AlreadyExists,
            "the name 'lab-1' is already in use",
        ),
        (vim.fault.AlreadyExists(name="lab-net"), AlreadyExists, "'lab-net' already exists"),
        (vim.fault.NotFound(msg="*types.NotFound"), NotFound, "not found"),
        (
            vmodl.fault.ManagedObjectNotFound(obj=vim.VirtualMachine("vm-5")),
            NotFound,
            "the object vm-5 no longer exists",
        ),
        (
            vim.fault.InvalidLogin(msg="Login failure"),
            AuthenticationFailed,
            "vCenter rejected the user name or password",
        ),
        (vim.fault.NotAuthenticated(), AuthenticationFailed, "the vCenter session is not logged in"),
        (
            vim.fault.NoPermission(privilegeId="VirtualMachine.Interact.PowerOn"),
            PermissionDenied,
            "the vCenter account lacks the privilege VirtualMachine.Interact.PowerOn",
        ),
        (
            vmodl.fault.InvalidArgument(invalidProperty="spec.numCPUs"),
            InvalidArgument,
            "vCenter refused the value of 'spec.numCPUs'",
        ),
        (
            vmodl.fault.MethodNotFound(method="UpdatePortGroup"),
            InvalidArgument,
            "this vCenter does not offer UpdatePortGroup",
        ),
        (vim.fault.ToolsUnavailable(), GuestToolsNotRunning, "VMware Tools are not running in the guest"),
        (vim.fault.GuestOperationsUnavailable(), GuestToolsNotRunning, "VMware Tools are not running in the guest"),
        (
            vim.fault.InvalidGuestLogin(),
            GuestLoginFailed,
            "the guest operating system rejected the guest user name or password",
        ),
        (vim.fault.FileNotFound(file="/tmp/out"), NotFound, "the file '/tmp/out' does not exist"),
        (vim.fault.GuestProcessNotFound(pid=4001), NotFound, "process 4001 is not running in the guest"),
        (vim.fault.FileAlreadyExists(file="/x"), AlreadyExists, "the file '/x' already exists"),
        (
            vim.fault.TaskInProgress(msg="The operation is not allowed in the current state."),
            InvalidState,
            "The operation is not allowed in the current state.",
        ),
        (
            vmodl.fault.SystemError(reason="injected failure for CloneVM_Task"),
            VSphereError,
            "injected failure for CloneVM_Task",
        ),
        (vmodl.fault.RequestCanceled(), VSphereError, "the task was cancelled"),
        (vim.fault.FileLocked(msg="*types.FileLocked"), VSphereError, "file locked"),
    ],
)
def test_faults_become_driver_errors_with_words(fault, kind, words):
    assert fault_kind(fault) is kind
    assert fault_words(fault) == words

    error = translate(fault, action="do it")

    assert type(error) is kind
    assert str(error).startswith("Could not do it: ")
    assert "types." not in str(error) and "vim." not in str(error)
    assert str(error).endswith(".")


def test_go_type_names_inside_a_message_become_words():
    fault = vmodl.fault.InvalidRequest(msg="*types.InvalidArgument in spec.deviceChange")

    assert fault_words(fault) == "invalid argument in spec.deviceChange"


def test_localized_messages_are_used_when_msg_is_empty():
    fault = vim.fault.InvalidDatastore(
        faultMessage=[vmodl.LocalizableMessage(key="k", message="Datastore LocalDS_1 is not accessible")]
    )

    assert fault_words(fault) == "Datastore LocalDS_1 is not accessible"


@pytest.mark.parametrize(
    ("exc", "words"),
    [
        (ConnectionRefusedError(111, "Connection refused"), "the connection was refused"),
        (socket.gaierror(-2, "Name or service not known"), "the host name could not be resolved"),
        (TimeoutError("timed out"), "it did not answer in time"),
        (BrokenPipeError(32, "Broken pipe"), "the connection was closed by the server"),
        (http.client.RemoteDisconnected("Remote end closed connection"), "the connection was closed by the server"),
        (ssl.SSLCertVerificationError(1, "certificate verify failed"), "TLS certificate is not trusted"),
        (ssl.SSLError(1, "wrong version number"), "the TLS handshake failed"),
        (OSError(113, "No route to host"), "no route to host"),
    ],
)
def test_socket_errors_are_unreachable(exc, words):
    error = translate(exc, where="vc.example.edu:443")

    assert isinstance(error, Unreachable)
    assert "vCenter at vc.example.edu:443" in str(error)
    assert words in str(error)


def test_driver_errors_pass_through_unchanged():
    original = NotFound("No vm 'vm-1' in vCenter.")
    assert translate(original) is original


def test_anything_else_still_reads_as_words():
    error = translate(ValueError("a pyVmomi bug with a <object at 0x7f...>"), action="read VM vm-1")

    assert type(error) is VSphereError
    assert str(error) == "Could not read VM vm-1: unexpected error (ValueError)."


def test_task_failed_carries_reason_task_and_kind():
    error = TaskFailed("Could not clone: no.", reason="no", task="task-7", kind=AlreadyExists)

    assert (error.reason, error.task, error.kind) == ("no", "task-7", AlreadyExists)
    assert isinstance(error, VSphereError)


def test_every_error_class_is_a_vsphere_error():
    classes = [getattr(errors, name) for name in dir(errors) if isinstance(getattr(errors, name), type)]
    driver_errors = [cls for cls in classes if issubclass(cls, Exception) and cls.__module__ == errors.__name__]
    assert len(driver_errors) == 13
    assert all(issubclass(cls, VSphereError) for cls in driver_errors)
