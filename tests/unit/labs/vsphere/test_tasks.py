"""The task waiter's logic, against a scripted PropertyCollector (no vCenter)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from pyVmomi import vim, vmodl

from labs.vsphere import tasks
from labs.vsphere.errors import AlreadyExists, DeadlineExceeded, TaskFailed
from labs.vsphere.tasks import clamp_percent, wait_for_task


def update(version, **changes):
    change_set = [SimpleNamespace(name=f"info.{key}", val=value) for key, value in changes.items()]
    return SimpleNamespace(
        version=version, filterSet=[SimpleNamespace(objectSet=[SimpleNamespace(changeSet=change_set)])]
    )


class FakeCollector:
    def __init__(self, script):
        self.script = list(script)
        self.filters = []
        self.destroyed = False
        self.versions = []

    def CreateFilter(self, spec, partialUpdates):
        self.filters.append(spec)

    def WaitForUpdatesEx(self, version, options):
        self.versions.append(version)
        return self.script.pop(0) if self.script else None

    def DestroyPropertyCollector(self):
        self.destroyed = True


class CancelStub:
    """Stands for the SOAP stub behind the task: records CancelTask, scripts what follows."""

    def __init__(self, collector=None, on_cancel=()):
        self.cancelled = False
        self.collector = collector
        self.on_cancel = list(on_cancel)

    def InvokeMethod(self, mo, info, args):
        assert info.wsdlName == "CancelTask"
        self.cancelled = True
        self.collector.script.extend(self.on_cancel)


def fake_task(collector=None, on_cancel=()):
    stub = CancelStub(collector, on_cancel)
    task = vim.Task("task-9", stub)
    return task, stub


def session_with(collector):
    manager = SimpleNamespace(CreatePropertyCollector=lambda: collector)
    return SimpleNamespace(content=SimpleNamespace(propertyCollector=manager))


def test_success_reports_progress_changes_then_100_and_returns_the_moref():
    collector = FakeCollector(
        [
            update("1", state="running", progress=None, cancelable=False),
            update("2", progress=10),
            update("3", progress=10),
            update("4", progress=55, description=vmodl.LocalizableMessage(message="Copying disks")),
            update("5", state="success", progress=100, result=vim.VirtualMachine("vm-42")),
        ]
    )
    seen = []

    result = wait_for_task(
        session_with(collector), fake_task()[0], action="clone", on_progress=lambda *a: seen.append(a)
    )

    assert result == "vm-42"
    assert seen == [(10, None), (55, "Copying disks"), (100, "Copying disks")]
    assert collector.versions == ["", "1", "2", "3", "4"]
    assert collector.destroyed
    [spec] = collector.filters
    assert set(spec.propSet[0].pathSet) == {
        "info.state",
        "info.progress",
        "info.error",
        "info.result",
        "info.cancelable",
        "info.description",
    }


def test_a_task_that_already_finished():
    collector = FakeCollector([update("1", state="success", result=None)])

    assert wait_for_task(session_with(collector), fake_task()[0], action="power on") is None


def test_a_failed_task_raises_with_the_fault_in_words():
    collector = FakeCollector([update("1", state="error", error=vim.fault.DuplicateName(name="lab-1"))])

    with pytest.raises(TaskFailed) as caught:
        wait_for_task(session_with(collector), fake_task()[0], action="make clone 'lab-1'")

    error = caught.value
    assert str(error) == "Could not make clone 'lab-1': the name 'lab-1' is already in use."
    assert (error.reason, error.task, error.kind) == ("the name 'lab-1' is already in use", "task-9", AlreadyExists)
    assert collector.destroyed


def test_deadline_cancels_a_cancelable_task():
    collector = FakeCollector([update("1", state="running", progress=3, cancelable=True)])
    task, stub = fake_task(collector, on_cancel=[update("2", state="error", error=vmodl.fault.RequestCanceled())])

    with pytest.raises(DeadlineExceeded) as caught:
        wait_for_task(session_with(collector), task, action="clone", deadline=0)

    assert stub.cancelled
    assert caught.value.cancelled is True
    assert caught.value.task == "task-9"
    assert str(caught.value) == "Could not clone within 0 s; it was cancelled."
    assert collector.destroyed


def test_deadline_on_a_task_that_cannot_be_cancelled():
    collector = FakeCollector([update("1", state="running", progress=3, cancelable=False)])
    task, stub = fake_task(collector)

    with pytest.raises(DeadlineExceeded) as caught:
        wait_for_task(session_with(collector), task, action="clone", deadline=0)

    assert not stub.cancelled
    assert caught.value.cancelled is False
    assert "continues in vCenter" in str(caught.value)


def test_a_task_that_finishes_while_being_cancelled_is_a_success():
    collector = FakeCollector([update("1", state="running", cancelable=True)])
    task, _stub = fake_task(collector, on_cancel=[update("2", state="success", result=vim.VirtualMachine("vm-3"))])

    assert wait_for_task(session_with(collector), task, action="clone", deadline=0) == "vm-3"


def test_cancel_requested_but_not_done_within_the_grace(monkeypatch):
    monkeypatch.setattr(tasks, "CANCEL_GRACE_SECONDS", 0.05)
    collector = FakeCollector([update("1", state="running", cancelable=True)])
    task, stub = fake_task(collector)

    with pytest.raises(DeadlineExceeded) as caught:
        wait_for_task(session_with(collector), task, action="clone", deadline=0)

    assert stub.cancelled and caught.value.cancelled is False
    assert "cancellation was requested" in str(caught.value)


def test_an_exception_in_the_callback_cancels_the_task_and_propagates():
    collector = FakeCollector([update("1", state="running", progress=20, cancelable=True)])
    task, stub = fake_task(collector)

    def user_cancelled(*_):
        raise RuntimeError("cancelled by the user")

    with pytest.raises(RuntimeError):
        wait_for_task(session_with(collector), task, action="clone", on_progress=user_cancelled)
    assert stub.cancelled
    assert collector.destroyed


def test_an_exception_in_the_callback_of_a_task_that_cannot_be_cancelled():
    collector = FakeCollector([update("1", state="running", progress=20, cancelable=False)])
    task, stub = fake_task(collector)

    with pytest.raises(ZeroDivisionError):
        wait_for_task(session_with(collector), task, action="clone", on_progress=lambda *_: 1 / 0)
    assert not stub.cancelled
    assert collector.destroyed


@pytest.mark.parametrize(
    ("value", "expected"), [(-3, 0), (0, 0), (42, 42), (100, 100), (250, 100), (None, 0), ("7", 7)]
)
def test_clamp_percent(value, expected):
    assert clamp_percent(value) == expected
