"""Nestlab's vSphere driver: the only code that imports pyVmomi.

Plain frozen dataclasses go in and come out, morefs travel as strings ("vm-42"), and
every failure is a ``VSphereError`` subclass with a message a person can read.

    client = get_client(EndpointConfig(url="https://vc.example.edu", username=..., password=...))
    vm = client.clone_vm("/DC0/vm/Templates/esxi-01", name="lab-7-esxi-01", folder=..., pool=...)

See docs/driver.md.
"""

from .client import VSphereClient, get_client
from .errors import (
    AlreadyExists,
    AuthenticationFailed,
    DeadlineExceeded,
    GuestLoginFailed,
    GuestProgramTimeout,
    GuestToolsNotRunning,
    InvalidArgument,
    InvalidState,
    NotFound,
    PermissionDenied,
    TaskFailed,
    Unreachable,
    VSphereError,
)
from .session import close_all
from .types import (
    ConsoleTicket,
    EndpointConfig,
    GuestCredentials,
    GuestProcess,
    GuestScriptResult,
    InventoryItem,
    Kind,
    NetworkInfo,
    Nic,
    PlacementCheck,
    PlacementReport,
    PoolInfo,
    PortGroupSpec,
    ProgressCallback,
    ServerInfo,
    SnapshotInfo,
    VMInfo,
)
from .watch import VMUpdate
from .webmks import ConsoleStream, open_console_stream

__all__ = [
    "AlreadyExists",
    "AuthenticationFailed",
    "ConsoleStream",
    "ConsoleTicket",
    "DeadlineExceeded",
    "EndpointConfig",
    "GuestCredentials",
    "GuestLoginFailed",
    "GuestProcess",
    "GuestProgramTimeout",
    "GuestScriptResult",
    "GuestToolsNotRunning",
    "InvalidArgument",
    "InvalidState",
    "InventoryItem",
    "Kind",
    "NetworkInfo",
    "Nic",
    "NotFound",
    "PermissionDenied",
    "PlacementCheck",
    "PlacementReport",
    "PoolInfo",
    "PortGroupSpec",
    "ProgressCallback",
    "ServerInfo",
    "SnapshotInfo",
    "TaskFailed",
    "Unreachable",
    "VMInfo",
    "VMUpdate",
    "VSphereClient",
    "VSphereError",
    "close_all",
    "get_client",
    "open_console_stream",
]
