"""Channels group names and the one way to push a message to browsers.

Group names are built only here. Messages are sent after the database commit that
produced them, and a failed push (Redis down, a full channel) is logged and dropped:
it must never stall or fail a worker; clients resync from the database on reconnect.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from collections.abc import Iterable
from typing import Any

from asgiref.sync import async_to_sync
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
        if _loop_running_here():
            # async_to_sync cannot run inside a running event loop (a test driving a browser
            # with Playwright's sync API has one): send from a short-lived thread instead.
            failures: list[BaseException] = []
            thread = threading.Thread(target=_send_in_thread, args=(layer, groups, event, failures))
            thread.start()
            thread.join(PUSH_TIMEOUT_SECONDS * len(groups) + 1)
            if failures:
                raise failures[0]
        else:
            async_to_sync(_send_all)(layer, groups, event)
    except Exception:  # a push is best effort by design: log it and go on
        logger.warning("Dropped a realtime push to %s", ", ".join(groups), exc_info=True)


def _loop_running_here() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def _send_in_thread(layer, groups: list[str], event: dict[str, Any], failures: list[BaseException]) -> None:
    try:
        async_to_sync(_send_all)(layer, groups, event)
    except Exception as error:  # noqa: BLE001 - handed back to the caller, which logs it
        failures.append(error)


async def _send_all(layer, groups: list[str], event: dict[str, Any]) -> None:
    for group in groups:
        await asyncio.wait_for(layer.group_send(group, event), timeout=PUSH_TIMEOUT_SECONDS)
