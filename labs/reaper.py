"""The reaper: no operation stays queued or running forever.

Run at worker start and every minute (Celery beat). An operation whose heartbeat stopped
(its worker died: SIGKILL, out of memory, a host lost) is handed to a worker again, and
its idempotent steps pick up where they can; after ``MAX_ATTEMPTS`` starts it is abandoned
instead: its job undoes what it made and it ends failed, saying why in words. A queued
operation whose message was lost (Redis flushed or restarted empty) is sent again.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from labs.dispatch import build_lines_tick, send_operation
from labs.models import Operation

logger = logging.getLogger(__name__)

MAX_ATTEMPTS = 2
# A queued operation not picked up for this long is sent again (the claim makes a
# duplicate delivery harmless).
QUEUED_GRACE = timedelta(minutes=5)

ABANDON_REASON = (
    "The worker running this operation stopped {attempts} times (it was killed or lost); "
    "Nestlab undid what it could and gave up. Try again; if it keeps happening, tell an admin."
)


@dataclass
class Reaped:
    resumed: list[int] = field(default_factory=list)
    abandoned: list[int] = field(default_factory=list)
    resent: list[int] = field(default_factory=list)


def reap() -> Reaped:
    now = timezone.now()
    stale_before = now - timedelta(seconds=settings.NESTLAB_OPERATION_HEARTBEAT_TIMEOUT)
    reaped = Reaped()
    stale = Operation.objects.filter(state=Operation.State.RUNNING, heartbeat_at__lt=stale_before)
    for operation in stale.only("pk", "attempts", "kind"):
        if operation.attempts < MAX_ATTEMPTS:
            logger.warning("Operation %s lost its worker; sending it again", operation.pk)
            send_operation(operation.pk)
            reaped.resumed.append(operation.pk)
        else:
            logger.warning("Operation %s lost its worker %s times; abandoning it", operation.pk, operation.attempts)
            send_operation(operation.pk, abandon_reason=ABANDON_REASON.format(attempts=operation.attempts))
            reaped.abandoned.append(operation.pk)
    # Queued and not sent (again) within the grace period. Builds can wait long in their own
    # queue, so each resend is remembered in heartbeat_at (unused while queued) and the next
    # one waits a full grace period again: a long queue is not flooded with duplicates.
    lost = Operation.objects.filter(state=Operation.State.QUEUED, created_at__lt=now - QUEUED_GRACE).filter(
        Q(heartbeat_at__isnull=True) | Q(heartbeat_at__lt=now - QUEUED_GRACE)
    )
    # A build waiting in its endpoint's line is sent again too: that keeps its place (and
    # sends it to a builder if it was admitted and its message lost). Oldest first, so that a
    # line Redis lost is made again in the order of the clicks.
    for operation in lost.only("pk").order_by("created_at", "pk"):
        send_operation(operation.pk)
        Operation.objects.filter(pk=operation.pk, state=Operation.State.QUEUED).update(heartbeat_at=now)
        reaped.resent.append(operation.pk)
    build_lines_tick()
    return reaped
