"""Messages the labs app pushes to browsers (the schema is in docs/websocket.md)."""

from __future__ import annotations

from typing import Any

from labs.models import Operation
from portal import realtime


def operation_payload(operation: Operation) -> dict[str, Any]:
    return {
        "id": operation.pk,
        "kind": operation.kind,
        "state": operation.state,
        "progress": operation.progress,
        "step": operation.step,
        "error": operation.error,
    }


def operation_groups(operation: Operation) -> list[str]:
    groups = []
    if operation.actor_id:
        groups.append(realtime.user_group(operation.actor_id))
    return groups


def operation_changed(operation: Operation) -> None:
    realtime.publish(
        operation_groups(operation),
        {
            "type": "operation.progress",
            "seq": operation.seq,
            "operation": operation_payload(operation),
        },
    )
