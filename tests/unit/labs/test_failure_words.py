"""labs/failure_words.py: a failure as a lab's student reads it, from the driver's own words."""

from __future__ import annotations

import pytest

from labs import failure_words
from labs.vsphere.errors import translate

UNREACHABLE = str(translate(ConnectionRefusedError(111, "Connection refused"), where="vc-a.internal.example.edu:443"))


def test_the_driver_names_the_host_and_port_the_student_does_not_read():
    assert "vc-a.internal.example.edu:443" in UNREACHABLE
    words = failure_words.for_students(f"Provisioning failed: {UNREACHABLE} Reset tries again.")
    assert words == (
        "The lab could not be built: the lab servers could not be reached. Try again later or ask your instructor."
    )


@pytest.mark.parametrize(
    ("stored", "said"),
    [
        ("Reset failed: Could not clone vm-42: the datastore 'ds-prod-7' is full.", "The reset did not finish"),
        ("Deleting failed: resource pool: the object resgroup-9 no longer exists.", "The lab could not be deleted"),
        ("The revert stopped part way: Cannot talk to vCenter at 10.0.0.5:443.", "The revert stopped part way"),
        ("Could not power on vm-42: the VM is powered on.", "It did not work"),
    ],
)
def test_what_happened_stays_the_details_go(stored, said):
    words = failure_words.for_students(stored)
    assert words.startswith(said + ": the lab servers ")
    for detail in ("vm-42", "ds-prod-7", "resgroup-9", "10.0.0.5", "443"):
        assert detail not in words


def test_the_portals_own_words_without_details_are_kept():
    assert failure_words.for_students("") == ""
    assert failure_words.for_students("Cancelled before it started.") == "Cancelled before it started."
    vanished = "esxi-01, router disappeared from vCenter. Reset rebuilds the lab."  # the lab's own roles
    assert failure_words.for_students(vanished) == vanished


@pytest.mark.parametrize(
    ("driver", "student"),
    [
        (
            "The ESXi host esx-07.internal:443 serving the console did not answer in 10 s.",
            "The ESXi host serving the console did not answer in 10 s.",
        ),
        (
            "Could not reach the ESXi host 10.1.2.3:443 serving the console: [Errno 111] Connect call failed.",
            "Could not reach the ESXi host serving the console.",
        ),
        (
            "The ESXi host esx-07.internal:443 ended the console: The virtual machine powered off.",
            "The ESXi host ended the console: The virtual machine powered off.",
        ),
        (
            "The console did not open: could not acquire a ticket: cannot talk to vCenter at vc.internal:443: "
            "it did not answer in time.",
            "The console did not open: could not acquire a ticket: cannot talk to vCenter: it did not answer in time.",
        ),
    ],
)
def test_a_consoles_end_keeps_what_happened_without_the_addresses(driver, student):
    assert failure_words.without_addresses(driver) == student
