"""The launcher's WebMKS console host (vcsim/webmks.go, screen.go, rfb.go): AcquireTicket("webmks")
and the wss://host:port/ticket/<ticket> endpoint speaking RFB 3.8 over the "binary" subprotocol,
driven through pyVmomi and a real WebSocket client."""

from __future__ import annotations

import asyncio
import hashlib
import ssl
import uuid

import pytest
from pyVim.connect import Disconnect
from pyVmomi import vim, vmodl
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from portal import simulator
from tests.integration.vcsim.test_launcher import connect, find, props, watch_task
from tests.support.rfb import RfbClient

pytestmark = pytest.mark.integration

TEXT_TOP = 5 * 16  # the screen's typed text starts below four header lines and a blank one


@pytest.fixture
def si(vcsim):
    service = connect(vcsim)
    yield service
    Disconnect(service)


@pytest.fixture
def powered_on_vm(si):
    """A VM of the test's own, cloned from a stock one and powered on; destroyed afterwards."""
    source = find(si, "DC0/vm/DC0_H0_VM0")
    name = f"console-{uuid.uuid4().hex[:8]}"
    watch = watch_task(
        si,
        source.CloneVM_Task(
            folder=find(si, "DC0/vm"), name=name, spec=vim.vm.CloneSpec(location=vim.vm.RelocateSpec())
        ),
    )
    vm = watch.result
    watch_task(si, vm.PowerOnVM_Task())
    yield vm
    if props(si, vm, "runtime.powerState")["runtime.powerState"] == "poweredOn":
        watch_task(si, vm.PowerOffVM_Task())
    watch_task(si, vm.Destroy_Task())


def insecure() -> ssl.SSLContext:
    """The test checks the thumbprint itself, as the relay does."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def url_of(ticket) -> str:
    return f"wss://{ticket.host}:{ticket.port}/ticket/{ticket.ticket}"


async def open_console(ticket, *, subprotocols=("binary",)):
    socket = await ws_connect(url_of(ticket), ssl=insecure(), subprotocols=list(subprotocols), open_timeout=5)
    client = RfbClient(socket.send, socket.recv)
    return socket, client


def screen_of(vcsim, vm) -> dict:
    return vcsim.consoles()["screens"].get(vm._moId, {})


def test_a_webmks_ticket_names_the_host_port_thumbprint_and_url(vcsim, si, powered_on_vm):
    ticket = powered_on_vm.AcquireTicket("webmks")
    host = vcsim.consoles()
    assert (ticket.host, ticket.port, ticket.sslThumbprint) == (host["host"], host["port"], host["thumbprint"])
    assert ticket.url == url_of(ticket)
    assert ticket.cfgFile.endswith(".vmx")

    async def thumbprint_served() -> str:
        socket, _ = await open_console(ticket)
        der = socket.transport.get_extra_info("ssl_object").getpeercert(binary_form=True)
        await socket.close()
        return ":".join(f"{byte:02X}" for byte in hashlib.sha1(der).digest())

    assert asyncio.run(thumbprint_served()) == ticket.sslThumbprint


def test_the_console_shows_the_vm_and_echoes_what_is_typed(vcsim, si, powered_on_vm):
    ticket = powered_on_vm.AcquireTicket("webmks")
    name = props(si, powered_on_vm, "name")["name"]

    async def session():
        socket, client = await open_console(ticket)
        assert socket.subprotocol == "binary"
        await client.handshake()
        await client.request_update(incremental=False)
        await client.read_update()
        before = client.region(TEXT_TOP, TEXT_TOP + 16)
        await client.type("hello console")
        await client.ctrl_alt_del()
        await client.request_update(incremental=True)
        rects = await client.read_update()
        while client.region(TEXT_TOP, TEXT_TOP + 16) == before:  # an uptime tick may come first
            await client.request_update(incremental=True)
            rects = await client.read_update()
        await socket.close()
        return client, rects

    client, rects = asyncio.run(session())
    assert client.name == name
    assert (client.width, client.height) == (720, 400)
    assert all(w == 720 and h < 400 for _, _, w, h in rects), "an incremental update sends the lines that changed"
    assert client.pixel(0, 0) == (0x1B, 0x2A, 0x3A)  # the background
    state = screen_of(vcsim, powered_on_vm)
    assert state["text"] == "hello console"
    assert state["ctrlAltDel"] == 1
    assert state["name"] == name


def test_a_ticket_is_good_once(vcsim, si, powered_on_vm):
    ticket = powered_on_vm.AcquireTicket("webmks")

    async def twice():
        socket, client = await open_console(ticket)
        await client.handshake()
        await socket.close()
        with pytest.raises(InvalidStatus) as refused:
            await open_console(ticket)
        return refused.value.response.status_code

    assert asyncio.run(twice()) == 404


def test_the_console_needs_the_binary_subprotocol(vcsim, si, powered_on_vm):
    ticket = powered_on_vm.AcquireTicket("webmks")

    async def vvc_only():
        with pytest.raises(InvalidStatus) as refused:
            await open_console(ticket, subprotocols=("vmware-vvc",))
        return refused.value.response.status_code

    assert asyncio.run(vvc_only()) == 400


def test_a_powered_off_vm_has_no_ticket_and_powering_off_closes_its_console(vcsim, si, powered_on_vm):
    ticket = powered_on_vm.AcquireTicket("webmks")

    async def until_closed():
        socket, client = await open_console(ticket)
        await client.handshake()
        await asyncio.to_thread(watch_task, si, powered_on_vm.PowerOffVM_Task())
        with pytest.raises(ConnectionClosed) as closed:
            while True:
                await client.request_update(incremental=True)
                await client.read_update()
        return closed.value.rcvd

    close = asyncio.run(until_closed())
    assert (close.code, close.reason) == (1000, "The virtual machine powered off.")
    with pytest.raises(vim.fault.InvalidPowerState):
        powered_on_vm.AcquireTicket("webmks")


def test_only_webmks_tickets_are_issued(si, powered_on_vm):
    with pytest.raises(vmodl.fault.InvalidArgument):
        powered_on_vm.AcquireTicket("mks")


def test_a_stalled_host_never_answers_and_a_dropped_one_closes(vcsim, si, powered_on_vm):
    async def stalled():
        vcsim.stall_consoles(True)
        try:
            with pytest.raises(TimeoutError):
                await ws_connect(
                    url_of(powered_on_vm.AcquireTicket("webmks")),
                    ssl=insecure(),
                    subprotocols=["binary"],
                    open_timeout=1,
                )
        finally:
            vcsim.stall_consoles(False)

    async def dropped():
        socket, client = await open_console(powered_on_vm.AcquireTicket("webmks"))
        await client.handshake()
        assert await asyncio.to_thread(vcsim.drop_consoles) >= 1
        with pytest.raises(ConnectionClosed):
            while True:
                await client.request_update(incremental=True)
                await client.read_update()

    asyncio.run(stalled())
    asyncio.run(dropped())


@pytest.fixture(scope="module")
def short_ticket_vcsim():
    server = simulator.start(args=["-webmks-ticket-ttl", "300ms"])
    yield server
    server.stop()


def test_an_unused_ticket_expires(short_ticket_vcsim):
    service = connect(short_ticket_vcsim)
    try:
        vm = find(service, "DC0/vm/DC0_H0_VM0")
        ticket = vm.AcquireTicket("webmks")

        async def late():
            await asyncio.sleep(0.6)
            with pytest.raises(InvalidStatus) as refused:
                await open_console(ticket)
            return refused.value.response.status_code

        assert asyncio.run(late()) == 404
    finally:
        Disconnect(service)
