"""Programs and files inside a guest (labs/vsphere/guest.py), against the simulator's guest
operations (vcsim/guest.go): what a lab guide's automated check does."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from labs.vsphere import (
    GuestCredentials,
    GuestLoginFailed,
    GuestProgramTimeout,
    GuestToolsNotRunning,
    InvalidArgument,
    InvalidState,
    NotFound,
    open_console_stream,
)
from portal import simulator
from tests.support.rfb import RfbClient

from .conftest import ROUTER

pytestmark = pytest.mark.integration

ROOT = GuestCredentials(username=simulator.GUEST_USERNAME, password=simulator.GUEST_PASSWORD)


@pytest.fixture
def running_vm(client, workspace):
    vm = workspace.clone(ROUTER, name="router")
    client.power_on(vm)
    return vm


def test_a_scripts_exit_code_and_output(client, running_vm, vcsim):
    result = client.run_guest_script(running_vm, ROOT, "echo checking; test -f /etc/hostname && exit 4")
    assert (result.exit_code, result.output, result.truncated) == (4, "checking\n", False)
    assert client.run_guest_script(running_vm, ROOT, "grep -q nothing /etc/hostname").exit_code == 1
    guest_tmp = Path(vcsim.guests()["vms"][running_vm]["sandbox"], "tmp")
    deadline = time.monotonic() + 5
    while any(guest_tmp.iterdir()):  # the output files are removed (without waiting)
        assert time.monotonic() < deadline, list(guest_tmp.iterdir())
        time.sleep(0.05)


def test_a_program_and_a_file_written_then_read(client, running_vm):
    client.write_guest_file(running_vm, ROOT, "/root/answer.txt", "42\n")
    process = client.run_guest_program(running_vm, ROOT, "/bin/grep", "-q 42 /root/answer.txt")
    assert (process.exit_code, process.name, process.owner, process.running) == (0, "grep", "root", False)
    assert process.started_at <= process.ended_at
    assert client.read_guest_file(running_vm, ROOT, "/root/answer.txt") == b"42\n"
    assert client.run_guest_program(running_vm, ROOT, "/bin/sh", "-c 'exit 7'").exit_code == 7
    script = client.run_guest_script(running_vm, ROOT, 'echo "$LAB_ID"', environment={"LAB_ID": "lab-9"})
    assert script.output == "lab-9\n"


def test_output_past_the_limit_is_cut_and_a_large_file_refused(client, running_vm):
    client.write_guest_file(running_vm, ROOT, "/tmp/big", b"x" * 5000)
    result = client.run_guest_script(running_vm, ROOT, "cat /tmp/big", max_output_bytes=100)
    assert (len(result.output), result.truncated) == (100, True)
    with pytest.raises(InvalidArgument, match="5000 bytes, more than the 1000 bytes allowed"):
        client.read_guest_file(running_vm, ROOT, "/tmp/big", max_bytes=1000)


def test_a_check_reads_a_file_the_student_made_at_the_console(client, running_vm):
    assert client.run_guest_script(running_vm, ROOT, "test -e /done").exit_code == 1
    ticket = client.console_ticket(running_vm)

    async def type_at_the_console():
        stream = await open_console_stream(ticket)
        rfb = RfbClient(stream.send, stream.receive)
        await rfb.handshake()
        await rfb.type("touch /done\n")
        await stream.close()

    asyncio.run(type_at_the_console())
    deadline = time.monotonic() + 5
    while client.run_guest_script(running_vm, ROOT, "test -e /done").exit_code != 0:
        assert time.monotonic() < deadline, "the console's line never ran"
        time.sleep(0.1)


def test_wrong_guest_password(client, running_vm):
    wrong = GuestCredentials(username="root", password="not-it")
    with pytest.raises(GuestLoginFailed, match="rejected the guest user name or password") as refused:
        client.run_guest_script(running_vm, wrong, "true")
    assert "not-it" not in str(refused.value) and "not-it" not in repr(wrong)


def test_tools_not_running(client, running_vm, vcsim):
    vcsim.set_guest(running_vm, tools_running=False)
    try:
        with pytest.raises(GuestToolsNotRunning, match="VMware Tools are not running"):
            client.read_guest_file(running_vm, ROOT, "/etc/hostname")
    finally:
        vcsim.set_guest(running_vm, tools_running=True)


def test_vm_powered_off(client, workspace):
    vm = workspace.clone(ROUTER, name="router")
    with pytest.raises(InvalidState, match="powered off"):
        client.run_guest_program(vm, ROOT, "/bin/true")


def test_a_missing_file(client, running_vm):
    with pytest.raises(NotFound, match="'/tmp/none' does not exist"):
        client.read_guest_file(running_vm, ROOT, "/tmp/none")
    with pytest.raises(NotFound, match="'/no/such' does not exist"):
        client.write_guest_file(running_vm, ROOT, "/no/such/file", b"")


def test_a_program_past_its_time_limit_is_stopped(client, running_vm):
    started = time.monotonic()
    with pytest.raises(GuestProgramTimeout, match=r"did not finish within 0.5 s and was stopped") as late:
        client.run_guest_program(running_vm, ROOT, "/bin/sh", "-c 'sleep 30; touch /too-late'", timeout=0.5)
    assert time.monotonic() - started < 5
    assert late.value.cancelled
    (process,) = client.list_guest_processes(running_vm, ROOT, [late.value.pid])
    assert (process.running, process.exit_code) == (False, 143)
    assert client.run_guest_script(running_vm, ROOT, "test -e /too-late").exit_code == 1
    with pytest.raises(NotFound, match=f"process {late.value.pid} is not running"):
        client.terminate_guest_process(running_vm, ROOT, late.value.pid)
