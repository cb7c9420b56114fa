"""How many clone-class tasks may run on one vCenter at once, across every worker.

A fair (first come, first served) counting semaphore in Redis. Holders and waiters are
sorted sets; one Lua script drops holders whose lease ran out and waiters that stopped
polling (their worker died), and admits the waiter at the head of the line when a slot
is free. A waiter learns its position in the line at every poll, so the operation can
say "3 ahead of you" instead of a bare spinner.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from functools import cache

import redis
from django.conf import settings

from core.errors import ServiceUnavailable

# A holder renews its lease while it works; a dead worker's slot frees itself after this.
LEASE_SECONDS = 60
RENEW_EVERY = 15
# A waiter that has not polled for this long is dropped from the line.
WAITER_STALE_SECONDS = 10
POLL_SECONDS = 0.1

_ACQUIRE = """
local holders, waiters, seen = KEYS[1], KEYS[2], KEYS[3]
local token, limit, lease, stale = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
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
local position = redis.call('ZRANK', waiters, token)
local free = limit - redis.call('ZCARD', holders)
if position < free then
  redis.call('ZADD', holders, now + lease, token)
  redis.call('ZREM', waiters, token)
  redis.call('ZREM', seen, token)
  return -1
end
return position - math.max(free, 0)
"""

_RENEW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
if redis.call('ZSCORE', KEYS[1], ARGV[1]) then
  redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
  return 1
end
return 0
"""


_RELEASE_OWNER = """
local prefix, released = ARGV[1], 0
for index, key in ipairs(KEYS) do
  for _, token in ipairs(redis.call('ZRANGE', key, 0, -1)) do
    if string.sub(token, 1, string.len(prefix)) == prefix then
      redis.call('ZREM', key, token)
      if index == 1 then released = released + 1 end
    end
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


def _keys(endpoint_id: int, line: str = CLONES) -> list[str]:
    base = f"nestlab:capacity:endpoint:{endpoint_id}" + (f":{line}" if line else "")
    return [f"{base}:holders", f"{base}:waiters", f"{base}:seen"]


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
    acquire = connection.register_script(_ACQUIRE)
    renew = connection.register_script(_RENEW)
    last_reported: int | None = None
    try:
        while True:
            try:
                ahead = int(acquire(keys=keys, args=[token, limit, LEASE_SECONDS, WAITER_STALE_SECONDS]))
            except redis.ConnectionError as error:
                raise ServiceUnavailable(
                    "Nestlab cannot reach Redis, which shares vCenter capacity between workers; "
                    "the operation did not start cloning. Try again once Redis is back."
                ) from error
            if ahead < 0:
                break
            if on_wait is not None and ahead != last_reported:
                on_wait(ahead)
                last_reported = ahead
            time.sleep(POLL_SECONDS)
    except BaseException:
        # With Redis gone, the stale-waiter sweep drops this token once it is back.
        with suppress(redis.RedisError):
            connection.zrem(waiters, token)
            connection.zrem(seen, token)
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
            connection.zrem(holders, token)


def release_owner(endpoint_id: int, owner: str, client: redis.Redis | None = None, line: str = CLONES) -> int:
    """Free the slots (and places in line) held under ``owner``; return how many slots.

    For a resumed operation: its earlier run died holding slots, and without this they
    would stay taken until their lease ran out (``LEASE_SECONDS``), keeping the resumed
    run itself waiting behind its own dead clones.
    """
    if not owner:
        raise ValueError("release_owner needs the owner the slots were taken under")
    connection = client or _redis()
    return int(connection.register_script(_RELEASE_OWNER)(keys=_keys(endpoint_id, line), args=[f"{owner}:"]))


def in_use(endpoint_id: int, client: redis.Redis | None = None, line: str = CLONES) -> tuple[int, int]:
    """(slots held, operations waiting) of one of the endpoint's lines right now, for pages and
    benchmarks."""
    connection = client or _redis()
    holders, waiters, _ = _keys(endpoint_id, line)
    now = time.time()
    return connection.zcount(holders, now, "+inf"), connection.zcard(waiters)
