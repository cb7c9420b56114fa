"""Channels group names and the one way to push a message to browsers.

Group names are built only here. Messages are sent after the database commit that
produced them, and a failed push (Redis down, a full channel) is logged and dropped:
it must never stall or fail a worker; clients resync from the database on reconnect.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import threading
from collections.abc import Iterable
from typing import Any

from channels.layers import get_channel_layer
from django.db import transaction

logger = logging.getLogger(__name__)


def lab_group(lab_id: int) -> str:
    return f"lab.{lab_id}"


def course_group(course_id: int) -> str:
    return f"course.{course_id}"


def user_group(user_id: int) -> str:
    return f"user.{user_id}"


def operation_group(operation_id: int) -> str:
    return f"operation.{operation_id}"


def publish(groups: Iterable[str], message: dict[str, Any]) -> None:
    """Send ``message`` to every group once the current transaction commits.

    The payload is round-tripped through JSON here, so a message that cannot be
    serialised fails where it is built (in tests), not in a consumer.
    """
    payload = json.loads(json.dumps(message))
    targets = list(groups)
    transaction.on_commit(lambda: _send(targets, payload))


# The internal event that makes consumers check their permission again (see access_changed).
ACCESS_CHANGED = "access.changed"


def access_changed(user_ids: Iterable[int]) -> None:
    """Tell every open WebSocket of these people to check again what they may see, once the
    current transaction commits: their access changed (e.g. removed from a course).

    An internal event: the consumers handle it themselves (re-check, then close with 4403 or
    send a new full state); it never reaches a browser, so it is not in docs/websocket.md.
    Best effort like a push: a consumer that misses it re-checks on the client's next resync.
    """
    targets = [user_group(user_id) for user_id in user_ids]
    if targets:
        transaction.on_commit(lambda: _deliver(targets, {"type": ACCESS_CHANGED}))


def internal_event(groups: Iterable[str], event: dict[str, Any]) -> None:
    """Send an internal event (its ``type`` names the consumer's handler, e.g. ``console.close``)
    to every consumer in the groups once the current transaction commits; never relayed to a
    browser as it is."""
    targets = list(groups)
    transaction.on_commit(lambda: _deliver(targets, dict(event)))


# A push waits at most this long for Redis; after that it is dropped, not retried.
PUSH_TIMEOUT_SECONDS = 2.0


def _send(groups: list[str], payload: dict[str, Any]) -> None:
    _deliver(groups, {"type": "push", "message": payload})


def _deliver(groups: list[str], event: dict[str, Any]) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        future = asyncio.run_coroutine_threadsafe(_send_all(layer, groups, event), _push_loop())
        future.result(PUSH_TIMEOUT_SECONDS * len(groups) + 1)
    except Exception:  # a push is best effort by design: log it and go on
        logger.warning("Dropped a realtime push to %s", ", ".join(groups), exc_info=True)


# Pushes from synchronous code (services, workers, the watcher) run on one event loop per process,
# in a thread of its own: channels_redis keeps its connections per event loop, and a new loop per
# push (async_to_sync) opened a new Redis connection every time (issue 16). Any thread may push,
# including one that runs an event loop itself (Playwright's sync API in the browser tests).
_push_loop_lock = threading.Lock()
_push_loop_of: dict[int, asyncio.AbstractEventLoop] = {}


def _push_loop() -> asyncio.AbstractEventLoop:
    pid = os.getpid()  # a forked worker child gets a loop of its own: the parent's thread is not there
    loop = _push_loop_of.get(pid)
    if loop is None:
        with _push_loop_lock:
            loop = _push_loop_of.get(pid)
            if loop is None:
                loop = asyncio.new_event_loop()
                threading.Thread(target=loop.run_forever, name="nestlab-pushes", daemon=True).start()
                _push_loop_of.clear()
                _push_loop_of[pid] = loop
    return loop


async def _send_all(layer, groups: list[str], event: dict[str, Any]) -> None:
    for group in groups:
        await asyncio.wait_for(layer.group_send(group, event), timeout=PUSH_TIMEOUT_SECONDS)
