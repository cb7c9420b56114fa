"""core/ws_limit.py against the real Redis: the limit holds under a race, a place whose
process died frees itself, an open socket keeps its place by renewing it."""

from __future__ import annotations

import asyncio
import uuid

import pytest
import redis
from django.conf import settings

from core import ws_limit
from core.ws_limit import SocketSlot

pytestmark = pytest.mark.integration


@pytest.fixture
def user_id():
    """A person nobody else in the suite uses, and no leftovers in Redis."""
    person = 10_000_000 + uuid.uuid4().int % 1_000_000
    yield person
    redis.Redis.from_url(settings.REDIS_URL).delete(ws_limit.user_key(person))


def _run(coroutine):
    return asyncio.new_event_loop().run_until_complete(coroutine)


def test_twenty_sockets_opening_at_once_get_exactly_the_limits_places(user_id):
    async def race():
        slots = [SocketSlot(user_id=user_id, socket_id=f"socket-{n}", limit=5) for n in range(20)]
        admitted = await asyncio.gather(*(slot.claim() for slot in slots))
        count = await ws_limit.open_sockets(user_id)
        for slot in slots:
            await slot.release()
        return admitted, count, await ws_limit.open_sockets(user_id)

    admitted, open_during, open_after = _run(race())
    assert sum(admitted) == 5 and open_during == 5 and open_after == 0


def test_a_place_whose_process_died_frees_itself(user_id, monkeypatch):
    monkeypatch.setattr(ws_limit, "CLAIM_SECONDS", 1)

    async def died_then_another():
        dead = SocketSlot(user_id=user_id, socket_id="dead", limit=1)
        assert await dead.claim()
        dead._renewer.cancel()  # the process is gone: no renewal, no release
        refused = await SocketSlot(user_id=user_id, socket_id="early", limit=1).claim()
        await asyncio.sleep(1.2)
        late = SocketSlot(user_id=user_id, socket_id="late", limit=1)
        return refused, await late.claim()

    refused, admitted = _run(died_then_another())
    assert (refused, admitted) == (False, True)


def test_an_open_socket_keeps_its_place_by_renewing_it(user_id, monkeypatch):
    monkeypatch.setattr(ws_limit, "CLAIM_SECONDS", 1)
    monkeypatch.setattr(ws_limit, "RENEW_SECONDS", 0.3)

    async def open_for_two_seconds():
        alive = SocketSlot(user_id=user_id, socket_id="alive", limit=1)
        assert await alive.claim()
        await asyncio.sleep(2)
        other = await SocketSlot(user_id=user_id, socket_id="other", limit=1).claim()
        await alive.release()
        return other

    assert _run(open_for_two_seconds()) is False
