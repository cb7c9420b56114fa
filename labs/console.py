"""Console sessions: the services behind the in-page console (docs/console.md).

The page, the API and the relay (``labs.consumers.ConsoleConsumer``) call these, so the checks,
limits, records and audit entries are written once. vCenter's ticket never leaves the server:
the browser gets a session ``key`` for ``ws/console/<key>/``, valid once and for
``NESTLAB_CONSOLE_CONNECT_SECONDS``; the relay asks for the ticket when the browser arrives.

Who may open which console:
- control (keyboard and mouse): whoever may act on the lab (its student while enrolled, the
  course's instructors, admins);
- observe (read-only, the relay drops input): the course's instructors and admins.
"""

from __future__ import annotations

import secrets
from datetime import timedelta

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from core import realtime as groups
from core.audit import Category, Result, Source, audit_record, describe, never_fails
from core.errors import QuotaExceeded
from courses import permissions as course_permissions
from labs import endpoints, permissions, realtime, services, vsphere
from labs.models import ConsoleSession, Lab, LabVM

# States of a lab in which its VMs have a console worth opening.
CONSOLE_LAB_STATES = (Lab.State.READY, Lab.State.BUSY)


def _key() -> str:
    return secrets.token_urlsafe(32)


def _live_sessions():
    """Sessions that hold a place: open with a recent heartbeat (a relay that died without
    closing stops holding one), or waiting for the browser and not yet expired."""
    now = timezone.now()
    alive = now - timedelta(seconds=settings.NESTLAB_CONSOLE_HEARTBEAT_SECONDS * 3)
    waiting = now - timedelta(seconds=settings.NESTLAB_CONSOLE_CONNECT_SECONDS)
    return ConsoleSession.objects.filter(
        Q(state=ConsoleSession.State.OPEN, heartbeat_at__gte=alive)
        | Q(state=ConsoleSession.State.PENDING, created_at__gte=waiting)
    )


def may_control(user: AbstractBaseUser, lab: Lab) -> bool:
    return permissions.can_act_on_lab(user, lab)


def may_observe(user: AbstractBaseUser, lab: Lab) -> bool:
    return user.is_authenticated and course_permissions.can_manage_course(user, lab.course)


def _require(actor: AbstractBaseUser, lab: Lab, mode: str) -> None:
    if mode == ConsoleSession.Mode.OBSERVE:
        if not may_observe(actor, lab):
            raise PermissionDenied("Only the course's instructors and admins observe a student's console.")
    elif not may_control(actor, lab):
        if permissions.is_removed_owner(actor, lab):
            raise PermissionDenied(
                f"You are no longer enrolled in {lab.course.code}: you can see {lab.name} but not use its consoles."
            )
        raise PermissionDenied("This is not your lab.")


def _per_user_limit(actor: AbstractBaseUser, lab: Lab) -> int:
    staff = course_permissions.can_manage_course(actor, lab.course)
    return settings.NESTLAB_CONSOLE_SESSIONS_PER_STAFF if staff else settings.NESTLAB_CONSOLE_SESSIONS_PER_USER


def console_open(
    *, lab: Lab, vm: LabVM, actor: AbstractBaseUser, mode: str = ConsoleSession.Mode.CONTROL
) -> ConsoleSession:
    """Open the console of one VM of a lab: a session the browser connects to once, within
    ``NESTLAB_CONSOLE_CONNECT_SECONDS``. Refused in words: no right to it, a VM of another lab,
    a lab being built or deleted, a VM that is off (power it on first), too many consoles open."""
    if mode not in ConsoleSession.Mode.values:
        raise ValidationError({"mode": f"Choose one of: {', '.join(ConsoleSession.Mode.values)}."})
    _require(actor, lab, mode)
    if vm.lab_id != lab.pk:
        raise ValidationError({"vm": "That VM belongs to another lab."})
    with transaction.atomic():
        locked = Lab.objects.select_for_update(of=("self",)).select_related("course").get(pk=lab.pk)
        if locked.state not in CONSOLE_LAB_STATES:
            raise ValidationError(
                f"{locked.name} is {locked.get_state_display().lower()}: its consoles are not available."
            )
        vm = LabVM.objects.get(pk=vm.pk)
        if not vm.is_on:
            raise ValidationError(f"{vm.role} is powered off: power it on to use its console.")
        if not vm.moref:
            raise ValidationError(f"{vm.role} is not in vCenter yet.")
        live = _live_sessions()
        per_lab = settings.NESTLAB_CONSOLE_SESSIONS_PER_LAB
        if live.filter(lab=locked).count() >= per_lab:
            raise QuotaExceeded(
                f"{locked.name} already has {per_lab} consoles open, the most allowed: close one first."
            )
        per_user = _per_user_limit(actor, locked)
        if live.filter(user=actor).count() >= per_user:
            raise QuotaExceeded(f"You already have {per_user} consoles open, the most allowed: close one first.")
        session = ConsoleSession.objects.create(key=_key(), user=actor, lab=locked, vm=vm, vm_name=vm.name, mode=mode)
    if mode == ConsoleSession.Mode.CONTROL:
        services.lab_touch(lab=lab, user=actor)
    return session


def console_connect(*, key: str, user: AbstractBaseUser) -> ConsoleSession:
    """The browser arrived at ``ws/console/<key>/``: the session is theirs, not used yet, not
    expired, and they may still open it. It is OPEN from now on."""
    now = timezone.now()
    with transaction.atomic():
        session = (
            ConsoleSession.objects.select_for_update(of=("self",))
            .select_related("lab__course", "vm", "lab__endpoint", "user")
            .filter(key=key)
            .first()
        )
        if session is None or session.user_id != user.pk:
            raise PermissionDenied("This console link is not yours.")
        if session.state != ConsoleSession.State.PENDING:
            raise PermissionDenied("This console link was used already: open the console again.")
        if session.created_at < now - timedelta(seconds=settings.NESTLAB_CONSOLE_CONNECT_SECONDS):
            session.state, session.closed_at = ConsoleSession.State.CLOSED, now
            session.close_reason = "The browser did not connect in time."
            session.save(update_fields=["state", "closed_at", "close_reason"])
            raise PermissionDenied("This console link expired: open the console again.")
        refusal = console_refusal(session, user=user)
        if refusal:
            raise PermissionDenied(refusal)
        session.state, session.connected_at, session.heartbeat_at = ConsoleSession.State.OPEN, now, now
        session.save(update_fields=["state", "connected_at", "heartbeat_at"])
    console_opened(session)
    if session.user_id != session.lab.student_id:
        _announce_presence(session.lab)
    if session.mode == ConsoleSession.Mode.CONTROL and session.user_id != session.lab.student_id:
        # The student sees that someone else has their keyboard (an observer is not announced
        # per connection: the class view would flood them).
        name = user.get_full_name() or user.get_username()
        role = session.vm.role if session.vm else session.vm_name
        realtime.notify_user(
            session.lab.student_id, f"{name} is connected to the console of {role} and can type in it.", level="info"
        )
    return session


def console_refusal(session: ConsoleSession, *, user: AbstractBaseUser | None = None) -> str | None:
    """None while the session may go on, else why not (in words): the person may no longer
    open it (removed from the course, no longer an instructor, account disabled) or the lab is
    no longer there."""
    from django.contrib.auth import get_user_model

    fresh = get_user_model().objects.filter(pk=session.user_id, is_active=True).first()
    if fresh is None:
        return "Your account is no longer active."
    lab = Lab.objects.select_related("course").filter(pk=session.lab_id).first()
    if lab is None or lab.state not in CONSOLE_LAB_STATES:
        return "The lab is no longer available."
    allowed = may_observe(fresh, lab) if session.mode == ConsoleSession.Mode.OBSERVE else may_control(fresh, lab)
    if not allowed:
        if permissions.is_removed_owner(fresh, lab):
            return f"You are no longer enrolled in {lab.course.code}: the console closed."
        return "You may no longer use this console."
    return None


def console_ticket(session: ConsoleSession) -> vsphere.ConsoleTicket:
    """A fresh WebMKS ticket for the session's VM, from the lab's vCenter (its console account
    when it has one: acquiring a ticket is all that account may do)."""
    endpoint = session.lab.endpoint
    client = endpoints.console_client(endpoint) if endpoint.has_console_account else endpoints.endpoint_client(endpoint)
    return client.console_ticket(session.vm.moref if session.vm else "")


def console_stream_options(session: ConsoleSession) -> dict:
    """How the relay checks the ESXi host's certificate when the ticket has no thumbprint."""
    endpoint = session.lab.endpoint
    return {"verify_tls": endpoint.verify_tls, "timeout": settings.NESTLAB_CONSOLE_HOST_TIMEOUT_SECONDS}


def console_heartbeat(*, session: ConsoleSession, bytes_to_vm: int, bytes_from_vm: int, input_seen: bool) -> None:
    """The relay is alive: counters so far; input keeps the lab from idling."""
    now = timezone.now()
    fields = {"heartbeat_at": now, "bytes_to_vm": bytes_to_vm, "bytes_from_vm": bytes_from_vm}
    if input_seen:
        fields["last_input_at"] = now
    ConsoleSession.objects.filter(pk=session.pk, state=ConsoleSession.State.OPEN).update(**fields)
    if input_seen and session.mode == ConsoleSession.Mode.CONTROL:
        # The relay's own copy: lab_touch re-checks the person against the lab as it is now.
        services.lab_touch(lab=session.lab, user=session.user)


def console_ended(*, session_id: int, bytes_to_vm: int, bytes_from_vm: int, reason: str) -> None:
    """The relay closed: the record gets its end, counters and why, and the audit log an entry."""
    now = timezone.now()
    with transaction.atomic():
        session = (
            ConsoleSession.objects.select_for_update(of=("self",)).select_related("lab", "user").get(pk=session_id)
        )
        if session.state == ConsoleSession.State.CLOSED:
            return
        session.state, session.closed_at = ConsoleSession.State.CLOSED, now
        session.bytes_to_vm, session.bytes_from_vm = bytes_to_vm, bytes_from_vm
        session.close_reason = reason[:500]
        session.save(update_fields=["state", "closed_at", "bytes_to_vm", "bytes_from_vm", "close_reason"])
        if session.user_id != session.lab.student_id:
            _announce_presence(session.lab)
    console_closed_audit(session)


def console_close(*, session: ConsoleSession, actor: AbstractBaseUser) -> ConsoleSession:
    """Close a console from the page or the API: its own person, the course's instructors and
    admins may. The relay is told at once and ends the connection."""
    if session.user_id != actor.pk and not may_observe(actor, session.lab):
        raise PermissionDenied("Only the person whose console it is, the course's instructors and admins close it.")
    reason = "Closed by its user." if session.user_id == actor.pk else f"Closed by {actor.get_username()}."
    if session.state == ConsoleSession.State.PENDING:
        console_ended(session_id=session.pk, bytes_to_vm=0, bytes_from_vm=0, reason=reason)
    elif session.state == ConsoleSession.State.OPEN:
        groups.internal_event([console_group(session.pk)], {"type": "console.close", "reason": reason})
    session.refresh_from_db()
    return session


def console_presence(lab: Lab) -> list[dict]:
    """Who else than its student has one of the lab's consoles open now: what the student sees
    ("Amanda Harding is on router's console, can type"). Their own consoles are not listed."""
    alive = timezone.now() - timedelta(seconds=settings.NESTLAB_CONSOLE_HEARTBEAT_SECONDS * 3)
    sessions = (
        ConsoleSession.objects.filter(lab=lab, state=ConsoleSession.State.OPEN, heartbeat_at__gte=alive)
        .exclude(user_id=lab.student_id)
        .select_related("user", "vm")
        .order_by("connected_at", "pk")
    )
    return [
        {
            "user": session.user.get_username(),
            "name": session.user.get_full_name() or session.user.get_username(),
            "vm": session.vm.role if session.vm else session.vm_name,
            "mode": session.mode,
        }
        for session in sessions
    ]


def presence_words(entries: list[dict]) -> str:
    """The sentence the lab page shows for ``console_presence`` (static/js/live.js writes the same)."""
    parts = [f"{e['name']} ({e['vm']}, {'can type' if e['mode'] == 'control' else 'watching'})" for e in entries]
    return "On this lab's consoles now: " + ", ".join(parts) + "." if parts else ""


def _announce_presence(lab: Lab) -> None:
    """Tell the lab's live pages who is on its consoles (``lab.consoles``, docs/websocket.md)."""
    groups.publish(
        [groups.lab_group(lab.pk)],
        {"type": "lab.consoles", "seq": 0, "lab": lab.pk, "consoles": console_presence(lab)},
    )


def console_group(session_id: int) -> str:
    return f"console-{session_id}"


# The audit log


@never_fails
def console_opened(session: ConsoleSession) -> None:
    audit_record(
        category=Category.CONSOLE,
        action=f"console.{session.mode}",
        result=Result.SUCCEEDED,
        actor=session.user,
        target=describe(session.lab),
        detail=f"Opened the console of {session.vm_name} ({session.get_mode_display().lower()}).",
        source=Source.WEBSOCKET,
    )


@never_fails
def console_closed_audit(session: ConsoleSession) -> None:
    seconds = (session.closed_at - session.connected_at).total_seconds() if session.connected_at else 0
    audit_record(
        category=Category.CONSOLE,
        action="console.close",
        result=Result.SUCCEEDED,
        actor=session.user,
        target=describe(session.lab),
        detail=(
            f"The console of {session.vm_name} closed after {seconds:.0f} s "
            f"({session.bytes_to_vm} bytes to the VM, {session.bytes_from_vm} from it): {session.close_reason}"
        ),
        source=Source.WEBSOCKET,
    )
