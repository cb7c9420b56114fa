"""labs/realtime.py, Zulip's way: the deltas a page receives, applied to the full state it got
first, must give what a fresh full state says.

A student's lab is provisioned, snapshotted, powered off and on, reverted, reset and deleted on
a simulator of its own, the jobs run in this process; every message the lab page and the class
table would get is read from the real channel layer (Redis), applied as static/js/live.js
applies it (a message older than what is known is skipped), and compared after each step with
``lab_full_state`` / ``course_full_state`` read afresh. A delta the producers forget (a field
that changes without a message) fails here.
"""

from __future__ import annotations

import asyncio
import copy
import threading

import pytest
from channels.layers import get_channel_layer

from core import realtime as groups
from labs import realtime, services
from labs.jobs import execute
from labs.models import Lab, LabSnapshot, Operation
from portal import demo
from tests.support.websocket_schema import check_message

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.integration]

# Time-dependent: recomputed at every push, so never equal between two reads.
VOLATILE = {"hours_used"}


class Listener:
    """Every message pushed to some groups, read off the channel layer by a thread of its own
    (messages expire in the layer after 10 s: a step can take longer)."""

    def __init__(self, group_names: list[str]) -> None:
        self.messages: list[dict] = []
        self._groups = group_names
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._listen()), daemon=True)
        self._thread.start()
        assert self._ready.wait(10), "the listener did not join its groups"

    async def _listen(self) -> None:
        layer = get_channel_layer()
        channel = await layer.new_channel()
        for name in self._groups:
            await layer.group_add(name, channel)
        self._ready.set()
        while not self._stop.is_set():
            try:
                event = await asyncio.wait_for(layer.receive(channel), timeout=0.2)
            except TimeoutError:
                continue
            if event.get("type") == "push":
                self.messages.append(check_message(event["message"]))

    def take(self, settle: float = 0.5) -> list[dict]:
        """The messages so far (after letting the last pushes arrive), and forget them."""
        self._stop.wait(settle)
        taken, self.messages = self.messages, []
        return taken

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)


def _without_volatile(value):
    if isinstance(value, dict):
        return {key: _without_volatile(item) for key, item in value.items() if key not in VOLATILE}
    if isinstance(value, list):
        return [_without_volatile(item) for item in value]
    return value


def _active(operation: dict) -> bool:
    return operation["state"] in (Operation.State.QUEUED, Operation.State.RUNNING)


class LabPage:
    """A lab page's picture of its lab: lab.full, then deltas (as live.js keeps it)."""

    def __init__(self, full: dict) -> None:
        self.state = copy.deepcopy(full)
        self.lab_id = full["lab"]["id"]

    def apply(self, message: dict) -> None:
        kind = message["type"]
        state = self.state
        if kind == "lab.state" and message["lab"]["id"] == self.lab_id and message["seq"] > state["seq"]:
            state["lab"], state["seq"] = message["lab"], message["seq"]
        elif kind == "snapshot.changed" and message["lab"] == self.lab_id and message["seq"] > state["seq"]:
            state["current"], state["snapshots"], state["seq"] = (
                message["current"],
                message["snapshots"],
                message["seq"],
            )
        elif kind == "vm.state" and message["vm"]["lab"] == self.lab_id:
            vms = {vm["id"]: vm for vm in state["vms"]}
            known = vms.get(message["vm"]["id"])
            if known is None or message["seq"] > known["seq"]:
                vms[message["vm"]["id"]] = {**message["vm"], "seq": message["seq"]}
                state["vms"] = [vms[key] for key in sorted(vms)]
                state["lab"]["state_label"] = message["lab_state_label"]
        elif kind == "operation.progress" and self.lab_id in (
            message["operation"]["lab"],
            message["operation"]["source_lab"],
        ):
            operation = {**message["operation"], "seq": message["seq"]}
            shown = state["operation"]
            if shown is not None and shown["id"] == operation["id"] and operation["seq"] <= shown["seq"]:
                return
            if _active(operation):
                state["operation"] = operation
            elif shown is not None and shown["id"] == operation["id"]:
                state["operation"] = None

    def picture(self) -> dict:
        state = copy.deepcopy(self.state)
        state["vms"] = sorted(state["vms"], key=lambda vm: vm["id"])
        return _without_volatile(state)


class ClassTable:
    """The class table's picture: course.full, then deltas."""

    def __init__(self, full: dict) -> None:
        self.rows = {row["id"]: copy.deepcopy(row) for row in full["labs"]}

    def apply(self, message: dict) -> None:
        kind = message["type"]
        if kind == "lab.state":
            row = self.rows.get(message["lab"]["id"])
            if row is not None and message["seq"] > row["seq"]:
                row.update(message["lab"], seq=message["seq"])
                if message["lab"]["state"] == Lab.State.DELETED:
                    del self.rows[row["id"]]  # the table drops it (it refetches its rows)
        elif kind == "snapshot.changed":
            row = self.rows.get(message["lab"])
            if row is not None and message["seq"] > row["seq"]:
                row["seq"] = message["seq"]
        elif kind == "vm.state":
            row = self.rows.get(message["vm"]["lab"])
            if row is None:
                return
            vms = {vm["id"]: vm for vm in row["vms"]}
            known = vms.get(message["vm"]["id"])
            if known is None or message["seq"] > known["seq"]:
                vms[message["vm"]["id"]] = {**message["vm"], "seq": message["seq"]}
                row["vms"] = [vms[key] for key in sorted(vms)]
                row["vms_total"] = len(vms)
                row["vms_on"] = sum(1 for vm in vms.values() if vm["power_state"] == "poweredOn")
                row["state_label"] = message["lab_state_label"]
        elif kind == "operation.progress":
            operation = {**message["operation"], "seq": message["seq"]}
            row = self.rows.get(operation["lab"])
            if row is None:
                return
            shown = row["operation"]
            if shown is not None and shown["id"] == operation["id"] and operation["seq"] <= shown["seq"]:
                return
            if _active(operation):
                row["operation"] = operation
            elif shown is not None and shown["id"] == operation["id"]:
                row["operation"] = None

    def picture(self) -> dict:
        rows = copy.deepcopy(self.rows)
        for row in rows.values():
            row["vms"] = sorted(row["vms"], key=lambda vm: vm["id"])
        return _without_volatile(rows)


def _fresh_class(course_id: int) -> dict:
    return ClassTable(realtime.course_full_state(course_id)).picture()


def test_the_deltas_of_a_labs_life_rebuild_what_a_fresh_full_state_says(demo_vcsim, monkeypatch):
    monkeypatch.setattr(services.dispatch, "send_operation", lambda *args, **kwargs: None)
    course = demo.seed_demo(
        vcenter_url=demo_vcsim.url, vcenter_user=demo_vcsim.username, vcenter_password=demo_vcsim.password
    )
    student = course.enrollments.get(student__username="student1").student
    listener = Listener([groups.course_group(course.pk)])
    try:
        operation = services.lab_start(course=course, student=student, actor=student)
        lab = operation.lab
        page = LabPage(realtime.lab_full_state(lab, can_act=True))
        table = ClassTable(realtime.course_full_state(course.pk))
        listener.take()  # what came before the full states is in them

        def step(name: str, run) -> None:
            operation = run()
            if operation is not None:
                execute(operation.pk)
                operation.refresh_from_db()
                assert operation.state == Operation.State.SUCCEEDED, f"{name}: {operation.error}"
            messages = listener.take()
            assert messages, f"{name}: no message at all"
            for message in messages:
                page.apply(message)
                table.apply(message)
            assert page.picture() == _without_volatile(realtime.lab_full_state(lab, can_act=True)), name
            assert table.picture() == _fresh_class(course.pk), name

        step("provision", lambda: operation)
        step("snapshot", lambda: services.lab_snapshot_create(lab=lab, actor=student, name="before"))
        step("power off one VM", lambda: services.lab_power(lab=lab, actor=student, action="off", vm=lab.vms.first()))
        step("power off the lab", lambda: services.lab_power(lab=lab, actor=student, action="off"))
        snapshot = LabSnapshot.objects.get(lab=lab, name="before")
        step("revert", lambda: services.lab_revert(lab=lab, actor=student, snapshot=snapshot))
        step("reset", lambda: services.lab_reset(lab=lab, actor=student))
        step("delete", lambda: services.lab_delete(lab=lab, actor=student))
        lab.refresh_from_db()
        assert lab.state == Lab.State.DELETED
    finally:
        listener.close()
