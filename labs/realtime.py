"""Messages the labs app pushes to browsers (the schema is in docs/websocket.md)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db import connections, router
from django.db.models import Model

from core import realtime
from core.notices import notice_send
from labs import failure_words, selectors
from labs.models import Lab, LabVM, Operation


def next_seq(instance: Model, **columns: Any) -> int:
    """Bump an object's message sequence number atomically and return the new value.

    The worker and the watcher both push changes of the same lab and VMs: one UPDATE that adds
    one in the database keeps their numbers distinct and increasing, so a client can trust a gap.
    ``columns``: other fields of the row to write in the same statement.
    """
    seq = next_seq_if(instance, {}, **columns)
    if seq is None:
        raise type(instance).DoesNotExist(f"No {type(instance)._meta.verbose_name} with id {instance.pk}.")
    return seq


def next_seq_if(instance: Model, when: dict[str, Any], **columns: Any) -> int | None:
    """``next_seq`` for a row that still has the field values ``when`` says (the state it was
    read in): None, and nothing written, when it does not."""
    model = type(instance)
    connection = connections[router.db_for_write(model)]
    quote = connection.ops.quote_name
    # One statement, not an UPDATE and a SELECT: every push pays it (PostgreSQL, and SQLite
    # since 3.35, answer UPDATE ... RETURNING).
    fields = [model._meta.get_field(name) for name in columns]
    also = "".join(f", {quote(field.column)} = %s" for field in fields)
    values = [field.get_db_prep_save(columns[field.name], connection) for field in fields]
    conditions = [model._meta.get_field(name) for name in when]
    where = "".join(f" AND {quote(field.column)} = %s" for field in conditions)
    expected = [field.get_db_prep_value(when[field.name], connection) for field in conditions]
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {quote(model._meta.db_table)} SET {quote('seq')} = {quote('seq')} + 1{also} "
            f"WHERE {quote(model._meta.pk.column)} = %s{where} RETURNING {quote('seq')}",
            [*values, instance.pk, *expected],
        )
        row = cursor.fetchone()
    if row is None:
        return None
    instance.seq = row[0]
    for name, value in columns.items():
        setattr(instance, name, value)
    return instance.seq


def operation_payload(operation: Operation) -> dict[str, Any]:
    """An operation with the words the pages show for it (labs.models.Operation), so the
    browser's script says what the server's templates say and repeats no rule."""
    clone_of = operation.params.get("source_lab") if operation.kind == Operation.Kind.CLONE else None
    return {
        "id": operation.pk,
        "lab": operation.lab_id,
        # A clone belongs to the new lab, but keeps the lab it copies busy too.
        "source_lab": clone_of,
        "actor": operation.actor_id,
        "kind": operation.kind,
        "kind_label": operation.get_kind_display(),
        "state": operation.state,
        "progress": operation.progress,
        "step": operation.step,
        "error": operation.error,
        "state_label": operation.get_state_display(),
        "step_label": operation.step_label,
        "busy_label": operation.busy_words(operation.lab_id) if operation.lab_id else "",
        "source_busy_label": operation.busy_words(clone_of) if clone_of and operation.lab_id else "",
        "outcome_label": operation.outcome_label,
    }


def operation_groups(operation: Operation) -> list[str]:
    """A lab's operations go to the lab and its course; others to their own operation group and
    the person who started them.

    A page never listens on two groups that get the same message: a lab page listens on the lab
    and its user's group, so a lab's operations do not go to the user; an operation's page
    listens on the operation's group only.
    """
    if operation.lab_id:
        # A lab never changes course: the lab the caller already holds says which, without a query.
        # Its student may change (a warm-pool lab handed over): read with it.
        if Operation.lab.is_cached(operation):
            course_id, student_id = operation.lab.course_id, operation.lab.student_id
        else:
            course_id, student_id = Lab.objects.values_list("course_id", "student_id").get(pk=operation.lab_id)
        groups = [realtime.lab_group(operation.lab_id)]
        if student_id is not None:  # a warm-pool lab is no row of the class table (pool_changed)
            groups.append(realtime.course_group(course_id))
        source = (operation.params or {}).get("source_lab")
        if operation.kind == Operation.Kind.CLONE and source:
            groups.append(realtime.lab_group(source))  # the source lab's page shows it busy
        return groups
    # Not a lab's: its own page (ws/operations/<id>/, which joins only that group) and the pages
    # of the person who started it.
    groups = [realtime.operation_group(operation.pk)]
    if operation.actor_id:
        groups.append(realtime.user_group(operation.actor_id))
    return groups


def lab_payload(lab: Lab) -> dict[str, Any]:
    return {
        "id": lab.pk,
        "name": lab.name,
        "state": lab.state,
        "state_label": lab.state_label,
        "error": lab.error,
        "course": lab.course_id,
        "student": lab.student_id,
        "running": lab.is_running,
        "hours_used": round(lab.hours_now(), 2),
    }


def _operation_for_students(operation: dict[str, Any] | None) -> dict[str, Any] | None:
    if not operation or not operation.get("error"):
        return operation
    words = failure_words.for_students(operation["error"])
    # The step label of a failed operation is its error (labs.models.Operation.step_label).
    step_label = words if operation.get("step_label") == operation["error"] else operation.get("step_label")
    return {**operation, "error": words, "step_label": step_label}


def _lab_for_students(lab: dict[str, Any]) -> dict[str, Any]:
    return {**lab, "error": failure_words.for_students(lab["error"])} if lab.get("error") else lab


def for_students(message: dict[str, Any]) -> dict[str, Any]:
    """A lab socket's message as the lab's student may read it: failures without vCenter's
    words (``labs.failure_words``); staff read the message as it was pushed."""
    kind = message.get("type")
    if kind == "lab.state":
        return {**message, "lab": _lab_for_students(message["lab"])}
    if kind == "operation.progress":
        return {**message, "operation": _operation_for_students(message["operation"])}
    if kind == "lab.full":
        return {
            **message,
            "lab": _lab_for_students(message["lab"]),
            "operation": _operation_for_students(message.get("operation")),
        }
    return message


def lab_groups(lab: Lab) -> list[str]:
    """A lab's own group and its course's; a warm-pool lab's own only: it is no row of the class
    table, whose page learns of the pool from ``pool_changed`` (and of a lab handed over from
    its first ``lab.state``)."""
    if lab.student_id is None:
        return [realtime.lab_group(lab.pk)]
    return [realtime.lab_group(lab.pk), realtime.course_group(lab.course_id)]


def lab_changed(lab: Lab, *, activity_at: datetime | None = None) -> None:
    """Push the lab's state to its own group and its course's (schema: docs/websocket.md).

    ``activity_at``: its student used it then (``labs.services.lab_operation``), written in the
    same statement as the sequence number."""
    seq = next_seq(lab, last_activity_at=activity_at) if activity_at is not None else next_seq(lab)
    realtime.publish(lab_groups(lab), {"type": "lab.state", "seq": seq, "lab": lab_payload(lab)})
    if lab.student_id is None:
        pool_changed(lab.course_id)


def pool_payload(course_id: int) -> dict[str, Any]:
    status = selectors.pool_status(course_id)
    return {
        "course": course_id,
        "size": status.size,
        "sizing": status.sizing,
        "target": status.target,
        "ready": status.ready,
        "building": status.building,
        "given_today": status.given_today,
        "words": status.words,
    }


def pool_changed(course_id: int) -> None:
    """Push a course's warm pool (ready, building, given out today) to its class page."""
    realtime.publish(
        [realtime.course_group(course_id)], {"type": "pool.state", "seq": 0, "pool": pool_payload(course_id)}
    )


def guide_changed(lab: Lab) -> None:
    """Push a lab's guide progress (score, each step's state, each check's last result) to the
    lab's page and the class's progress grid (schema: docs/websocket.md)."""
    realtime.publish(
        lab_groups(lab),
        {"type": "lab.guide", "seq": next_seq(lab), "guide": selectors.lab_guide_progress(lab)},
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


def vm_payload(vm: LabVM) -> dict[str, Any]:
    return {
        "id": vm.pk,
        "lab": vm.lab_id,
        "role": vm.role,
        "name": vm.name,
        "power_state": vm.power_state,
        "power_label": vm.power_label,
        "guest_ip": vm.guest_ip,
        "overall_status": vm.overall_status,
        "health_label": vm.health_label,
    }


def vm_changed(vm: LabVM) -> None:
    realtime.publish(
        lab_groups(vm.lab),
        # The lab's words change with its VMs' power ("Partly running"): they come along.
        {"type": "vm.state", "seq": next_seq(vm), "vm": vm_payload(vm), "lab_state_label": vm.lab.state_label},
    )


def snapshot_payload(snapshot) -> dict[str, Any]:
    return {
        "id": snapshot.pk,
        "name": snapshot.name,
        "description": snapshot.description,
        "parent": snapshot.parent_id,
        "is_baseline": snapshot.is_baseline,
        "created_at": snapshot.created_at.isoformat(),
    }


def snapshots_changed(lab: Lab) -> None:
    """The whole tree (it is small), so a client never has to patch it."""
    lab.refresh_from_db(fields=["current_snapshot"])
    realtime.publish(
        # The course group too: the lab's seq moves, and a class table must not see a gap.
        lab_groups(lab),
        {
            "type": "snapshot.changed",
            "seq": next_seq(lab),
            "lab": lab.pk,
            "current": lab.current_snapshot_id,
            "snapshots": [snapshot_payload(s) for s in lab.snapshots.all()],
        },
    )


def notify_user(user_id: int, text: str, level: str = "warning") -> None:
    """A notice for one person: a toast on any page they have open, and on their next page
    (nobody's for a warm-pool lab, which has no student)."""
    if user_id is None:
        return
    notice_send(user_id=user_id, text=text, level=level)


def _with_seq(payload: dict[str, Any], seq: int) -> dict[str, Any]:
    return {**payload, "seq": seq}


def lab_full_state(lab: Lab, *, can_act: bool) -> dict[str, Any]:
    """Everything a lab page shows that changes: sent first on connect and on resync.

    ``can_act``: whether the person connected may act on the lab (false for its owner once
    removed from the course: they still read it); ``labs.permissions.can_act_on_lab``.
    """
    lab.refresh_from_db()
    operation = selectors.lab_busy_with(lab)
    return {
        "type": "lab.full",
        "seq": lab.seq,
        "can_act": can_act,
        "lab": lab_payload(lab),
        "vms": [_with_seq(vm_payload(vm), vm.seq) for vm in lab.vms.all()],
        "current": lab.current_snapshot_id,
        "snapshots": [snapshot_payload(s) for s in lab.snapshots.all()],
        "operation": _with_seq(operation_payload(operation), operation.seq) if operation else None,
    }


def course_full_state(course_id: int) -> dict[str, Any]:
    """Every lab of a course for the instructor's class table."""
    labs = list(
        Lab.objects.filter(course_id=course_id, student__isnull=False)
        .exclude(state=Lab.State.DELETED)
        .select_related("student", "course")
        .prefetch_related("vms")
    )
    busy = selectors.lab_active_operations(labs)  # a few queries for the class, not two per lab
    rows = []
    for lab in labs:
        operation = busy.get(lab.pk)
        vms = list(lab.vms.all())
        rows.append(
            {
                **_with_seq(lab_payload(lab), lab.seq),
                "student_name": lab.student.username,
                "vms_on": sum(1 for vm in vms if vm.is_on),
                "vms_total": len(vms),
                "vms": [_with_seq(vm_payload(vm), vm.seq) for vm in vms],
                "operation": _with_seq(operation_payload(operation), operation.seq) if operation else None,
            }
        )
    return {"type": "course.full", "seq": 0, "course": course_id, "labs": rows}
