"""labs/reaper.py: operations whose worker died are resumed, then abandoned; lost queue
messages are sent again; healthy operations are left alone."""

import time
from datetime import timedelta

import pytest
from django.utils import timezone

from labs import capacity, dispatch, reaper
from labs.jobs import execute, runner
from labs.jobs.runner import Job
from labs.models import Operation
from tests.factories import AdminFactory, EndpointFactory

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def sent(monkeypatch):
    calls: list[tuple[int, dict]] = []
    monkeypatch.setattr(reaper, "send_operation", lambda operation_id, **kwargs: calls.append((operation_id, kwargs)))
    return calls


def _op(**fields) -> Operation:
    fields = {"kind": Operation.Kind.ENDPOINT_CHECK, "endpoint": EndpointFactory(), **fields}
    return Operation.objects.create(actor=AdminFactory(), **fields)


def _stale(settings):
    return timezone.now() - timedelta(seconds=settings.NESTLAB_OPERATION_HEARTBEAT_TIMEOUT + 30)


def test_a_running_operation_without_a_heartbeat_is_sent_again(sent, settings):
    dead = _op(state=Operation.State.RUNNING, heartbeat_at=_stale(settings), attempts=1)
    alive = _op(state=Operation.State.RUNNING, heartbeat_at=timezone.now(), attempts=1)
    result = reaper.reap()
    assert result.resumed == [dead.pk]
    assert sent == [(dead.pk, {})]
    assert alive.pk not in result.resumed + result.abandoned


def test_after_too_many_dead_workers_the_operation_is_abandoned_in_words(sent, settings):
    dead = _op(state=Operation.State.RUNNING, heartbeat_at=_stale(settings), attempts=reaper.MAX_ATTEMPTS)
    result = reaper.reap()
    assert result.abandoned == [dead.pk]
    [(operation_id, kwargs)] = sent
    assert operation_id == dead.pk and "stopped 2 times" in kwargs["abandon_reason"]


def test_a_queued_operation_whose_message_was_lost_is_sent_again(sent):
    old = _op(created_at=timezone.now() - reaper.QUEUED_GRACE - timedelta(minutes=1))
    new = _op()
    result = reaper.reap()
    assert result.resent == [old.pk]
    assert new.pk not in result.resent


def test_abandoning_runs_the_undo_and_ends_failed(settings, monkeypatch):
    undone: list[str] = []

    class Undoable(Job):
        kind = "test_undoable"

        def run(self):
            raise AssertionError("an abandoned operation must not run its steps again")

        def on_failure(self, reason):
            undone.append(reason)

    runner.register(Undoable)
    try:
        dead = _op(state=Operation.State.RUNNING, heartbeat_at=_stale(settings), attempts=2)
        Operation.objects.filter(pk=dead.pk).update(kind="test_undoable")
        execute(dead.pk, abandon_reason="The worker stopped 2 times.")
    finally:
        runner.REGISTRY.pop("test_undoable", None)
    dead.refresh_from_db()
    assert dead.state == Operation.State.FAILED
    assert dead.error == "The worker stopped 2 times."
    assert undone == ["The worker stopped 2 times."]
    assert dead.attempts == 3


def test_a_queued_operation_is_not_sent_again_every_minute(sent):
    old = _op(created_at=timezone.now() - reaper.QUEUED_GRACE - timedelta(minutes=1))
    assert reaper.reap().resent == [old.pk]
    assert reaper.reap().resent == [], "sent again only after another grace period"
    Operation.objects.filter(pk=old.pk).update(heartbeat_at=timezone.now() - reaper.QUEUED_GRACE - timedelta(seconds=1))
    assert reaper.reap().resent == [old.pk]


@pytest.fixture
def messages(monkeypatch):
    """The operations sent to a worker (the broker is not asked)."""
    calls: list[int] = []

    def send_task(name, args, **kwargs):
        if name == dispatch.RUN_OPERATION:
            calls.append(args[0])

    monkeypatch.setattr(dispatch.current_app, "send_task", send_task)
    return calls


def test_builds_waiting_in_line_are_not_lost_and_sending_them_again_keeps_their_place(messages):
    """The reaper's resend of a build waiting its turn keeps it in line and wakes no worker;
    one admitted whose message was lost goes to a builder; a dead build's room comes back."""
    endpoint = EndpointFactory(concurrency_limit=1)
    connection = capacity._redis()
    holders = capacity._keys(endpoint.pk)[0]
    connection.delete(*capacity._keys(endpoint.pk), *capacity._build_keys(endpoint.pk))
    # Someone else's clones: the slot and a place in its line, two rounds of the limit.
    connection.zadd(holders, {"other-worker": time.time() + 3600, "another-worker": time.time() + 3600})
    old = timezone.now() - reaper.QUEUED_GRACE - timedelta(minutes=1)
    waiting = [_op(kind=Operation.Kind.PROVISION, endpoint=endpoint, created_at=old) for _ in range(2)]
    for operation in waiting:
        dispatch.send_operation(operation.pk)
    assert capacity.build_line(endpoint.pk) == [operation.pk for operation in waiting]
    assert messages == []

    # Five minutes on, the reaper sends them again: same places, still no worker taken.
    Operation.objects.filter(pk__in=[operation.pk for operation in waiting]).update(heartbeat_at=old)
    result = reaper.reap()
    assert result.resent == sorted(operation.pk for operation in waiting)
    assert capacity.build_line(endpoint.pk) == [operation.pk for operation in waiting]
    assert messages == []
    steps = [Operation.objects.get(pk=operation.pk).step_label for operation in waiting]
    assert steps[0].startswith("Waiting for vCenter capacity: yours is next")
    assert steps[1].startswith("Waiting for vCenter capacity: 1 build ahead of yours")

    # The other clones' worker died: their leases run out, and the reaper's minute admits
    # the first build (and the second: one round running, one waiting in a builder).
    connection.zadd(holders, {"other-worker": time.time() - 1, "another-worker": time.time() - 1})
    reaper.reap()
    assert messages == [operation.pk for operation in waiting]
    assert capacity.build_line(endpoint.pk) == []

    # The first one's message is lost: five minutes later the reaper sends it to a builder again.
    Operation.objects.filter(pk=waiting[0].pk).update(heartbeat_at=old)
    assert reaper.reap().resent == [waiting[0].pk]
    assert messages[-1] == waiting[0].pk
    connection.delete(*capacity._keys(endpoint.pk), *capacity._build_keys(endpoint.pk))
