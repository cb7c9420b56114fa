"""WebSocket consumers: thin. They check that the user may see the object before joining
any group, send the full state first and then relay the deltas producers push after
their commits (schema: docs/websocket.md). They never call vCenter."""

from __future__ import annotations

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from courses import permissions as course_permissions
from courses.models import Course
from labs import permissions, realtime, services
from labs.models import Lab
from portal import audit
from portal import realtime as groups

# Close codes a client can act on (4000-4999 are the application's own).
NOT_SIGNED_IN = 4401
NOT_ALLOWED = 4403


class _PushConsumer(AsyncJsonWebsocketConsumer):
    """Joins groups only after a permission check; relays ``push`` events verbatim."""

    joined: list[str]
    audit_action: str  # names a refusal in the audit log

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
        for name in getattr(self, "joined", []):
            await self.channel_layer.group_discard(name, self.channel_name)

    async def dispatch(self, message: dict) -> None:
        # Channels closes old database connections before every handler, a hop through the
        # one database thread; a push never touches the database, and with 500 clients on a
        # course those hops were half the fan-out time (docs/benchmarks.md).
        if message.get("type") == "push":
            await self.push(message)
            return
        await super().dispatch(message)

    async def push(self, event: dict) -> None:
        await self.send_json(event["message"])

    async def receive_json(self, content, **kwargs) -> None:
        if isinstance(content, dict) and content.get("type") == "resync":
            await self.send_json(await self.full_state())

    async def full_state(self) -> dict:
        raise NotImplementedError


class LabConsumer(_PushConsumer):
    """``ws/labs/<id>/``: one lab, for its student, the course's instructors and admins."""

    audit_action = "websocket:lab"

    async def connect(self) -> None:
        user = self.scope["user"]
        if not user.is_authenticated:
            await self.refuse(NOT_SIGNED_IN)
            return
        lab_id = self.scope["url_route"]["kwargs"]["lab_id"]
        self.lab = await database_sync_to_async(_visible_lab)(user, lab_id)
        if self.lab is None:
            await self.refuse(NOT_ALLOWED, "Only the lab's student, its course's instructors and admins follow a lab.")
            return
        await self.join([groups.lab_group(self.lab.pk), groups.user_group(user.pk)])
        await self.send_json(await self.full_state())

    async def full_state(self) -> dict:
        return await database_sync_to_async(realtime.lab_full_state)(self.lab)


class CourseConsumer(_PushConsumer):
    """``ws/courses/<id>/``: every lab of a course, for its instructors and admins."""

    audit_action = "websocket:course"

    async def connect(self) -> None:
        user = self.scope["user"]
        if not user.is_authenticated:
            await self.refuse(NOT_SIGNED_IN)
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


def _visible_lab(user, lab_id: int) -> Lab | None:
    lab = Lab.objects.select_related("course").filter(pk=lab_id).first()
    if lab is None or not permissions.can_view_lab(user, lab):
        return None
    services.lab_touch(lab=lab, user=user)  # the student opened their lab's page
    return lab


def _managed_course_id(user, course_id: int) -> int | None:
    course = Course.objects.filter(pk=course_id).first()
    return course.pk if course is not None and course_permissions.can_manage_course(user, course) else None
