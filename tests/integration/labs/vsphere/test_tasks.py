"""The task waiter: progress while tasks run, failures in words, deadlines that cancel."""

from __future__ import annotations

import pytest

from labs.vsphere import DeadlineExceeded, TaskFailed

from .conftest import ESXI, unique

pytestmark = pytest.mark.integration


def test_progress_is_reported_while_a_task_runs(workspace, vcsim, vc):
    seen: list[tuple[int, str | None]] = []

    with vcsim.rules(task_durations={"CloneVM_Task": "1500ms"}):
        moref = workspace.clone(ESXI, on_progress=lambda percent, text: seen.append((percent, text)))

    percents = [percent for percent, _ in seen]
    assert all(0 <= p <= 100 for p in percents)
    assert any(0 < p < 100 for p in percents), percents  # seen while running, not only at the end
    assert percents == sorted(percents)  # never goes back
    assert percents[-1] == 100
    assert len(set(percents)) == len(percents)  # called on changes only
    assert vc.read("vm", moref, "name")["name"].startswith("vm-")


def test_a_failed_task_raises_task_failed_with_the_reason(workspace, vcsim, vc):
    name = unique("FAIL")

    with vcsim.rules(fail=["CloneVM_Task:FAIL"]), pytest.raises(TaskFailed) as caught:
        workspace.clone(ESXI, name=name)

    error = caught.value
    assert "injected failure for CloneVM_Task" in error.reason
    assert error.reason in str(error)
    assert "types." not in str(error)
    assert str(error).startswith(f"Could not make clone '{name}'")
    assert vc.read("task", error.task, "info.state")["info.state"] == "error"
    assert name not in vc.child_names(workspace.folder)


def test_a_deadline_cancels_a_hung_task(workspace, vcsim, vc):
    with vcsim.rules(hang=["CloneVM_Task"]), pytest.raises(DeadlineExceeded) as caught:
        workspace.clone(ESXI, deadline=1)

    error = caught.value
    assert error.cancelled is True
    assert "within 1 s" in str(error) and "cancelled" in str(error)
    info = vc.read("task", error.task, "info.state", "info.error")
    assert info["info.state"] == "error"
    assert type(info["info.error"]).__name__.endswith("RequestCanceled")
    assert vc.child_names(workspace.folder) == []


def test_a_deadline_on_a_task_that_cannot_be_cancelled(workspace, vcsim, vc):
    progress: list[int] = []

    with vcsim.rules(task_durations={"CloneVM_Task": "3s"}), pytest.raises(DeadlineExceeded) as caught:
        workspace.clone(ESXI, deadline=1, on_progress=lambda percent, _: progress.append(percent))

    assert caught.value.cancelled is False
    assert "continues in vCenter" in str(caught.value)
    assert vc.read("task", caught.value.task, "info.state")["info.state"] == "running"
    assert progress and max(progress) < 100


def test_a_callback_that_raises_cancels_the_task(workspace, vcsim, vc, client):
    class UserCancelled(Exception):
        pass

    tasks_before = {t._moId for t in vc.content.taskManager.recentTask}

    def cancel(percent, _):
        raise UserCancelled

    with vcsim.rules(hang=["CloneVM_Task"]), pytest.raises(UserCancelled):
        workspace.clone(ESXI, on_progress=cancel)

    [task] = [t._moId for t in vc.content.taskManager.recentTask if t._moId not in tasks_before]
    info = vc.read("task", task, "info.state", "info.error")
    assert info["info.state"] == "error"
    assert type(info["info.error"]).__name__.endswith("RequestCanceled")
    assert client.vm_info(ESXI).name == "esxi-01"  # the session is fine afterwards


def test_vcenter_restarting_between_two_polls_says_the_task_was_lost(monkeypatch):
    """A restart the waiter does not see as a broken connection: its next poll reconnects
    and logs in again, and vCenter no longer knows the waiter's collector or the task."""
    from labs import vsphere
    from labs.vsphere import Unreachable, tasks
    from portal import simulator

    from .conftest import CLUSTER_PATH, endpoint_for

    server = simulator.start(args=["-demo", "-task-duration", "CloneVM_Task=3s"])
    polls = 0
    original = tasks._Watch.poll

    def poll(self, seconds):
        nonlocal polls
        polls += 1
        if polls == 2:
            server.restart()  # back up before the poll is sent
        return original(self, seconds)

    monkeypatch.setattr(tasks._Watch, "poll", poll)
    try:
        client = vsphere.get_client(endpoint_for(server))
        with pytest.raises(Unreachable) as caught:
            client.clone_vm(ESXI, name=unique("lost"), folder="/DC0/vm", pool=f"{CLUSTER_PATH}/Resources")
    finally:
        vsphere.close_all(endpoint_for(server))
        server.stop()
    assert "lost track of the task" in str(caught.value) and "restarted" in str(caught.value)
    assert str(caught.value).startswith("Could not make clone ")
