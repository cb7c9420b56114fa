"""The operation runner (labs/jobs/runner.py): claim, steps and progress, heartbeat, outcome."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from django.utils import timezone

from labs.jobs import runner
from labs.jobs.runner import Job, OperationFailed, execute
from labs.models import Operation
from tests.factories import AdminFactory, EndpointFactory

pytestmark = pytest.mark.django_db(transaction=True)


class Recorder:
    """Collects every pushed operation state, as a browser would receive them."""

    def __init__(self) -> None:
        self.states: list[tuple[str, int, str]] = []

    def __call__(self, operation: Operation) -> None:
        self.states.append((operation.state, operation.progress, operation.step))


@pytest.fixture
def pushes(monkeypatch):
    recorder = Recorder()
    monkeypatch.setattr(runner.realtime, "operation_changed", recorder)
    monkeypatch.setattr(runner, "PROGRESS_WRITE_INTERVAL", 0.0)
    return recorder


@pytest.fixture
def job_kind():
    """Register a job class for one test under a kind of its own, and unregister it after."""
    registered: list[str] = []

    def register(job_class: type[Job]) -> str:
        runner.register(job_class)
        registered.append(job_class.kind)
        return job_class.kind

    yield register
    for kind in registered:
        runner.REGISTRY.pop(kind, None)


def _operation(kind: str, **fields) -> Operation:
    return Operation.objects.create(kind=kind, endpoint=EndpointFactory(), actor=AdminFactory(), **fields)


def test_steps_map_their_own_progress_into_the_whole(pushes, job_kind):
    class TwoSteps(Job):
        kind = "test_two_steps"

        def run(self):
            with self.context.step("Cloning", share=40) as progress:
                progress(50)
                progress(100)
            with self.context.step("Powering on", share=60) as progress:
                progress(50)
            self.context.result["made"] = 2

    operation = _operation(job_kind(TwoSteps))
    execute(operation.pk)

    assert ("running", 0, "Cloning") in pushes.states
    assert ("running", 20, "Cloning") in pushes.states
    assert ("running", 40, "Powering on") in pushes.states
    assert ("running", 70, "Powering on") in pushes.states
    assert pushes.states[-1] == ("succeeded", 100, "Done")
    progress_seen = [progress for _, progress, _ in pushes.states]
    assert progress_seen == sorted(progress_seen), "progress never goes backwards"

    operation.refresh_from_db()
    assert operation.state == Operation.State.SUCCEEDED
    assert operation.result == {"made": 2}
    assert operation.started_at <= operation.finished_at
    assert operation.heartbeat_at is not None
    assert operation.seq == len(pushes.states)


def test_failure_runs_the_undo_hook_and_records_the_reason(pushes, job_kind):
    undone: list[str] = []

    class FailsHalfway(Job):
        kind = "test_fails_halfway"

        def run(self):
            with self.context.step("Cloning esxi-01", share=50):
                pass
            with self.context.step("Cloning esxi-02", share=50):
                raise OperationFailed("esxi-02 could not be cloned: the datastore is full.")

        def on_failure(self, reason):
            undone.append(reason)

    operation = _operation(job_kind(FailsHalfway))
    execute(operation.pk)

    operation.refresh_from_db()
    assert operation.state == Operation.State.FAILED
    assert operation.error == "esxi-02 could not be cloned: the datastore is full."
    assert operation.step == "Cloning esxi-02"
    assert operation.progress == 50
    assert undone == [operation.error]


def test_a_failing_clean_up_is_recorded_and_the_job_told(pushes, job_kind):
    told: list[str] = []

    class UndoFails(Job):
        kind = "test_undo_fails"

        def run(self):
            raise OperationFailed("vCenter went away.")

        def on_failure(self, reason):
            raise OSError("still away")

        def on_cleanup_failed(self, reason):
            told.append(reason)

    operation = _operation(job_kind(UndoFails))
    execute(operation.pk)
    operation.refresh_from_db()
    assert operation.state == Operation.State.FAILED
    assert operation.error.startswith("vCenter went away. Cleaning up afterwards failed too")
    assert told == [operation.error]


def test_a_crash_fails_the_operation_with_words_and_logs_the_traceback(pushes, job_kind, caplog):
    class Crashes(Job):
        kind = "test_crashes"

        def run(self):
            raise KeyError("boom")

    operation = _operation(job_kind(Crashes))
    execute(operation.pk)

    operation.refresh_from_db()
    assert operation.state == Operation.State.FAILED
    assert f"internal error while running this operation (#{operation.pk})" in operation.error
    assert "KeyError" not in operation.error
    assert any("KeyError" in (record.exc_text or "") for record in caplog.records if record.exc_info) or any(
        record.exc_info and record.exc_info[0] is KeyError for record in caplog.records
    )


def test_a_duplicate_delivery_runs_the_operation_once(pushes, job_kind):
    runs: list[int] = []

    class Counts(Job):
        kind = "test_counts"

        def run(self):
            runs.append(1)

    operation = _operation(job_kind(Counts))
    execute(operation.pk)
    execute(operation.pk)
    assert runs == [1]


def test_a_running_operation_whose_worker_died_is_claimed_again(pushes, job_kind, settings):
    runs: list[int] = []

    class Counts(Job):
        kind = "test_resumes"

        def run(self):
            runs.append(1)

    kind = job_kind(Counts)
    stale = timezone.now() - timedelta(seconds=settings.NESTLAB_OPERATION_HEARTBEAT_TIMEOUT + 5)
    dead = _operation(kind, state=Operation.State.RUNNING, heartbeat_at=stale, started_at=stale)
    alive = _operation(kind, state=Operation.State.RUNNING, heartbeat_at=timezone.now())

    execute(dead.pk)
    execute(alive.pk)

    dead.refresh_from_db()
    alive.refresh_from_db()
    assert runs == [1]
    assert dead.state == Operation.State.SUCCEEDED
    assert dead.started_at == stale, "the first start time is kept"
    assert alive.state == Operation.State.RUNNING


def test_cancel_requested_before_start_ends_cancelled_without_running(pushes, job_kind):
    runs: list[int] = []

    class Counts(Job):
        kind = "test_cancel_first"

        def run(self):
            runs.append(1)

    operation = _operation(job_kind(Counts), cancel_requested=True)
    execute(operation.pk)
    operation.refresh_from_db()
    assert runs == []
    assert operation.state == Operation.State.CANCELLED


def test_cancel_takes_effect_between_steps(pushes, job_kind):
    class Cancelled(Job):
        kind = "test_cancel_between"

        def run(self):
            with self.context.step("First", share=50):
                Operation.objects.filter(pk=self.context.operation.pk).update(cancel_requested=True)
            with self.context.step("Second", share=50):
                raise AssertionError("the second step must not start")

    operation = _operation(job_kind(Cancelled))
    execute(operation.pk)
    operation.refresh_from_db()
    assert operation.state == Operation.State.CANCELLED
    assert operation.step == "First"
    assert operation.error == "Cancelled on request."


def test_heartbeat_beats_while_a_step_waits(pushes, job_kind, monkeypatch):
    monkeypatch.setattr(runner, "HEARTBEAT_INTERVAL", 0.05)
    beats: list = []

    class Waits(Job):
        kind = "test_waits"

        def run(self):
            with self.context.step("Waiting on vCenter", share=100):
                first = Operation.objects.get(pk=self.context.operation.pk).heartbeat_at
                time.sleep(0.4)
                beats.append((first, Operation.objects.get(pk=self.context.operation.pk).heartbeat_at))

    operation = _operation(job_kind(Waits))
    execute(operation.pk)
    ((first, later),) = beats
    assert later > first
