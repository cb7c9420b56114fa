"""Console tickets and the WebSocket to the host that serves them (labs/vsphere/webmks.py),
against the simulator's WebMKS host."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest

from labs.vsphere import InvalidState, PermissionDenied, Unreachable, open_console_stream

from .conftest import ROUTER

pytestmark = pytest.mark.integration


@pytest.fixture
def running_vm(client, workspace):
    vm = workspace.clone(ROUTER, name="router")
    client.power_on(vm)
    return vm


def first_bytes(ticket, **options) -> bytes:
    async def read():
        stream = await open_console_stream(ticket, **options)
        try:
            return await stream.receive()
        finally:
            await stream.close()

    return asyncio.run(read())


def test_a_ticket_opens_the_vms_console_once(client, running_vm, vcsim):
    ticket = client.console_ticket(running_vm)
    assert (ticket.vm, ticket.host, ticket.port) == (running_vm, "127.0.0.1", vcsim.consoles()["port"])
    assert ticket.url.endswith(f"/ticket/{ticket.ticket}")
    assert "ticket" not in repr(ticket).replace("ConsoleTicket", ""), "the ticket stays out of logs"
    assert first_bytes(ticket) == b"RFB 003.008\n"
    with pytest.raises(InvalidState, match="used or it expired"):
        first_bytes(ticket)


def test_a_powered_off_vm_has_no_console(client, workspace):
    vm = workspace.clone(ROUTER, name="router")
    with pytest.raises(InvalidState, match="powered off"):
        client.console_ticket(vm)


def test_a_host_whose_certificate_does_not_match_never_gets_the_ticket(client, running_vm, vcsim):
    ticket = client.console_ticket(running_vm)
    forged = dataclasses.replace(ticket, ssl_thumbprint="00:" * 19 + "00")
    with pytest.raises(PermissionDenied, match="thumbprint mismatch"):
        first_bytes(forged)
    assert first_bytes(ticket) == b"RFB 003.008\n", "the ticket was not sent, so it is still good"


def test_without_a_thumbprint_the_certificate_must_be_trusted(client, running_vm):
    ticket = dataclasses.replace(client.console_ticket(running_vm), ssl_thumbprint=None)
    with pytest.raises(PermissionDenied, match="not trusted"):
        first_bytes(ticket)
    assert first_bytes(ticket, verify_tls=False) == b"RFB 003.008\n"


def test_a_host_that_never_answers_is_unreachable_in_words(client, running_vm, vcsim):
    ticket = client.console_ticket(running_vm)
    vcsim.stall_consoles(True)
    try:
        with pytest.raises(Unreachable, match=r"did not answer in 0\.5 s"):
            first_bytes(ticket, timeout=0.5)
    finally:
        vcsim.stall_consoles(False)


def test_a_host_that_goes_away_ends_the_stream_in_words(client, running_vm, vcsim):
    async def cut():
        stream = await open_console_stream(client.console_ticket(running_vm))
        await stream.receive()
        await asyncio.to_thread(vcsim.drop_consoles)
        with pytest.raises(Unreachable, match="ended the console"):
            while True:
                await stream.receive()

    asyncio.run(cut())
