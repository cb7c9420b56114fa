"""labs/watcher.py against a simulator of the test's own: the watcher, always connected, tells
placement at once when its vCenter cannot be reached and when it answers again, so new labs go
elsewhere before any student's build has failed there."""

from __future__ import annotations

import time

import pytest

from labs import placement
from labs.watcher import EndpointWatcher
from portal import simulator
from tests.factories import simulator_endpoint

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def own_sim():
    server = simulator.start(args=["-demo"])
    yield server
    server.stop()


def _reason(endpoint_id):
    return placement._unreachable_reasons([endpoint_id]).get(endpoint_id)


def _wait(predicate, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return False


def test_a_vcenter_that_stops_answering_is_marked_unreachable_and_cleared_when_it_answers(own_sim):
    endpoint = simulator_endpoint(own_sim)
    placement.endpoint_reachable_mark(endpoint_id=endpoint.pk)  # Redis outlives the database: another test's mark
    watcher = EndpointWatcher(endpoint, max_wait=1)
    watcher.start()
    try:
        time.sleep(2)  # connected and following
        assert _reason(endpoint.pk) is None
        own_sim.stop()
        assert _wait(lambda: _reason(endpoint.pk) is not None, timeout=15), "not marked unreachable"
        assert "cannot talk to vCenter" in _reason(endpoint.pk)
        own_sim.start()
        assert _wait(lambda: _reason(endpoint.pk) is None, timeout=45), "still marked after vCenter answered"
    finally:
        watcher.stop()
        watcher.join(timeout=15)
    assert not watcher.is_alive()


def test_a_vcenter_that_hangs_is_marked_unreachable_within_seconds_of_its_longest_wait(own_sim, monkeypatch):
    """A stopped vCenter VM or a network partition answers nothing and refuses nothing: the
    watcher's own requests time out soon after the wait they asked for, not after the 120 s
    any other request may take (the stub tries a repeatable request twice, so about twice that)."""
    import os
    import signal

    from labs.vsphere import watch

    monkeypatch.setattr(watch, "HUNG_AFTER_SECONDS", 3)  # 25 in production: a big inventory's first answer is slow
    endpoint = simulator_endpoint(own_sim)
    placement.endpoint_reachable_mark(endpoint_id=endpoint.pk)
    watcher = EndpointWatcher(endpoint, max_wait=1)
    watcher.start()
    try:
        time.sleep(2)
        assert _reason(endpoint.pk) is None
        os.kill(own_sim.process.pid, signal.SIGSTOP)
        try:
            assert _wait(lambda: _reason(endpoint.pk) is not None, timeout=2 * (1 + 3) + 15), (
                "a hung vCenter not marked unreachable"
            )
            assert "did not answer in time" in _reason(endpoint.pk)
        finally:
            os.kill(own_sim.process.pid, signal.SIGCONT)
        assert _wait(lambda: _reason(endpoint.pk) is None, timeout=45), "still marked after vCenter answered"
    finally:
        watcher.stop()
        watcher.join(timeout=40)
    assert not watcher.is_alive()
