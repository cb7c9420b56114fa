"""Power actions, and InvalidState in words when the VM is already there."""

from __future__ import annotations

import pytest

from labs.vsphere import InvalidArgument, InvalidState

from .conftest import ROUTER

pytestmark = pytest.mark.integration


def power(vc, moref):
    return vc.read("vm", moref, "runtime.powerState")["runtime.powerState"]


@pytest.fixture
def vm(workspace):
    return workspace.clone(ROUTER, name="router")


def test_power_on_off_and_reset(client, vm, vc):
    client.power_on(vm)
    assert power(vc, vm) == "poweredOn"
    assert client.power_state(vm) == "poweredOn"

    client.reset(vm)
    assert power(vc, vm) == "poweredOn"

    client.power_off(vm)
    assert power(vc, vm) == "poweredOff"


def test_power_on_when_on(client, vm):
    client.power_on(vm)

    with pytest.raises(InvalidState) as caught:
        client.power_on(vm)

    assert str(caught.value) == "VM 'router' is already powered on."


def test_power_off_when_off(client, vm):
    with pytest.raises(InvalidState) as caught:
        client.power_off(vm)
    assert str(caught.value) == "VM 'router' is already powered off."


def test_reset_and_shutdown_need_a_running_vm(client, vm):
    with pytest.raises(InvalidState) as caught:
        client.reset(vm)
    assert "is powered off; only a running VM can be reset" in str(caught.value)
    with pytest.raises(InvalidState):
        client.shutdown_guest(vm)


def test_guest_shutdown(client, vm, vc):
    client.power_on(vm)

    assert client.shutdown_guest(vm, timeout=5) is True
    assert power(vc, vm) == "poweredOff"


def test_guest_shutdown_falls_back_to_power_off(client, vm, vc, vcsim):
    client.power_on(vm)

    with vcsim.rules(fail=["ShutdownGuest"]):
        graceful = client.shutdown_guest(vm, timeout=5)

    assert graceful is False
    assert power(vc, vm) == "poweredOff"


def test_suspended_vm_powers_off(client, vm, vc):
    client.power_on(vm)
    vc.obj("vm", vm).SuspendVM_Task()
    assert power(vc, vm) == "suspended"

    client.power_off(vm)

    assert power(vc, vm) == "poweredOff"


def test_templates_have_no_power(client, vm, vc):
    vc.obj("vm", vm).MarkAsTemplate()

    with pytest.raises(InvalidArgument) as caught:
        client.power_on(vm)
    assert "is a template" in str(caught.value)
