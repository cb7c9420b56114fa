"""WebSocket consumers: thin. They check that the user may see the object before joining
any group, send the full state first and then relay the deltas producers push after
their commits (schema: docs/websocket.md). They never call vCenter, except the console
relay, which asks for a VM's ticket and connects to the ESXi host (``ConsoleConsumer``).

Permission is checked again on every client ``resync`` and whenever the person's access
changes (``core.realtime.access_changed``, sent by roster changes to their user group): a
person who may no longer see the object is closed with 4403; a lab's owner removed from its
course, who still reads it, gets a full state with ``can_act`` false and a notice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer, AsyncWebsocketConsumer
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError

from core import audit
from core import realtime as groups
from core.consumers import NOT_ALLOWED, NOT_SIGNED_IN, RefusingConsumer
from core.ws_limit import SocketSlot, limit_words
from courses import permissions as course_permissions
from courses.models import Course
from labs import console, failure_words, permissions, realtime, rfb, selectors, services, vsphere
from labs.models import ConsoleSession, Lab, Operation

User = get_user_model()
logger = logging.getLogger(__name__)

# Close codes a client can act on (4000-4999 are the application's own): core.consumers has
# 4401 and 4403, which every socket uses.
TOO_MANY = 4429  # the person has NESTLAB_WS_PER_USER_LIMIT sockets open already (core/ws_limit.py)


class _PushConsumer(RefusingConsumer, AsyncJsonWebsocketConsumer):
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
        """``core.realtime.access_changed``: internal, never relayed to the browser."""
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
        self.failure_detail = await database_sync_to_async(permissions.sees_failure_detail)(user, self.lab.course)
        await self.join([groups.lab_group(self.lab.pk), groups.user_group(user.pk)])
        await self.send_json(await self.full_state())

    async def full_state(self) -> dict:
        state = await database_sync_to_async(realtime.lab_full_state)(self.lab, can_act=self.can_act)
        return self.readable(state)

    def readable(self, message: dict) -> dict:
        """The lab's student reads failures without vCenter's words (its host and port...)."""
        return message if self.failure_detail else realtime.for_students(message)

    async def push(self, event: dict) -> None:
        if not self.refused:
            await self.send_json(self.readable(event["message"]))

    def refusal(self) -> int | None:
        user = _fresh_user(self.scope["user"])
        if user is None:
            return NOT_SIGNED_IN
        lab = Lab.objects.select_related("course").filter(pk=self.lab.pk).first()
        if lab is None or not permissions.can_view_lab(user, lab):
            return NOT_ALLOWED
        self.lab, self.could_act, self.can_act = lab, self.can_act, permissions.can_act_on_lab(user, lab)
        self.failure_detail = permissions.sees_failure_detail(user, lab.course)
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


# Close codes of the console relay, on top of the live sockets' 4401 and 4403.
CONSOLE_CLOSED = 4000  # closed on purpose: by its user, an instructor, an admin (the reason says who)
CONSOLE_BAD_STREAM = 4400  # the browser sent something that is not RFB
CONSOLE_IDLE = 4408  # no keyboard or mouse input for NESTLAB_CONSOLE_IDLE_MINUTES
CONSOLE_HOST_FAILED = 4502  # vCenter or the ESXi host did not give or keep the console
CLOSE_REASON_BYTES = 123  # the WebSocket protocol's limit for a close frame's reason
PENDING_LIMIT = 64 * 1024  # bytes a browser may send before the host's console is connected


def _close_reason(words: str) -> str:
    encoded = words.encode()
    if len(encoded) <= CLOSE_REASON_BYTES:
        return words
    return encoded[: CLOSE_REASON_BYTES - 3].decode(errors="ignore") + "…"


class ConsoleConsumer(RefusingConsumer, AsyncWebsocketConsumer):
    """``ws/console/<key>/``: the relay between a browser's console (noVNC) and a VM's WebMKS
    stream on its ESXi host (docs/console.md). The key comes from ``labs.console.console_open``;
    the ticket is asked for here, used here and never sent to the browser.

    Bytes go both ways as they come; the browser's are followed message by message
    (``labs.rfb``) so an observer's input is dropped and input counts as lab activity. The
    session ends, with a close code and words, when either side closes, the host fails, the
    person may no longer use it (checked at each heartbeat and on ``access.changed``), nobody
    typed for ``NESTLAB_CONSOLE_IDLE_MINUTES``, or someone closes it from the page or the API.
    """

    audit_action = "websocket:console"
    session: ConsoleSession | None = None
    stream: vsphere.ConsoleStream | None = None
    ended = False

    async def connect(self) -> None:
        self.pending: list[bytes] = []
        self.tasks: list[asyncio.Task] = []
        self.joined: list[str] = []
        self.bytes_to_vm = self.bytes_from_vm = 0
        self.input_since_heartbeat = False
        self.last_input = time.monotonic()
        self.reason = ""
        user = self.scope["user"]
        protocol = "binary" if "binary" in self.scope.get("subprotocols", []) else None
        if not user.is_authenticated:
            await self.refuse(NOT_SIGNED_IN, subprotocol=protocol)
            return
        key = self.scope["url_route"]["kwargs"]["key"]
        try:
            self.session = await database_sync_to_async(console.console_connect)(key=key, user=user)
        except PermissionDenied as refusal:
            await self.refuse(NOT_ALLOWED, str(refusal), subprotocol=protocol, words=_close_reason(str(refusal)))
            return
        # Why the host failed names it (its address): words without it for the lab's student.
        self.failure_detail = await database_sync_to_async(_sees_failure_detail)(user, self.session)
        self.filter = rfb.ClientStream(read_only=self.session.mode == ConsoleSession.Mode.OBSERVE)
        self.joined = [console.console_group(self.session.pk), groups.user_group(user.pk)]
        for name in self.joined:
            await self.channel_layer.group_add(name, self.channel_name)
        await self.accept(subprotocol=protocol)
        self.tasks.append(asyncio.create_task(self.relay_from_host()))

    async def relay_from_host(self) -> None:
        session = self.session
        try:
            ticket = await sync_to_async(console.console_ticket, thread_sensitive=False)(session)
            options = await database_sync_to_async(console.console_stream_options)(session)
            self.stream = await vsphere.open_console_stream(ticket, **options)
        except (vsphere.VSphereError, ValidationError) as error:
            await self.end(CONSOLE_HOST_FAILED, self.readable(f"The console did not open: {_words(error)}"))
            return
        for data in self.pending:
            await self.stream.send(data)
        self.pending.clear()
        self.tasks.append(asyncio.create_task(self.heartbeat()))
        try:
            while True:
                data = await self.stream.receive()
                self.bytes_from_vm += len(data)
                await self.send(bytes_data=data)
        except vsphere.VSphereError as error:
            await self.end(CONSOLE_HOST_FAILED, self.readable(str(error)))

    def readable(self, words: str) -> str:
        if self.failure_detail:
            return words
        logger.info("Console session %s ended: %s", self.session.pk, words)  # the detail, for staff
        return failure_words.without_addresses(words)

    async def receive(self, text_data=None, bytes_data=None) -> None:
        if self.ended or bytes_data is None:
            return
        try:
            filtered = self.filter.feed(bytes_data)
        except rfb.ProtocolError as error:
            await self.end(CONSOLE_BAD_STREAM, str(error))
            return
        if filtered.input_messages:
            self.input_since_heartbeat = True
            self.last_input = time.monotonic()
        if not filtered.forward:
            return
        self.bytes_to_vm += len(filtered.forward)
        if self.stream is None:
            # The host speaks first in RFB: a browser has nothing to say before the console
            # opened but its version and a few requests. Past that it is flooding memory.
            if sum(map(len, self.pending)) + len(filtered.forward) > PENDING_LIMIT:
                await self.end(CONSOLE_BAD_STREAM, "The browser sent too much before the console opened.")
                return
            self.pending.append(filtered.forward)
            return
        try:
            await self.stream.send(filtered.forward)
        except vsphere.VSphereError:  # the host went away mid-send: the reader ends the session in words
            return

    async def heartbeat(self) -> None:
        """Every few seconds: the counters and activity to the record, the person's right to go
        on checked again, and the idle limit."""
        period = settings.NESTLAB_CONSOLE_HEARTBEAT_SECONDS
        idle_limit = settings.NESTLAB_CONSOLE_IDLE_MINUTES * 60
        while not self.ended:
            await asyncio.sleep(period)
            seen, self.input_since_heartbeat = self.input_since_heartbeat, False
            await database_sync_to_async(console.console_heartbeat)(
                session=self.session,
                bytes_to_vm=self.bytes_to_vm,
                bytes_from_vm=self.bytes_from_vm,
                input_seen=seen,
            )
            if not await self.still_allowed():
                return
            if idle_limit and time.monotonic() - self.last_input > idle_limit:
                minutes = settings.NESTLAB_CONSOLE_IDLE_MINUTES
                await self.end(CONSOLE_IDLE, f"The console closed after {minutes} minutes without typing.")
                return

    async def still_allowed(self) -> bool:
        refusal = await database_sync_to_async(console.console_refusal)(self.session)
        if refusal is None:
            return True
        await self.end(NOT_ALLOWED, refusal)
        return False

    async def push(self, event: dict) -> None:
        """Live-page messages to the person's group (notices and the like): a console socket
        carries RFB only, so they are not for it (without this handler they ended the console)."""

    async def access_changed(self, event: dict) -> None:
        """``core.realtime.access_changed``: the person's roles or enrolments changed."""
        if self.session is not None and not self.ended:
            await self.still_allowed()

    async def console_close(self, event: dict) -> None:
        """``labs.console.console_close``: closed from a page or the API."""
        await self.end(CONSOLE_CLOSED, event.get("reason") or "Closed.")

    async def end(self, code: int, reason: str) -> None:
        if self.ended:
            return
        self.ended = True
        self.reason = reason
        await self.finish()  # recorded before the browser hears of it
        await self.close(code=code, reason=_close_reason(reason))

    async def disconnect(self, code: int) -> None:
        if not self.reason:
            self.reason = "The browser closed the console."
        self.ended = True
        await self.finish()

    async def finish(self) -> None:
        """Once: stop the relay, leave the groups, and record how it ended."""
        if getattr(self, "finished", False) or self.session is None:
            return
        self.finished = True
        current = asyncio.current_task()
        for task in self.tasks:
            if task is not current:
                task.cancel()
        if self.stream is not None:
            with contextlib.suppress(Exception):
                await self.stream.close()
        for name in self.joined:
            await self.channel_layer.group_discard(name, self.channel_name)
        await database_sync_to_async(console.console_ended)(
            session_id=self.session.pk,
            bytes_to_vm=self.bytes_to_vm,
            bytes_from_vm=self.bytes_from_vm,
            reason=self.reason,
        )


def _sees_failure_detail(user, session: ConsoleSession) -> bool:
    return permissions.sees_failure_detail(user, Course.objects.get(labs=session.lab_id))


def _words(error: Exception) -> str:
    if isinstance(error, ValidationError):
        return " ".join(error.messages)
    text = str(error)
    return text[0].lower() + text[1:] if text else "no reason given"
