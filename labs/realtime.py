"""Messages the labs app pushes to browsers (the schema is in docs/websocket.md)."""

from __future__ import annotations

from typing import Any

from labs.models import Lab, Operation
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
    if operation.lab_id:
        groups.append(realtime.lab_group(operation.lab_id))
        course_id = getattr(operation.lab, "course_id", None)
        if course_id:
            groups.append(realtime.course_group(course_id))
    return groups


def lab_payload(lab: Lab) -> dict[str, Any]:
    return {
        "id": lab.pk,
        "name": lab.name,
        "state": lab.state,
        "error": lab.error,
        "running": lab.is_running,
        "hours_used": round(lab.hours_now(), 2),
    }


def lab_changed(lab: Lab) -> None:
    """Push the lab's state to its own group and its course's (schema: docs/websocket.md)."""
    realtime.publish(
        [realtime.lab_group(lab.pk), realtime.course_group(lab.course_id)],
        {"type": "lab.state", "seq": lab.seq, "lab": lab_payload(lab)},
    )


def operation_changed(operation: Operation) -> None:
    realtime.publish(
        operation_groups(operation),
        {
            "type": "operation.progress",
            "seq": operation.seq,
            "operation": operation_payload(operation),
        },
    )


def vm_payload(vm) -> dict[str, Any]:
    return {
        "id": vm.pk,
        "lab": vm.lab_id,
        "role": vm.role,
        "name": vm.name,
        "power_state": vm.power_state,
        "guest_ip": vm.guest_ip,
        "overall_status": vm.overall_status,
    }


def vm_changed(vm) -> None:
    realtime.publish(
        [realtime.lab_group(vm.lab_id)],
        {"type": "vm.state", "seq": vm.seq, "vm": vm_payload(vm)},
    )


def snapshots_changed(lab: Lab) -> None:
    realtime.publish(
        [realtime.lab_group(lab.pk)],
        {
            "type": "snapshot.changed",
            "seq": lab.seq,
            "lab": lab.pk,
            "snapshots": [
                {"id": s.pk, "name": s.name, "parent": s.parent_id, "is_baseline": s.is_baseline}
                for s in lab.snapshots.all()
            ],
        },
    )


def notify_user(user_id: int, text: str, level: str = "warning") -> None:
    """A notice for one person (a toast on whatever page they have open)."""
    realtime.publish([realtime.user_group(user_id)], {"type": "notice", "seq": 0, "level": level, "text": text})
