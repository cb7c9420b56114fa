"""WebSocket consumers: thin. They check that the user may see the object before joining
any group, send the full state first and then relay the deltas producers push after
their commits (schema: docs/websocket.md). They never call vCenter.

Permission is checked again on every client ``resync`` and whenever the person's access
changes (``portal.realtime.access_changed``, sent by roster changes to their user group): a
person who may no longer see the object is closed with 4403; a lab's owner removed from its
course, who still reads it, gets a full state with ``can_act`` false and a notice.
"""

from __future__ import annotations

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.conf import settings
from django.contrib.auth import get_user_model

from courses import permissions as course_permissions
from courses.models import Course
from labs import permissions, realtime, selectors, services
from labs.models import Lab, Operation
from portal import audit
from portal import realtime as groups
from portal.ws_limit import SocketSlot, limit_words

User = get_user_model()

# Close codes a client can act on (4000-4999 are the application's own).
NOT_SIGNED_IN = 4401
NOT_ALLOWED = 4403
TOO_MANY = 4429  # the person has NESTLAB_WS_PER_USER_LIMIT sockets open already (portal/ws_limit.py)


class _PushConsumer(AsyncJsonWebsocketConsumer):
    """Joins groups only after a permission check; relays ``push`` events verbatim."""

    joined: list[str]
    audit_action: str  # names a refusal in the audit log
    refused = False
    slot: SocketSlot | None = None

    async def signed_in_and_admitted(self) -> bool:
        """The first checks of every route: someone is signed in (else 4401) and has a free place
        for one more socket (else 4429). False when the socket was closed."""
        if not self.scope["user"].is_authenticated:
            await self.refuse(NOT_SIGNED_IN)
            return False
        return await self.admit()

    async def admit(self) -> bool:
        """Take one of the person's places for open sockets; when none is left, close with
        4429 after a notice in words, and record the refusal."""
        self.slot = SocketSlot(user_id=self.scope["user"].pk, socket_id=self.channel_name)
        if await self.slot.claim():
            return True
        self.slot = None
        words = limit_words(settings.NESTLAB_WS_PER_USER_LIMIT)
        await database_sync_to_async(audit.websocket_refused)(
            scope=self.scope, action=self.audit_action, reason="Too many open live pages."
        )
        await self.accept()
        await self.send_json({"type": "notice", "seq": 0, "level": "error", "text": words})
        await self.close(code=TOO_MANY)
        return False

    async def refuse(self, code: int, reason: str = "") -> None:
        if code == NOT_ALLOWED:  # a signed-in person; one who is not is asked to sign in
            await database_sync_to_async(audit.websocket_refused)(
                scope=self.scope, action=self.audit_action, reason=reason or "Not allowed."
            )
        # Accept first so that the browser receives the code (a refused handshake has none).
        await self.accept()
        await self.close(code=code)

    async def join(self, names: list[str]) -> None:
        self.joined = names
        for name in names:
            await self.channel_layer.group_add(name, self.channel_name)
        await self.accept()

    async def disconnect(self, code: int) -> None:
        await self.leave()
        if self.slot is not None:
            await self.slot.release()
            self.slot = None

    async def dispatch(self, message: dict) -> None:
        # Channels closes old database connections before every handler, a hop through the
        # one database thread; a push never touches the database, and with 500 clients on a
        # course those hops were half the fan-out time (docs/benchmarks.md).
        if message.get("type") == "push":
            await self.push(message)
            return
        await super().dispatch(message)

    async def push(self, event: dict) -> None:
        if not self.refused:  # one already in the channel when access was lost goes nowhere
            await self.send_json(event["message"])

    async def receive_json(self, content, **kwargs) -> None:
        if isinstance(content, dict) and content.get("type") == "resync" and await self.recheck():
            await self.send_json(await self.full_state())

    async def access_changed(self, event: dict) -> None:
        """``portal.realtime.access_changed``: internal, never relayed to the browser."""
        await self.recheck()

    async def recheck(self) -> bool:
        """Ask the permission again, with the user read afresh (their roles may have changed
        too); close with 4401 or 4403 and leave every group when it no longer holds."""
        code = await database_sync_to_async(self.refusal)()
        if code is None:
            return True
        self.refused = True
        await self.leave()
        await self.close(code=code)
        return False

    async def leave(self) -> None:
        for name in getattr(self, "joined", []):
            await self.channel_layer.group_discard(name, self.channel_name)
        self.joined = []

    def refusal(self) -> int | None:
        """Runs in the database thread: None when the user may still look, else the close code."""
        raise NotImplementedError

    async def full_state(self) -> dict:
        raise NotImplementedError


class LabConsumer(_PushConsumer):
    """``ws/labs/<id>/``: one lab, for its student, the course's instructors and admins."""

    audit_action = "websocket:lab"

    async def connect(self) -> None:
        user = self.scope["user"]
        if not await self.signed_in_and_admitted():
            return
        lab_id = self.scope["url_route"]["kwargs"]["lab_id"]
        self.lab = await database_sync_to_async(_visible_lab)(user, lab_id)
        if self.lab is None:
            await self.refuse(NOT_ALLOWED, "Only the lab's student, its course's instructors and admins follow a lab.")
            return
        self.can_act = await database_sync_to_async(permissions.can_act_on_lab)(user, self.lab)
        await self.join([groups.lab_group(self.lab.pk), groups.user_group(user.pk)])
        await self.send_json(await self.full_state())

    async def full_state(self) -> dict:
        return await database_sync_to_async(realtime.lab_full_state)(self.lab, can_act=self.can_act)

    def refusal(self) -> int | None:
        user = _fresh_user(self.scope["user"])
        if user is None:
            return NOT_SIGNED_IN
        lab = Lab.objects.select_related("course").filter(pk=self.lab.pk).first()
        if lab is None or not permissions.can_view_lab(user, lab):
            return NOT_ALLOWED
        self.lab, self.could_act, self.can_act = lab, self.can_act, permissions.can_act_on_lab(user, lab)
        return None

    async def access_changed(self, event: dict) -> None:
        if not await self.recheck():
            return
        if self.could_act and not self.can_act:  # the owner was removed from the course: tell them
            await self.send_json(await self.full_state())
            await self.send_json({"type": "notice", "seq": 0, "level": "warning", "text": REMOVED_WORDS})
        elif self.can_act and not self.could_act:
            await self.send_json(await self.full_state())


class CourseConsumer(_PushConsumer):
    """``ws/courses/<id>/``: every lab of a course, for its instructors and admins."""

    audit_action = "websocket:course"

    async def connect(self) -> None:
        user = self.scope["user"]
        if not await self.signed_in_and_admitted():
            return
        course_id = self.scope["url_route"]["kwargs"]["course_id"]
        self.course_id = await database_sync_to_async(_managed_course_id)(user, course_id)
        if self.course_id is None:
            await self.refuse(NOT_ALLOWED, "Only the course's instructors and admins follow its labs.")
            return
        await self.join([groups.course_group(self.course_id), groups.user_group(user.pk)])
        await self.send_json(await self.full_state())

    async def full_state(self) -> dict:
        return await database_sync_to_async(realtime.course_full_state)(self.course_id)

    def refusal(self) -> int | None:
        user = _fresh_user(self.scope["user"])
        if user is None:
            return NOT_SIGNED_IN
        return None if _managed_course_id(user, self.course_id) is not None else NOT_ALLOWED


class OperationConsumer(_PushConsumer):
    """``ws/operations/<id>/``: one operation that is not a lab's (a connection check, a publish,
    a reconcile, preparing a template's VMs), for those who may see it (its page's rule,
    ``labs.selectors.operation_list``). Lab operations are followed on their lab's socket.

    It joins the operation's group only (not the user's, which gets the same messages), so
    access changes are caught at the client's next resync rather than at once."""

    audit_action = "websocket:operation"

    async def connect(self) -> None:
        if not await self.signed_in_and_admitted():
            return
        self.operation_id = self.scope["url_route"]["kwargs"]["operation_id"]
        if await database_sync_to_async(self.refusal)() is not None:
            await self.refuse(NOT_ALLOWED, "Only the person who started an operation and admins follow it.")
            return
        await self.join([groups.operation_group(self.operation_id)])
        await self.send_json(await self.full_state())

    async def full_state(self) -> dict:
        return await database_sync_to_async(_operation_message)(self.operation_id)

    def refusal(self) -> int | None:
        user = _fresh_user(self.scope["user"])
        if user is None:
            return NOT_SIGNED_IN
        visible = selectors.operation_list(user=user).filter(pk=self.operation_id, lab__isnull=True).exists()
        return None if visible else NOT_ALLOWED


def _operation_message(operation_id: int) -> dict:
    """The operation as it is now, in the shape of its deltas (``operation.progress``)."""
    operation = Operation.objects.select_related("endpoint", "actor").get(pk=operation_id)
    return {"type": "operation.progress", "seq": operation.seq, "operation": realtime.operation_payload(operation)}


REMOVED_WORDS = (
    "You are no longer enrolled in this lab's course: you can still see the lab, but not use it. "
    "Ask the course's instructor if this is a mistake."
)


def _fresh_user(user):
    """The connected person as the database has them now (roles are cached on the object the
    connection started with); None once the account is gone or disabled."""
    return User.objects.filter(pk=user.pk, is_active=True).first()


def _visible_lab(user, lab_id: int) -> Lab | None:
    lab = Lab.objects.select_related("course").filter(pk=lab_id).first()
    if lab is None or not permissions.can_view_lab(user, lab):
        return None
    services.lab_touch(lab=lab, user=user)  # the student opened their lab's page
    return lab


def _managed_course_id(user, course_id: int) -> int | None:
    course = Course.objects.filter(pk=course_id).first()
    return course.pk if course is not None and course_permissions.can_manage_course(user, course) else None
