"""Which queue an operation goes to, and the message that sends it there.

The message names the Celery task (``labs.run_operation``) instead of importing it, so the
request side (services) and the reaper hand work to workers without importing the Celery
entry points (labs.tasks), which import them: no import cycle, none dodged inside a function.

A build (an operation that clones VMs) first waits its turn in its endpoint's build line
(``labs.capacity``) and is sent to a builder only once the endpoint has room for its clones:
waiting holds no worker, and the operation's step says its place in line, kept up to date
as the line moves.
"""

from __future__ import annotations

import logging
from contextvars import ContextVar

import redis
from celery import current_app
from django.conf import settings
from django.db.models import Case, CharField, Count, F, OuterRef, Subquery, Value, When
from django.utils import timezone

from labs import capacity, realtime
from labs.models import LabVM, Operation

logger = logging.getLogger(__name__)

RUN_OPERATION = "labs.run_operation"

# Operations that clone VMs wait for vCenter capacity and run for minutes: they get a
# queue (and workers) of their own, so a class being provisioned never keeps a student's
# power-on or snapshot waiting behind it (docs/benchmarks.md has the measurement).
BUILD_KINDS = frozenset({Operation.Kind.PROVISION, Operation.Kind.CLONE, Operation.Kind.RESET, Operation.Kind.PUBLISH})

# A reset's plan, decided once when it is asked for (labs.services.lab_reset) and kept in the
# operation's params: a ready lab with a baseline is reverted to it, anything else is built
# again. The queue follows the plan and so does ResetLab (which rebuilds only if the baseline
# vanished from vCenter meanwhile).
RESET_REVERTS = "reverts"


# Guide checks run programs in the guests and wait for them (up to a check's timeout, and for
# the endpoint's guest-operation line before that): a class checked at once would hold every
# quick worker for minutes, and a student's power-on or revert would wait behind it.
CHECK_KINDS = frozenset({Operation.Kind.CHECK})


def queue_for(kind: str, *, reverts: bool = False) -> str:
    """The build queue for operations that clone VMs, the checks queue for guide checks, the
    quick one for the rest. A reset that ``reverts`` is quick: it clones nothing, and on the
    build queue it waited minutes behind a class being provisioned (docs/benchmarks.md)."""
    default = settings.CELERY_TASK_DEFAULT_QUEUE
    if kind in CHECK_KINDS:
        return f"{default}-checks"
    builds = kind in BUILD_KINDS and not (kind == Operation.Kind.RESET and reverts)
    return f"{default}-build" if builds else default


def waits_in_line(kind: str, params: dict | None) -> bool:
    """Whether an operation of this kind clones VMs, and so waits for its endpoint's room
    before it goes to a builder (a publish only snapshots the template's VMs)."""
    reverts = bool((params or {}).get(RESET_REVERTS))
    return kind in BUILD_KINDS and kind != Operation.Kind.PUBLISH and not (kind == Operation.Kind.RESET and reverts)


# The operation send_operation has just read, for the admission it may cause at once (the
# usual case of a build when vCenter has room): builds_admitted need not read it again.
_just_read: ContextVar[dict[int, Operation]] = ContextVar("nestlab_dispatch_just_read", default={})  # noqa: B039


def send_operation(operation_id: int, *, task_id: str | None = None, **kwargs) -> None:
    """Hand an operation to a worker on the queue it belongs to; a queued build joins its
    endpoint's build line instead, and goes to a builder when its turn comes.

    Sending a build again (the reaper's safety net) keeps its place in line, and one already
    admitted is sent to a builder again: the runner's claim makes a duplicate a no-op.
    """
    operation = (
        Operation.objects.select_related("endpoint", "lab")
        .annotate(
            lab_vms=Subquery(
                LabVM.objects.filter(lab=OuterRef("lab")).values("lab").annotate(n=Count("pk")).values("n")
            )
        )
        .get(pk=operation_id)
    )
    if kwargs or operation.state != Operation.State.QUEUED or not waits_in_line(operation.kind, operation.params):
        _send(operation_id, operation.kind, operation.params, task_id=task_id, **kwargs)
        return
    vms = (operation.lab_vms or 0) if operation.lab_id else 1
    just_read = _just_read.set({operation.pk: operation})
    try:
        ahead = capacity.build_enqueue(
            endpoint_id=operation.endpoint_id,
            operation_id=operation_id,
            vms=vms,
            limit=operation.endpoint.concurrency_limit,
        )
    finally:
        _just_read.reset(just_read)
    if ahead >= 0:
        line_changed(operation.endpoint_id)
    elif ahead == capacity.ALREADY_ADMITTED:
        _send(operation_id, operation.kind, operation.params, task_id=task_id)


def _send(operation_id: int, kind: str, params: dict | None, *, task_id: str | None = None, **kwargs) -> None:
    queue = queue_for(kind, reverts=bool((params or {}).get(RESET_REVERTS)))
    current_app.send_task(RUN_OPERATION, args=[operation_id], kwargs=kwargs, task_id=task_id, queue=queue)


POOL_TICK = "labs.pool_tick"
# The refill after a take waits this long, once per course: a class clicking Start together costs
# one refill after the rush, not one per click competing with the hand-overs for the quick
# workers and the course's quota lock (bench/warm_start.py).
POOL_NUDGE_DELAY = 3.0


def pool_nudge(course_id: int) -> None:
    """Have a quick worker refill a course's warm pool soon (a Start just took a lab from it);
    beat's minute does it anyway if this message is lost."""
    pending = f"nestlab:pool:course:{course_id}:nudged"
    try:
        if not capacity._redis().set(pending, "1", nx=True, px=int(POOL_NUDGE_DELAY * 1000)):
            return  # a refill is due already, and it will see this take
        current_app.send_task(
            POOL_TICK, args=[course_id], countdown=POOL_NUDGE_DELAY, queue=settings.CELERY_TASK_DEFAULT_QUEUE
        )
    except Exception:
        logger.warning("Cannot nudge the warm pool of course %s; the next minute refills it", course_id, exc_info=True)


def line_words(operation: Operation, ahead: int) -> str:
    """Why a build waits, and its place in line, in words."""
    endpoint = operation.endpoint
    place = "yours is next" if ahead == 0 else f"{ahead} build{'s' if ahead != 1 else ''} ahead of yours"
    return (
        f"Waiting for vCenter capacity: {place} (at most {endpoint.concurrency_limit} clones at once on this vCenter)."
    )


ADMITTED_WORDS = "vCenter has room for it: starting on the next free builder."


def _say(operation: Operation, words: str) -> bool:
    """Write a queued operation's step words and push them; False if it is queued no more
    (or already says so). The heartbeat field (unused while queued) records when, so the
    reaper's resend of a lost message counts its grace from here."""
    if operation.step == words:
        return False
    seq = realtime.next_seq_if(operation, {"state": Operation.State.QUEUED}, step=words, heartbeat_at=timezone.now())
    if seq is None:
        return False
    realtime.operation_changed(operation)
    return True


def builds_admitted(endpoint_id: int, operation_ids: list[int]) -> None:
    """Send the builds ``labs.capacity`` just admitted to a builder, and have the rest of the
    line told their new places (registered with capacity at start-up: labs.apps)."""
    known = _just_read.get()
    admitted = [known[pk] for pk in operation_ids if pk in known]
    if len(admitted) < len(operation_ids):
        admitted += Operation.objects.filter(pk__in=set(operation_ids) - set(known)).select_related("endpoint", "lab")
    # In the line's order, so that builders take them first come, first served too.
    for operation in sorted(admitted, key=lambda operation: operation_ids.index(operation.pk)):
        if operation.state != Operation.State.QUEUED:
            # Cancelled (or run) meanwhile: its room goes to the next in line.
            capacity.build_withdraw(
                endpoint_id=endpoint_id, operation_id=operation.pk, limit=operation.endpoint.concurrency_limit
            )
            continue
        _send(operation.pk, operation.kind, operation.params, task_id=operation.celery_task_id or None)
        _say(operation, ADMITTED_WORDS)
    line_changed(endpoint_id)


TELL_BUILD_LINE = "labs.tell_build_line"
# A line's places are written at most once in this long per endpoint, by a quick worker, this
# long after the first move (so every move of the window is in it): a class of 100 builds,
# admitted one after another, costs one bulk UPDATE and one push per waiting operation a
# second, not one per admission, and no builder spends its time on it. The reaper writes
# every line once a minute as well.
LINE_WORDS_INTERVAL = 1.0


def line_changed(endpoint_id: int) -> None:
    """An endpoint's build line moved: have its places written within ``LINE_WORDS_INTERVAL``."""
    pending = f"nestlab:capacity:endpoint:{endpoint_id}:told"
    try:
        if not capacity.build_line_length(endpoint_id):
            return  # nobody waits: the builds admitted have their words already
        if not capacity._redis().set(pending, "1", nx=True, px=int(LINE_WORDS_INTERVAL * 1000)):
            return  # a write is due already, and it will see this move
    except redis.RedisError:
        logger.warning("Cannot reach Redis to have the build line of endpoint %s told", endpoint_id)
        return
    current_app.send_task(
        TELL_BUILD_LINE, args=[endpoint_id], countdown=LINE_WORDS_INTERVAL, queue=settings.CELERY_TASK_DEFAULT_QUEUE
    )


def line_tell(endpoint_id: int) -> int:
    """Write each waiting build's place in line where it changed (one UPDATE), push those;
    return how many changed."""
    try:
        line = capacity.build_line(endpoint_id)
    except redis.RedisError:
        logger.warning("Cannot read the build line of endpoint %s from Redis", endpoint_id, exc_info=True)
        return 0
    places = {operation_id: ahead for ahead, operation_id in enumerate(line)}
    waiting = Operation.objects.filter(pk__in=places, state=Operation.State.QUEUED).select_related("endpoint", "lab")
    words = {operation.pk: line_words(operation, places[operation.pk]) for operation in waiting}
    changed = {operation.pk: operation for operation in waiting if operation.step != words[operation.pk]}
    if not changed:
        return 0
    now = timezone.now()
    Operation.objects.filter(pk__in=changed, state=Operation.State.QUEUED).update(
        step=Case(*(When(pk=pk, then=Value(words[pk])) for pk in changed), output_field=CharField()),
        heartbeat_at=now,
        seq=F("seq") + 1,
    )
    # Pushed only for those still queued (one may have been admitted or cancelled meanwhile),
    # with the number each row holds now.
    still = Operation.objects.filter(pk__in=changed, state=Operation.State.QUEUED)
    told = 0
    for pk, step, seq in still.values_list("pk", "step", "seq"):
        if step != words[pk]:
            continue
        operation = changed[pk]
        operation.step, operation.seq, operation.heartbeat_at = step, seq, now
        realtime.operation_changed(operation)
        told += 1
    return told


def build_lines_tick() -> None:
    """The reaper's minute: admit builds whose room a dead build's lease gave back, and write
    every line's places (a throttled update may have skipped the last move)."""
    endpoints = (
        Operation.objects.filter(state=Operation.State.QUEUED, kind__in=BUILD_KINDS)
        .values_list("endpoint_id", "endpoint__concurrency_limit")
        .order_by()
        .distinct()
    )
    for endpoint_id, limit in endpoints:
        try:
            capacity.builds_admit(endpoint_id=endpoint_id, limit=limit)
        except Exception:
            logger.warning("Cannot admit builds of endpoint %s", endpoint_id, exc_info=True)
            continue
        line_tell(endpoint_id)


def build_withdrawn(operation: Operation) -> None:
    """A queued build was cancelled: out of its line, and its room (if admitted) to the next."""
    if not waits_in_line(operation.kind, operation.params):
        return
    try:
        capacity.build_withdraw(
            endpoint_id=operation.endpoint_id, operation_id=operation.pk, limit=operation.endpoint.concurrency_limit
        )
    except Exception:
        # The admitted lease runs out on its own; the reaper admits the next then.
        logger.warning("Cannot take operation %s out of its build line", operation.pk, exc_info=True)
        return
    line_changed(operation.endpoint_id)
