"""Attempts counted in Redis, across every portal process: how often one person or address may
try something that guesses a secret (an old password, a reset e-mail) before being told to wait.

A fixed window per key: the first attempt starts it, each one counts, and the window's end
forgives them all. Redis down: the attempt is allowed (sign-in still works) and the log says so.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import redis
from django.conf import settings

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Limit:
    """At most ``attempts`` in ``window_seconds``, per key (``name`` keeps limits apart)."""

    name: str
    attempts: int
    window_seconds: int


def _client() -> redis.Redis:
    return redis.Redis.from_url(settings.REDIS_URL, socket_timeout=2)


def _key(limit: Limit, who: str) -> str:
    return f"nestlab:limit:{limit.name}:{who}"


def attempt(limit: Limit, who: str) -> bool:
    """Count one attempt by ``who``; False once they are over the limit in this window."""
    key = _key(limit, who)
    try:
        client = _client()
        count = client.incr(key)
        if count == 1:
            client.expire(key, limit.window_seconds)
        return count <= limit.attempts
    except redis.RedisError:
        logger.warning("Could not count an attempt of %s (Redis); allowed it", limit.name, exc_info=True)
        return True


def wait_minutes(limit: Limit, who: str) -> int:
    """Minutes (rounded up) until ``who`` may try again."""
    try:
        seconds = _client().ttl(_key(limit, who))
    except redis.RedisError:
        return 1
    return max(1, -(-max(seconds, 0) // 60))


def forgive(limit: Limit, who: str) -> None:
    """Forget ``who``'s attempts (after a success)."""
    try:
        _client().delete(_key(limit, who))
    except redis.RedisError:
        logger.warning("Could not reset the attempts of %s (Redis)", limit.name, exc_info=True)


def forget_all() -> None:
    """Forget every count (tests; an admin's reset after an incident)."""
    client = _client()
    for key in client.scan_iter("nestlab:limit:*"):
        client.delete(key)
