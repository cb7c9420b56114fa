"""Guest operations without a vCenter: transfer URLs and process records (labs/vsphere/guest.py)."""

from __future__ import annotations

from datetime import UTC, datetime
from types import SimpleNamespace

from pyVmomi import vim

from labs.vsphere import guest
from labs.vsphere.connection import parse_url
from labs.vsphere.types import GuestCredentials

SESSION = SimpleNamespace(address=parse_url("https://vc.example.edu"))


def test_a_transfer_url_whose_host_is_a_star_goes_to_vcenters_host():
    # ESXi answers "https://*:443/guestFile?..." when the client talks to the host itself.
    assert guest._transfer_target(SESSION, "https://*:443/guestFile?id=1&token=ab") == (
        "https",
        "vc.example.edu",
        443,
        "/guestFile?id=1&token=ab",
    )
    assert guest._transfer_target(SESSION, "http://10.0.0.5:8080/guestFile?id=2") == (
        "http",
        "10.0.0.5",
        8080,
        "/guestFile?id=2",
    )


def test_a_process_has_an_exit_code_only_once_it_ended():
    started = datetime(2026, 1, 1, tzinfo=UTC)
    running = vim.vm.guest.ProcessManager.ProcessInfo(
        pid=4000, name="sleep", owner="root", cmdLine='"/bin/sleep" 30', startTime=started, exitCode=0
    )
    assert guest._process(running).running
    assert guest._process(running).exit_code is None
    ended = vim.vm.guest.ProcessManager.ProcessInfo(
        pid=4001, name="sh", owner="root", cmdLine="", startTime=started, endTime=started, exitCode=3
    )
    assert (guest._process(ended).running, guest._process(ended).exit_code) == (False, 3)


def test_the_guest_password_stays_out_of_repr():
    assert "hunter2" not in repr(GuestCredentials(username="root", password="hunter2"))
