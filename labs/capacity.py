"""How many clone-class tasks may run on one vCenter at once, across every worker.

Two lines per endpoint, both in Redis, both first come, first served:

- **Clones**: a fair counting semaphore. Holders and waiters are sorted sets; one Lua script
  drops holders whose lease ran out and waiters that stopped asking (their worker died), and
  admits the waiter at the head of the line when a slot is free. A waiter does not poll: it
  blocks on a wake key of its own (``BLPOP``) that a releasing holder, or the lease sweep,
  pushes for the waiters that can now go; the timeout is only a safety net for a lost wake.
- **Builds**: an operation that will clone waits here *before* it reaches a worker, so a class
  of 100 does not pin 100 worker processes, each waiting for a slot. A build is admitted (and
  only then sent to a builder, by ``labs.dispatch``) while the clones already committed on the
  endpoint leave room: ``LOOKAHEAD`` rounds of the limit, so that one round of clones is
  already waiting in a builder when the running round ends and no slot sits idle while the
  next build is sent. An admitted build holds a lease (renewed while it runs, dropped when its
  clones are done) and its VM count; whoever lowers the load (a build done, a slot of no
  admitted build given back, a lease run out) admits the next builds in the same Lua script
  and hands their ids to the waker ``labs.dispatch`` registers at start-up.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from functools import cache

import redis
from django.conf import settings

from core.errors import ServiceUnavailable

# A holder renews its lease while it works; a dead worker's slot frees itself after this.
LEASE_SECONDS = 60
RENEW_EVERY = 15
# A waiter that has not asked for this long is dropped from the line.
WAITER_STALE_SECONDS = 10
# A waiter is woken by a push; it asks again after this long anyway (a wake lost with a
# dying holder), well inside WAITER_STALE_SECONDS so that it never looks dead.
WAKE_TIMEOUT_SECONDS = 2.0
# Builds admitted at once: their VMs may add up to this many rounds of the endpoint's limit.
LOOKAHEAD = 2
# An admitted build has this long to reach a builder before its room is given to the next
# (its message lost, say: the reaper sends it again); once running it renews a shorter lease.
ADMITTED_SECONDS = 600

# Shared by the scripts: the time, and waking the waiters that the free slots let through.
_NOW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
"""

_WAKE_WAITERS = """
local function wake_waiters(holders, waiters, limit, prefix)
  local free = limit - redis.call('ZCARD', holders)
  if free <= 0 then return end
  for _, w in ipairs(redis.call('ZRANGE', waiters, 0, free - 1)) do
    -- One pending wake per waiter at most: a waiter woken twice would only ask twice.
    redis.call('DEL', prefix .. w)
    redis.call('RPUSH', prefix .. w, '1')
    redis.call('EXPIRE', prefix .. w, 60)
  end
end
"""

# The build line: purge admitted builds whose lease ran out, and admit from the head while
# the load (VMs of admitted builds, plus slots and places taken by anyone else) leaves room.
_BUILDS = """
local function owner_of(token)
  return string.match(token, '^(.*):')
end

local function purge_builds(admitted, demand, now)
  for _, b in ipairs(redis.call('ZRANGEBYSCORE', admitted, '-inf', now)) do
    redis.call('ZREM', admitted, b)
    redis.call('HDEL', demand, b)
  end
end

local function load(holders, waiters, admitted, demand)
  local total = 0
  for _, d in ipairs(redis.call('HVALS', demand)) do total = total + tonumber(d) end
  for _, key in ipairs({holders, waiters}) do
    for _, token in ipairs(redis.call('ZRANGE', key, 0, -1)) do
      local owner = owner_of(token)
      if not owner or not redis.call('ZSCORE', admitted, owner) then total = total + 1 end
    end
  end
  return total
end

local function pump(holders, waiters, builds, wanted, admitted, demand, limit, budget, now, lease)
  local woken = {}
  local total = load(holders, waiters, admitted, demand)
  while true do
    local head = redis.call('ZRANGE', builds, 0, 0)[1]
    if not head then break end
    local n = tonumber(redis.call('HGET', wanted, head) or '1')
    if total >= limit and total + n > budget then break end
    redis.call('ZREM', builds, head)
    redis.call('HDEL', wanted, head)
    redis.call('ZADD', admitted, now + lease, head)
    redis.call('HSET', demand, head, n)
    total = total + n
    table.insert(woken, head)
  end
  return woken
end
"""

_ACQUIRE = (
    _NOW
    + _WAKE_WAITERS
    + """
local holders, waiters, seen = KEYS[1], KEYS[2], KEYS[3]
local token, limit, lease, stale = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local prefix = ARGV[5]
redis.call('ZREMRANGEBYSCORE', holders, '-inf', now)
local dead = redis.call('ZRANGEBYSCORE', seen, '-inf', now - stale)
for _, w in ipairs(dead) do
  redis.call('ZREM', waiters, w)
  redis.call('ZREM', seen, w)
end
if redis.call('ZSCORE', waiters, token) == false then
  redis.call('ZADD', waiters, now, token)
end
redis.call('ZADD', seen, now, token)
redis.call('DEL', prefix .. token)
local position = redis.call('ZRANK', waiters, token)
local free = limit - redis.call('ZCARD', holders)
if position < free then
  redis.call('ZADD', holders, now + lease, token)
  redis.call('ZREM', waiters, token)
  redis.call('ZREM', seen, token)
  -- A lease that ran out (or a dead waiter dropped) may have freed more than this slot.
  wake_waiters(holders, waiters, limit, prefix)
  return -1
end
wake_waiters(holders, waiters, limit, prefix)
return position - math.max(free, 0)
"""
)

_RELEASE = (
    _NOW
    + _WAKE_WAITERS
    + _BUILDS
    + """
local holders, waiters, builds, wanted, admitted, demand = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]
local token, limit, prefix = ARGV[1], tonumber(ARGV[2]), ARGV[3]
local budget, lease, pumps = tonumber(ARGV[4]), tonumber(ARGV[5]), ARGV[6] == '1'
redis.call('ZREM', holders, token)
wake_waiters(holders, waiters, limit, prefix)
-- An admitted build's slot is counted in its VMs until the build is done: giving it back
-- lowers no load. Anyone else's lowers it, and may let a build in.
local owner = owner_of(token)
if not pumps or (owner and redis.call('ZSCORE', admitted, owner)) then return {} end
purge_builds(admitted, demand, now)
return pump(holders, waiters, builds, wanted, admitted, demand, limit, budget, now, lease)
"""
)

_RENEW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
if redis.call('ZSCORE', KEYS[1], ARGV[1]) then
  redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
  return 1
end
return 0
"""

# KEYS: holders, waiters, builds, wanted, admitted, demand. ARGV: build, VMs, limit, budget,
# lease, what ('enqueue': join the line unless admitted; 'start': admitted, running now;
# 'finish': done or gone; 'pump': only admit). Returns {position, admitted now...}; the
# position is -1 when the build is admitted now, -3 when it was already.
_BUILD = (
    _NOW
    + _BUILDS
    + """
local holders, waiters, builds, wanted, admitted, demand = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]
local build, n, limit, budget = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local lease, what = tonumber(ARGV[5]), ARGV[6]
redis.call('ZREMRANGEBYSCORE', holders, '-inf', now)
purge_builds(admitted, demand, now)
local before = build ~= '' and redis.call('ZSCORE', admitted, build)
if what == 'enqueue' then
  if not redis.call('ZSCORE', admitted, build) and not redis.call('ZSCORE', builds, build) then
    redis.call('ZADD', builds, now, build)
    redis.call('HSET', wanted, build, n)
  end
elseif what == 'start' then
  redis.call('ZREM', builds, build)
  redis.call('HDEL', wanted, build)
  redis.call('ZADD', admitted, now + lease, build)
  redis.call('HSET', demand, build, n)
elseif what == 'finish' then
  redis.call('ZREM', builds, build)
  redis.call('HDEL', wanted, build)
  redis.call('ZREM', admitted, build)
  redis.call('HDEL', demand, build)
end
local woken = pump(holders, waiters, builds, wanted, admitted, demand, limit, budget, now, tonumber(ARGV[7]))
local position = -1
if build ~= '' and not redis.call('ZSCORE', admitted, build) then
  position = redis.call('ZRANK', builds, build) or -2
elseif before and what == 'enqueue' then
  position = -3
end
local answer = {position}
for _, b in ipairs(woken) do table.insert(answer, b) end
return answer
"""
)


# A dead run's slots, freed: as many waiters as slots were freed are woken to ask again.
_RELEASE_OWNER = """
local prefix, wake, released = ARGV[1], ARGV[2], 0
for index, key in ipairs(KEYS) do
  for _, token in ipairs(redis.call('ZRANGE', key, 0, -1)) do
    if string.sub(token, 1, string.len(prefix)) == prefix then
      redis.call('ZREM', key, token)
      if index == 1 then released = released + 1 end
    end
  end
end
if released > 0 then
  for _, w in ipairs(redis.call('ZRANGE', KEYS[2], 0, released - 1)) do
    redis.call('DEL', wake .. w)
    redis.call('RPUSH', wake .. w, '1')
    redis.call('EXPIRE', wake .. w, 60)
  end
end
return released
"""


@cache
def _redis() -> redis.Redis:
    return redis.Redis.from_url(settings.REDIS_URL)


# Which of an endpoint's lines a slot belongs to: clones (builds) and guest operations (guide
# checks) each have their own, so a class being graded never waits behind a class being built.
CLONES, GUEST_OPERATIONS = "", "guest"


def _base(endpoint_id: int, line: str = CLONES) -> str:
    return f"nestlab:capacity:endpoint:{endpoint_id}" + (f":{line}" if line else "")


def _keys(endpoint_id: int, line: str = CLONES) -> list[str]:
    base = _base(endpoint_id, line)
    return [f"{base}:holders", f"{base}:waiters", f"{base}:seen"]


def _build_keys(endpoint_id: int) -> list[str]:
    """The build line of an endpoint's clones: waiting builds (and their VM counts), admitted
    builds (and theirs)."""
    base = _base(endpoint_id)
    return [f"{base}:builds", f"{base}:wanted", f"{base}:admitted", f"{base}:demand"]


def _wake_prefix(endpoint_id: int, line: str = CLONES) -> str:
    return f"{_base(endpoint_id, line)}:wake:"


# Who sends admitted builds to a builder: labs.dispatch registers it at start-up (labs.apps),
# because sending reads the operation from the database, which this module never touches.
_waker: Callable[[int, list[int]], None] | None = None


def on_builds_admitted(waker: Callable[[int, list[int]], None]) -> None:
    """Register ``waker(endpoint_id, operation_ids)``, called with builds just admitted."""
    global _waker
    _waker = waker


def _admitted(endpoint_id: int, builds: Sequence[bytes | str]) -> None:
    operation_ids = [_operation_id(build) for build in builds]
    if operation_ids and _waker is not None:
        _waker(endpoint_id, operation_ids)


def build_name(operation_id: int) -> str:
    """An operation's name in the build line, and the owner of its clones' slots."""
    return f"operation-{operation_id}"


def _operation_id(build: bytes | str) -> int:
    text = build.decode() if isinstance(build, bytes) else build
    return int(text.removeprefix("operation-"))


def _unreachable() -> ServiceUnavailable:
    return ServiceUnavailable(
        "Nestlab cannot reach Redis, which shares vCenter capacity between workers; "
        "the operation did not start cloning. Try again once Redis is back."
    )


@contextmanager
def vcenter_slot(
    *,
    endpoint_id: int,
    limit: int,
    on_wait: Callable[[int], None] | None = None,
    client: redis.Redis | None = None,
    owner: str = "",
    line: str = CLONES,
) -> Iterator[None]:
    """Hold one of ``limit`` slots of an endpoint for the duration of the block.

    ``on_wait(ahead)`` is called whenever the number of waiters ahead changes while
    waiting. There is no time limit here: a build waits its turn in line. Any exception
    while waiting (one raised by ``on_wait`` included) takes the waiter out of the line.
    ``owner`` (say "operation-42") marks the slot so ``release_owner`` can free it
    when the run that holds it is known dead.
    """
    connection = client or _redis()
    holders, waiters, seen = keys = _keys(endpoint_id, line)
    token = f"{owner}:{uuid.uuid4().hex}" if owner else uuid.uuid4().hex
    prefix = _wake_prefix(endpoint_id, line)
    acquire = connection.register_script(_ACQUIRE)
    renew = connection.register_script(_RENEW)
    last_reported: int | None = None
    try:
        while True:
            try:
                ahead = int(acquire(keys=keys, args=[token, limit, LEASE_SECONDS, WAITER_STALE_SECONDS, prefix]))
            except redis.ConnectionError as error:
                raise _unreachable() from error
            if ahead < 0:
                break
            if on_wait is not None and ahead != last_reported:
                on_wait(ahead)
                last_reported = ahead
            # Asleep in Redis until a holder leaves (or the safety timeout): no polling.
            try:
                connection.blpop([prefix + token], timeout=WAKE_TIMEOUT_SECONDS)
            except redis.ConnectionError as error:
                raise _unreachable() from error
    except BaseException:
        # With Redis gone, the stale-waiter sweep drops this token once it is back.
        with suppress(redis.RedisError):
            connection.zrem(waiters, token)
            connection.zrem(seen, token)
            connection.delete(prefix + token)
            # Those behind may go now, if this one was at the head with a slot free.
            _release(connection, endpoint_id, line, token, limit)
        raise

    stop = threading.Event()

    def keep() -> None:
        while not stop.wait(RENEW_EVERY):
            try:
                renew(keys=[holders], args=[token, LEASE_SECONDS])
            except redis.RedisError:
                continue  # Redis is down for a moment: try again at the next renewal

    renewer = threading.Thread(target=keep, name="vcenter-slot-lease", daemon=True)
    renewer.start()
    try:
        yield
    finally:
        stop.set()
        # The work is done; with Redis gone the slot frees itself when its lease runs out.
        with suppress(redis.RedisError):
            _release(connection, endpoint_id, line, token, limit)


def _release(connection: redis.Redis, endpoint_id: int, line: str, token: str, limit: int) -> None:
    """Give a slot back, wake the waiters it lets through, and admit builds it makes room for."""
    keys = [*_keys(endpoint_id, line)[:2], *_build_keys(endpoint_id)]
    args = [token, limit, _wake_prefix(endpoint_id, line), LOOKAHEAD * limit, ADMITTED_SECONDS, int(line == CLONES)]
    _admitted(endpoint_id, connection.register_script(_RELEASE)(keys=keys, args=args))


def _build_call(
    what: str, *, endpoint_id: int, operation_id: int | None, vms: int, limit: int, lease: float, client=None
) -> int:
    connection = client or _redis()
    keys = [*_keys(endpoint_id)[:2], *_build_keys(endpoint_id)]
    build = build_name(operation_id) if operation_id is not None else ""
    args = [build, max(1, vms), limit, LOOKAHEAD * limit, lease, what, ADMITTED_SECONDS]
    try:
        position, *admitted = connection.register_script(_BUILD)(keys=keys, args=args)
    except redis.ConnectionError as error:
        raise _unreachable() from error
    _admitted(endpoint_id, admitted)
    return int(position)


def build_enqueue(*, endpoint_id: int, operation_id: int, vms: int, limit: int, client=None) -> int:
    """Put a build in its endpoint's line (where it stays put if it is there already) and
    admit whom the endpoint has room for; return how many builds are ahead of it, or -1 if
    it is admitted now (the waker has been told: it goes to a builder now), or
    ``ALREADY_ADMITTED`` if it was admitted before (its message may have been lost)."""
    return _build_call(
        "enqueue", endpoint_id=endpoint_id, operation_id=operation_id, vms=vms, limit=limit, lease=0, client=client
    )


ALREADY_ADMITTED = -3


def build_withdraw(*, endpoint_id: int, operation_id: int, limit: int, client=None) -> None:
    """A build is done with cloning (or gone: cancelled, failed): its room goes to the next."""
    _build_call(
        "finish", endpoint_id=endpoint_id, operation_id=operation_id, vms=1, limit=limit, lease=0, client=client
    )


def builds_admit(*, endpoint_id: int, limit: int, client=None) -> None:
    """Drop admitted builds whose lease ran out and admit whom there is room for (the reaper's
    safety net for a build that died without saying so)."""
    _build_call("pump", endpoint_id=endpoint_id, operation_id=None, vms=1, limit=limit, lease=0, client=client)


@contextmanager
def build_turn(*, endpoint_id: int, operation_id: int, vms: int, limit: int, client=None) -> Iterator[None]:
    """A build's turn, while it runs up to the end of its clones: it counts ``vms`` against the
    endpoint's room under a lease it renews, and at the end the next builds are admitted.

    A build that reaches a builder some other way (resumed after its worker died, a reset
    that found its baseline gone) is admitted here too: it is running, so it counts.
    """
    connection = client or _redis()
    _build_call(
        "start",
        endpoint_id=endpoint_id,
        operation_id=operation_id,
        vms=vms,
        limit=limit,
        lease=LEASE_SECONDS,
        client=connection,
    )
    admitted = _build_keys(endpoint_id)[2]
    renew = connection.register_script(_RENEW)
    stop = threading.Event()

    def keep() -> None:
        while not stop.wait(RENEW_EVERY):
            with suppress(redis.RedisError):
                renew(keys=[admitted], args=[build_name(operation_id), LEASE_SECONDS])

    renewer = threading.Thread(target=keep, name="build-turn-lease", daemon=True)
    renewer.start()
    try:
        yield
    finally:
        stop.set()
        # With Redis gone, the lease runs out and the next build's admission waits that long.
        with suppress(redis.RedisError, ServiceUnavailable):
            build_withdraw(endpoint_id=endpoint_id, operation_id=operation_id, limit=limit, client=connection)


def build_line(endpoint_id: int, client: redis.Redis | None = None) -> list[int]:
    """The operations waiting in an endpoint's build line, first first."""
    connection = client or _redis()
    return [_operation_id(build) for build in connection.zrange(_build_keys(endpoint_id)[0], 0, -1)]


def build_line_length(endpoint_id: int, client: redis.Redis | None = None) -> int:
    """How many builds wait in an endpoint's line."""
    return (client or _redis()).zcard(_build_keys(endpoint_id)[0])


def release_owner(endpoint_id: int, owner: str, client: redis.Redis | None = None, line: str = CLONES) -> int:
    """Free the slots (and places in line) held under ``owner``; return how many slots.

    For a resumed operation: its earlier run died holding slots, and without this they
    would stay taken until their lease ran out (``LEASE_SECONDS``), keeping the resumed
    run itself waiting behind its own dead clones.
    """
    if not owner:
        raise ValueError("release_owner needs the owner the slots were taken under")
    connection = client or _redis()
    args = [f"{owner}:", _wake_prefix(endpoint_id, line)]
    return int(connection.register_script(_RELEASE_OWNER)(keys=_keys(endpoint_id, line), args=args))


def in_use(endpoint_id: int, client: redis.Redis | None = None, line: str = CLONES) -> tuple[int, int]:
    """(slots held, operations waiting) of one of the endpoint's lines right now, for pages and
    benchmarks."""
    connection = client or _redis()
    holders, waiters, _ = _keys(endpoint_id, line)
    now = time.time()
    return connection.zcount(holders, now, "+inf"), connection.zcard(waiters)
