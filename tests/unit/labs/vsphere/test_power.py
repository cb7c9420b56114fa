"""Guest shutdown's fallback, with the vCenter calls replaced by fakes."""

from __future__ import annotations

import pytest
from pyVmomi import vim

from labs.vsphere import power


class FakeVM:
    _moId = "vm-5"

    def __init__(self, shutdown_error=None):
        self.shutdown_error = shutdown_error
        self.calls = []

    def ShutdownGuest(self):
        self.calls.append("ShutdownGuest")
        if self.shutdown_error:
            raise self.shutdown_error

    def PowerOffVM_Task(self):
        self.calls.append("PowerOffVM_Task")
        return "task-1"


@pytest.fixture
def fakes(monkeypatch):
    state = {"power": "poweredOn", "reached": False, "waited": []}
    vm = FakeVM()
    monkeypatch.setattr(power, "_vm", lambda session, ref: (vm, "router", state["power"]))
    monkeypatch.setattr(power, "power_state", lambda session, ref: state["power"])

    def wait_for_value(session, obj, path, wanted, *, timeout):
        state["waited"].append((path, wanted, timeout))
        return state["reached"]

    monkeypatch.setattr(power, "wait_for_value", wait_for_value)
    monkeypatch.setattr(power, "wait_for_task", lambda session, task, **kwargs: state["waited"].append(task))
    return vm, state


def test_the_guest_shuts_down_in_time(fakes):
    vm, state = fakes
    state["reached"] = True

    assert power.shutdown_guest(None, "vm-5", timeout=30) is True
    assert vm.calls == ["ShutdownGuest"]
    assert state["waited"] == [("runtime.powerState", "poweredOff", 30)]


def test_a_guest_that_ignores_the_request_is_powered_off(fakes):
    vm, state = fakes

    assert power.shutdown_guest(None, "vm-5", timeout=2) is False
    assert vm.calls == ["ShutdownGuest", "PowerOffVM_Task"]
    assert state["waited"][-1] == "task-1"


def test_no_tools_means_power_off_at_once(fakes):
    vm, state = fakes
    vm.shutdown_error = vim.fault.ToolsUnavailable()

    assert power.shutdown_guest(None, "vm-5", timeout=60) is False
    assert vm.calls == ["ShutdownGuest", "PowerOffVM_Task"]
    assert state["waited"] == ["task-1"]  # no waiting for the guest


def test_a_vm_that_went_off_meanwhile_is_not_powered_off_again(fakes, monkeypatch):
    vm, state = fakes

    def went_off(*args, **kwargs):
        state["power"] = "poweredOff"
        return False

    monkeypatch.setattr(power, "wait_for_value", went_off)
    assert power.shutdown_guest(None, "vm-5", timeout=1) is False
    assert vm.calls == ["ShutdownGuest"]
