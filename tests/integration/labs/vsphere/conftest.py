"""Fixtures for the driver's integration tests against the shared simulator (-demo).

Tests work in their own folder and resource pool, on clones: the demo inventory is
shared with every other test of the session and stays as it was.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

from labs import vsphere
from labs.vsphere import EndpointConfig, VSphereClient

from .readback import VCenter

DATACENTER = "DC0"
CLUSTER = "DC0_C0"
CLUSTER_PATH = "/DC0/host/DC0_C0"
DATASTORE = "LocalDS_0"
DV_SWITCH = "DVS0"
VSWITCH = "vSwitch0"
LAB_TEMPLATE = "/DC0/vm/Nestlab Templates/Nested vSphere 8 Lab"
ESXI = f"{LAB_TEMPLATE}/esxi-01"
ROUTER = f"{LAB_TEMPLATE}/router"
TEMPLATE_NETWORK = "Nestlab-Lab-Template"


def unique(prefix: str = "t") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def endpoint_for(simulator, **overrides) -> EndpointConfig:
    values = dict(
        url=simulator.url,
        username=simulator.username,
        password=simulator.password,
        verify_tls=False,
    )
    values.update(overrides)
    return EndpointConfig(**values)


@pytest.fixture
def endpoint(vcsim) -> EndpointConfig:
    return endpoint_for(vcsim)


@pytest.fixture
def client(endpoint) -> VSphereClient:
    return vsphere.get_client(endpoint)


@pytest.fixture(scope="session")
def vc(vcsim) -> Iterator[VCenter]:
    reader = VCenter(vcsim)
    yield reader
    reader.close()


@dataclass
class Workspace:
    """A folder and a resource pool of the test's own, and the VMs made in them."""

    client: VSphereClient
    folder: str
    pool: str
    name: str
    vms: list[str] = field(default_factory=list)

    def clone(self, source: str = ESXI, name: str | None = None, **options) -> str:
        moref = self.client.clone_vm(source, name=name or unique("vm"), folder=self.folder, pool=self.pool, **options)
        self.vms.append(moref)
        return moref


@pytest.fixture
def workspace(client) -> Iterator[Workspace]:
    name = unique("ws")
    space = Workspace(
        client=client,
        folder=client.ensure_folder(f"/{DATACENTER}/vm", name),
        pool=client.ensure_pool(CLUSTER_PATH, name),
        name=name,
    )
    yield space
    for moref in client.search_vms(space.folder):
        with contextlib.suppress(vsphere.VSphereError):
            client.destroy_vm(moref.moref)
    with contextlib.suppress(vsphere.VSphereError):
        client.destroy_folder(space.folder)
    with contextlib.suppress(vsphere.VSphereError):
        client.destroy_pool(space.pool)
