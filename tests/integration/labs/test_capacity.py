"""labs/capacity.py on Redis: slots of a run known dead are freed at once."""

from __future__ import annotations

import contextlib
import uuid

import pytest

from labs import capacity

pytestmark = pytest.mark.integration


@pytest.fixture
def endpoint_id():
    """An endpoint id of this test's own (capacity keys live in Redis, not the test database)."""
    number = uuid.uuid4().int % 10**9
    yield number
    capacity._redis().delete(*capacity._keys(number))


def test_a_dead_runs_slots_are_freed_for_its_resumed_run(endpoint_id):
    with contextlib.ExitStack() as dead_run:
        # The dead run: two slots taken, never given back (its worker was SIGKILLed).
        for _ in range(2):
            dead_run.enter_context(capacity.vcenter_slot(endpoint_id=endpoint_id, limit=3, owner="operation-7"))
        # Another operation's live slot, under an owner that starts with the same characters.
        dead_run.enter_context(capacity.vcenter_slot(endpoint_id=endpoint_id, limit=3, owner="operation-70"))
        assert capacity.in_use(endpoint_id) == (3, 0)
        with (
            pytest.raises(capacity.CapacityTimeout),
            capacity.vcenter_slot(endpoint_id=endpoint_id, limit=3, owner="operation-7", timeout=0.3),
        ):
            pass

        assert capacity.release_owner(endpoint_id, "operation-7") == 2
        assert capacity.in_use(endpoint_id) == (1, 0), "operation-70 keeps its slot"
        with capacity.vcenter_slot(endpoint_id=endpoint_id, limit=3, owner="operation-7", timeout=0.3):
            assert capacity.in_use(endpoint_id) == (2, 0)


def test_release_needs_an_owner(endpoint_id):
    with pytest.raises(ValueError):
        capacity.release_owner(endpoint_id, "")
