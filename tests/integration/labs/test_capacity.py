"""labs/capacity.py: the per-endpoint vCenter slots, on the test run's real Redis."""

from __future__ import annotations

import contextlib
import itertools
import threading
import time

import pytest
import redis
from django.conf import settings

from core.errors import ServiceUnavailable
from labs import capacity
from portal.simulator import free_port

_endpoint_ids = itertools.count(int(time.time() * 1000) % 10**9)


@pytest.fixture
def endpoint_id():
    """An endpoint id no other test (or earlier run on this Redis) has used."""
    endpoint_id = next(_endpoint_ids)
    yield endpoint_id
    redis.Redis.from_url(settings.REDIS_URL).delete(
        *capacity._keys(endpoint_id),
        *capacity._keys(endpoint_id, capacity.GUEST_OPERATIONS),
        *capacity._build_keys(endpoint_id),
    )


def test_never_more_holders_than_the_limit_and_everyone_gets_a_turn(endpoint_id):
    limit, workers = 3, 12
    lock = threading.Lock()
    holding, most, done = 0, 0, []

    def work(number: int) -> None:
        nonlocal holding, most
        with capacity.vcenter_slot(endpoint_id=endpoint_id, limit=limit):
            with lock:
                holding += 1
                most = max(most, holding)
            time.sleep(0.15)
            with lock:
                holding -= 1
        done.append(number)

    threads = [threading.Thread(target=work, args=(number,)) for number in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(done) == list(range(workers))
    assert most == limit
    assert capacity.in_use(endpoint_id) == (0, 0)


def test_first_come_first_served_with_each_waiter_told_how_many_are_ahead(endpoint_id):
    order: list[str] = []
    heard: dict[str, list[int]] = {"first": [], "second": []}
    release = threading.Event()

    def holder() -> None:
        with capacity.vcenter_slot(endpoint_id=endpoint_id, limit=1):
            order.append("holder")
            release.wait(10)

    def waiter(name: str) -> None:
        with capacity.vcenter_slot(endpoint_id=endpoint_id, limit=1, on_wait=heard[name].append):
            order.append(name)

    threads = [threading.Thread(target=holder)]
    threads[0].start()
    _wait_until(lambda: capacity.in_use(endpoint_id) == (1, 0))
    for name in ("first", "second"):
        threads.append(threading.Thread(target=waiter, args=(name,)))
        threads[-1].start()
        _wait_until(lambda name=name: heard[name])  # in line before the next one comes
    assert capacity.in_use(endpoint_id) == (1, 2)
    release.set()
    for thread in threads:
        thread.join(timeout=10)
    assert order == ["holder", "first", "second"]
    assert heard["first"][0] == 0  # next in line
    assert heard["second"][0] == 1  # one ahead of it


def test_a_dead_workers_slot_frees_itself_when_its_lease_runs_out(endpoint_id, monkeypatch):
    """A worker killed while holding a slot never releases it; its lease does."""
    monkeypatch.setattr(capacity, "LEASE_SECONDS", 1)
    monkeypatch.setattr(capacity, "RENEW_EVERY", 3600)  # the "dead" holder never renews
    connection = redis.Redis.from_url(settings.REDIS_URL)
    holders = capacity._keys(endpoint_id)[0]
    connection.zadd(holders, {"killed-worker": time.time() + 1})
    started = time.monotonic()
    with capacity.vcenter_slot(endpoint_id=endpoint_id, limit=1):
        waited = time.monotonic() - started
    assert 0.5 < waited < 5
    assert connection.zscore(holders, "killed-worker") is None


def test_a_waiter_that_stops_polling_leaves_the_line(endpoint_id, monkeypatch):
    """A worker killed while waiting must not block the line for those behind it."""
    monkeypatch.setattr(capacity, "WAITER_STALE_SECONDS", 1)
    connection = redis.Redis.from_url(settings.REDIS_URL)
    _, waiters, seen = capacity._keys(endpoint_id)
    now = time.time()
    connection.zadd(waiters, {"killed-waiter": now - 5})
    connection.zadd(seen, {"killed-waiter": now - 5})
    with capacity.vcenter_slot(endpoint_id=endpoint_id, limit=1):
        assert connection.zscore(waiters, "killed-waiter") is None
        assert capacity.in_use(endpoint_id) == (1, 0)


def test_an_error_while_waiting_takes_the_waiter_out_of_the_line(endpoint_id):
    release = threading.Event()
    holding = threading.Thread(target=lambda: _hold(endpoint_id, release))
    holding.start()
    _wait_until(lambda: capacity.in_use(endpoint_id) == (1, 0))

    def give_up(ahead: int) -> None:
        raise RuntimeError("cancelled")

    waiting = capacity.vcenter_slot(endpoint_id=endpoint_id, limit=1, on_wait=give_up)
    with pytest.raises(RuntimeError, match="cancelled"), waiting:
        pass
    assert capacity.in_use(endpoint_id) == (1, 0)
    release.set()
    holding.join(timeout=10)
    assert capacity.in_use(endpoint_id) == (0, 0)


def test_guest_operations_have_a_line_of_their_own(endpoint_id):
    guest = capacity.GUEST_OPERATIONS
    with capacity.vcenter_slot(endpoint_id=endpoint_id, limit=1, line=guest):
        assert capacity.in_use(endpoint_id, line=guest) == (1, 0)
        assert capacity.in_use(endpoint_id) == (0, 0)
        with capacity.vcenter_slot(endpoint_id=endpoint_id, limit=1):  # a clone does not wait for a check
            assert capacity.in_use(endpoint_id) == (1, 0)
    assert capacity.in_use(endpoint_id, line=guest) == (0, 0)


def test_redis_unreachable_is_said_in_words():
    unreachable = redis.Redis(host="127.0.0.1", port=free_port(), socket_connect_timeout=1)
    slot = capacity.vcenter_slot(endpoint_id=1, limit=1, client=unreachable)
    with pytest.raises(ServiceUnavailable, match="cannot reach Redis"), slot:
        pass


def test_a_dead_runs_slots_are_freed_for_its_resumed_run(endpoint_id):
    with contextlib.ExitStack() as dead_run:
        # The dead run: two slots taken, never given back (its worker was SIGKILLed).
        for _ in range(2):
            dead_run.enter_context(capacity.vcenter_slot(endpoint_id=endpoint_id, limit=3, owner="operation-7"))
        # Another operation's live slot, under an owner that starts with the same characters.
        dead_run.enter_context(capacity.vcenter_slot(endpoint_id=endpoint_id, limit=3, owner="operation-70"))
        assert capacity.in_use(endpoint_id) == (3, 0)  # full: the resumed run would wait

        assert capacity.release_owner(endpoint_id, "operation-7") == 2
        assert capacity.in_use(endpoint_id) == (1, 0), "operation-70 keeps its slot"
        with capacity.vcenter_slot(endpoint_id=endpoint_id, limit=3, owner="operation-7"):
            assert capacity.in_use(endpoint_id) == (2, 0)


def test_a_dead_checks_guest_operation_slot_is_freed_on_its_line_only(endpoint_id):
    guest = capacity.GUEST_OPERATIONS
    with contextlib.ExitStack() as dead_run:
        dead_run.enter_context(capacity.vcenter_slot(endpoint_id=endpoint_id, limit=1, owner="operation-9", line=guest))
        dead_run.enter_context(capacity.vcenter_slot(endpoint_id=endpoint_id, limit=1, owner="operation-9"))
        assert capacity.release_owner(endpoint_id, "operation-9", line=guest) == 1
        assert capacity.in_use(endpoint_id, line=guest) == (0, 0)
        assert capacity.in_use(endpoint_id) == (1, 0), "the clones line is another line"


def test_release_needs_an_owner(endpoint_id):
    with pytest.raises(ValueError):
        capacity.release_owner(endpoint_id, "")


def _hold(endpoint_id: int, release: threading.Event) -> None:
    with capacity.vcenter_slot(endpoint_id=endpoint_id, limit=1):
        release.wait(10)


def _wait_until(predicate, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


class _CountingRedis(redis.Redis):
    """A client that counts the commands it sends (a waiter's cost in Redis)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.commands: list[str] = []

    def execute_command(self, *args, **options):
        self.commands.append(str(args[0]))
        return super().execute_command(*args, **options)


def test_a_waiter_sleeps_until_a_holder_leaves_and_is_woken_by_it(endpoint_id, monkeypatch):
    """No polling: while the slot is held the waiter sends nothing; the release wakes it."""
    # With no safety timeout to fall back on, only the release's push can wake the waiter.
    monkeypatch.setattr(capacity, "WAKE_TIMEOUT_SECONDS", 0)
    release = threading.Event()
    holding = threading.Thread(target=lambda: _hold(endpoint_id, release))
    holding.start()
    _wait_until(lambda: capacity.in_use(endpoint_id) == (1, 0))
    client = _CountingRedis.from_url(settings.REDIS_URL)
    got = threading.Event()

    def waiter() -> None:
        with capacity.vcenter_slot(endpoint_id=endpoint_id, limit=1, client=client):
            got.set()

    waiting = threading.Thread(target=waiter, daemon=True)
    waiting.start()
    _wait_until(lambda: capacity.in_use(endpoint_id) == (1, 1))
    asleep = list(client.commands)
    time.sleep(1)  # ten polls' worth at the old 100 ms
    assert client.commands == asleep, "the waiter asked Redis again while nothing changed"
    assert not got.is_set()

    release.set()
    assert got.wait(10), "the release did not wake the waiter"
    waiting.join(timeout=10)
    holding.join(timeout=10)
    # It slept once, in Redis, for the whole second and more, and the push ended the sleep.
    assert client.commands.count("BLPOP") == 1
    assert capacity.in_use(endpoint_id) == (0, 0)


def test_a_slot_freed_by_a_lease_running_out_wakes_the_next_waiter(endpoint_id, monkeypatch):
    """The sweep of a dead holder's lease, run by whoever asks next, wakes those it lets through."""
    monkeypatch.setattr(capacity, "WAKE_TIMEOUT_SECONDS", 0)
    connection = redis.Redis.from_url(settings.REDIS_URL)
    holders = capacity._keys(endpoint_id)[0]
    connection.zadd(holders, {"killed-worker": time.time() + 1})
    got = threading.Event()

    def waiter() -> None:
        with capacity.vcenter_slot(endpoint_id=endpoint_id, limit=1):
            got.set()

    first = threading.Thread(target=waiter, daemon=True)
    first.start()
    _wait_until(lambda: capacity.in_use(endpoint_id) == (1, 1))
    time.sleep(1.2)  # the dead holder's lease runs out; nobody has released anything
    # A second waiter's arrival sweeps the lease and wakes the first, who is ahead of it.
    second = threading.Thread(target=waiter, daemon=True)
    second.start()
    first.join(timeout=10)
    second.join(timeout=10)
    assert not first.is_alive() and not second.is_alive()
