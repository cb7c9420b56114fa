"""How many WebSockets one person may hold open at once, across every portal process.

One student opened 378 live-status sockets (issue 10, finding 7): each holds a consumer, a
Redis subscription and pushes fanned out to it. A person's open sockets are a sorted set in
Redis, one member per socket, scored with the time its claim runs out. One Lua script drops
members whose claim ran out (a process that died without saying goodbye) and admits the new
socket only while fewer than the limit remain, so two tabs opening at once cannot both take
the last place. An open socket renews its claim every ``RENEW_SECONDS``; a closed one gives
its place back at once.
"""

from __future__ import annotations

import asyncio
import logging
import weakref

import redis.asyncio as aioredis
from django.conf import settings

logger = logging.getLogger(__name__)

# A claim runs out this long after its last renewal, which frees the place of a socket whose
# process died; an open socket renews well before that.
CLAIM_SECONDS = 90
RENEW_SECONDS = 30

_CLAIM = """
local key, member, limit, claim = KEYS[1], ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
redis.call('ZREMRANGEBYSCORE', key, '-inf', now)
if redis.call('ZSCORE', key, member) == false and redis.call('ZCARD', key) >= limit then
  return 0
end
redis.call('ZADD', key, now + claim, member)
redis.call('EXPIRE', key, math.ceil(claim))
return 1
"""

_RENEW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
if redis.call('ZSCORE', KEYS[1], ARGV[1]) then
  redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
  redis.call('EXPIRE', KEYS[1], math.ceil(tonumber(ARGV[2])))
  return 1
end
return 0
"""

# One client per event loop: an asyncio Redis connection belongs to the loop that opened it.
_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, aioredis.Redis] = weakref.WeakKeyDictionary()


def _client() -> aioredis.Redis:
    loop = asyncio.get_running_loop()
    client = _clients.get(loop)
    if client is None:
        client = _clients[loop] = aioredis.Redis.from_url(settings.REDIS_URL)
    return client


def user_key(user_id: int) -> str:
    return f"nestlab:websockets:user:{user_id}"


def limit_words(limit: int) -> str:
    return (
        f"You have {limit} live pages open already, the most one person may have. Close some of "
        "your Nestlab tabs; this page reconnects by itself when one is closed."
    )


class SocketSlot:
    """One socket's place among its person's open sockets (``NESTLAB_WS_PER_USER_LIMIT``)."""

    def __init__(self, *, user_id: int, socket_id: str, limit: int | None = None) -> None:
        self.key = user_key(user_id)
        self.socket_id = socket_id
        self.limit = settings.NESTLAB_WS_PER_USER_LIMIT if limit is None else limit
        self._renewer: asyncio.Task | None = None

    async def claim(self) -> bool:
        """Take a place: False when the person has ``limit`` sockets open already.

        If Redis cannot be reached the socket is let in (and the failure logged): the
        limit protects the push fan-out, which needs the same Redis and is down with it."""
        try:
            admitted = await _client().eval(_CLAIM, 1, self.key, self.socket_id, self.limit, CLAIM_SECONDS)
        except aioredis.RedisError:
            logger.warning("Could not count open WebSockets for %s; letting this one in", self.key, exc_info=True)
            return True
        if admitted:
            self._renewer = asyncio.get_running_loop().create_task(self._renew_while_open())
        return bool(admitted)

    async def release(self) -> None:
        """Give the place back (on disconnect); harmless when none was taken."""
        if self._renewer is not None:
            self._renewer.cancel()
            self._renewer = None
        try:
            await _client().zrem(self.key, self.socket_id)
        except aioredis.RedisError:  # the claim runs out by itself
            logger.warning("Could not free a WebSocket place in %s", self.key, exc_info=True)

    async def _renew_while_open(self) -> None:
        while True:
            await asyncio.sleep(RENEW_SECONDS)
            try:
                await _client().eval(_RENEW, 1, self.key, self.socket_id, CLAIM_SECONDS)
            except aioredis.RedisError:
                logger.warning("Could not renew a WebSocket place in %s", self.key, exc_info=True)


async def open_sockets(user_id: int) -> int:
    """How many sockets the person holds now (for tests and the admin's curiosity)."""
    client = _client()
    await client.zremrangebyscore(user_key(user_id), "-inf", f"({await _now(client)}")
    return int(await client.zcard(user_key(user_id)))


async def _now(client: aioredis.Redis) -> float:
    seconds, micros = await client.time()
    return seconds + micros / 1_000_000
