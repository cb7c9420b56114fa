"""Plain frozen dataclasses: what goes into the driver and what comes out.

Managed objects are named by their moref string ("vm-42"); no pyVmomi type appears here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime

ProgressCallback = Callable[[int, str | None], None]
"""``on_progress(percent, description)``: percent is 0-100, description may be None."""


@dataclass(frozen=True)
class EndpointConfig:
    """How to reach one vCenter. The password never appears in repr() or logs.

    ``url``: "https://vc.example.edu", "vc.example.edu", "http://127.0.0.1:8989/sdk"
    (scheme defaults to https, the port to 443 for https and 80 for http, the path to /sdk).
    """

    url: str
    username: str
    password: str = field(repr=False)
    verify_tls: bool = True
    connect_timeout: float = 10.0
    """Seconds to wait for the TCP/TLS connection and the first answer."""
    request_timeout: float = 120.0
    """Seconds a single SOAP request may take (task waits poll in short steps below this)."""
    keepalive_after: float = 600.0
    """A session idle this long is checked (and kept alive) before its next use."""
    ca_pem: str | None = field(default=None, repr=False)
    """PEM CA certificate(s) to trust for ``verify_tls`` (e.g. vCenter's VMCA root)."""


@dataclass(frozen=True)
class Address:
    """A parsed endpoint URL."""

    scheme: str
    host: str
    port: int
    path: str

    @property
    def netloc(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


@dataclass(frozen=True)
class ServerInfo:
    """What "Test connection" shows about a vCenter."""

    full_name: str
    api_version: str
    instance_uuid: str
    username: str


class Kind:
    """Kinds of inventory objects, as named in ``InventoryItem.kind``."""

    FOLDER = "folder"
    VM = "vm"
    TEMPLATE = "template"
    DATACENTER = "datacenter"
    CLUSTER = "cluster"
    COMPUTE_RESOURCE = "compute_resource"
    HOST = "host"
    RESOURCE_POOL = "resource_pool"
    VAPP = "vapp"
    DATASTORE = "datastore"
    NETWORK = "network"
    DV_PORTGROUP = "dv_portgroup"
    DV_SWITCH = "dv_switch"
    OTHER = "other"


@dataclass(frozen=True)
class InventoryItem:
    """One object of the inventory, e.g. a row of a picker."""

    moref: str
    name: str
    kind: str
    path: str = ""


@dataclass(frozen=True)
class Nic:
    """A VM network adapter and the network it is connected to."""

    label: str
    key: int
    mac_address: str | None
    network: str | None
    """Name of the port group (standard or distributed), None if unknown."""
    network_moref: str | None
    connected: bool


@dataclass(frozen=True)
class SnapshotInfo:
    """A node of a VM's snapshot tree."""

    moref: str
    name: str
    description: str
    created: datetime | None
    state: str
    """Power state of the VM when the snapshot was taken ("poweredOn", "poweredOff", ...)."""
    quiesced: bool = False
    is_current: bool = False
    children: tuple[SnapshotInfo, ...] = ()

    def walk(self) -> Iterator[SnapshotInfo]:
        """This node and all its descendants, depth first."""
        yield self
        for child in self.children:
            yield from child.walk()


@dataclass(frozen=True)
class VMInfo:
    """Details of one VM (or template)."""

    moref: str
    name: str
    path: str
    power_state: str
    num_cpu: int
    memory_mb: int
    disk_gb: float
    nested_hv: bool
    is_template: bool
    guest_ip: str | None
    overall_status: str
    annotation: str
    custom_values: Mapping[str, str]
    nics: tuple[Nic, ...]
    snapshots: tuple[SnapshotInfo, ...]
    """Root snapshots; each has its ``children``."""
    current_snapshot: str | None = None
    instance_uuid: str | None = None
    guest_info: Mapping[str, str] = field(default_factory=dict)
    """The VM's ``guestinfo.*`` ExtraConfig keys (what the guest can read through VMware Tools)."""

    def all_snapshots(self) -> Iterator[SnapshotInfo]:
        for root in self.snapshots:
            yield from root.walk()


@dataclass(frozen=True)
class PlacementCheck:
    """One line of "Test connection": what was checked, whether it passed, and why."""

    name: str
    ok: bool
    detail: str
    moref: str | None = None


@dataclass(frozen=True)
class PlacementReport:
    checks: tuple[PlacementCheck, ...]

    @property
    def ok(self) -> bool:
        return all(check.ok for check in self.checks)

    def failures(self) -> tuple[PlacementCheck, ...]:
        return tuple(check for check in self.checks if not check.ok)


@dataclass(frozen=True)
class PoolInfo:
    moref: str
    name: str
    path: str
    cpu_limit_mhz: int | None
    """None means unlimited."""
    memory_limit_mb: int | None
    vm_count: int = 0


@dataclass(frozen=True)
class PortGroupSpec:
    """An isolated lab network: a port group with its VLAN and security policy."""

    name: str
    vlan_id: int = 0
    promiscuous: bool = True
    forged_transmits: bool = True
    mac_changes: bool = True


@dataclass(frozen=True)
class NetworkInfo:
    """A network a VM NIC can be attached to."""

    moref: str | None
    name: str
    kind: str
    """``Kind.NETWORK`` (a standard port group) or ``Kind.DV_PORTGROUP``."""
    vlan_id: int | None = None
    hosts: tuple[str, ...] = ()
    """For standard port groups: the hosts (names) that carry it."""


@dataclass(frozen=True)
class ConsoleTicket:
    """A VM's WebMKS ticket (``VirtualMachine.AcquireTicket("webmks")``): single-use, short-lived,
    and a key to that VM's screen, keyboard and mouse. It stays on the server: the portal's
    relay connects with it, the browser never sees it (hence no ticket or URL in repr())."""

    vm: str
    host: str
    port: int
    ticket: str = field(repr=False)
    url: str = field(repr=False)
    """``wss://host:port/ticket/<ticket>``."""
    ssl_thumbprint: str | None = None
    """The host certificate's thumbprint as vCenter knows it ("AB:CD:…", SHA-1), or None."""


@dataclass(frozen=True)
class GuestCredentials:
    """An account of the guest operating system, for guest operations (VMware Tools).

    The password never appears in repr() or logs."""

    username: str
    password: str = field(repr=False)


@dataclass(frozen=True)
class GuestProcess:
    """A program started in a guest (``ListProcessesInGuest``). ``exit_code`` and ``ended_at``
    are None while it runs; a program stopped by a time limit ends with the guest's code for
    it (143 on Linux: 128 + SIGTERM)."""

    pid: int
    name: str
    owner: str
    command_line: str
    started_at: datetime
    ended_at: datetime | None = None
    exit_code: int | None = None

    @property
    def running(self) -> bool:
        return self.ended_at is None


@dataclass(frozen=True)
class GuestScriptResult:
    """A shell script run in a guest: its exit code and what it wrote to stdout and stderr
    (together, as ``> file 2>&1`` collects them; decoded as UTF-8, bad bytes replaced)."""

    exit_code: int
    output: str
    pid: int
    truncated: bool = False
    """True when the output was longer than the limit and was cut there."""
