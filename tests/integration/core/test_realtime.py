"""core/realtime.py with Redis down: a push is logged and dropped, quickly, never raised."""

import logging
import time

import pytest

from core import realtime
from portal.simulator import free_port


@pytest.fixture
def redis_down(settings):
    from channels.layers import channel_layers

    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [f"redis://127.0.0.1:{free_port()}/0"]},
        }
    }
    channel_layers.backends.clear()
    yield
    channel_layers.backends.clear()


@pytest.mark.django_db
def test_a_push_with_redis_down_is_dropped_without_raising_or_stalling(
    redis_down, caplog, django_capture_on_commit_callbacks
):
    started = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="core.realtime"), django_capture_on_commit_callbacks(execute=True):
        realtime.publish(["lab.1"], {"type": "notice", "seq": 0, "level": "info", "text": "hello"})
    assert time.monotonic() - started < realtime.PUSH_TIMEOUT_SECONDS + 1
    assert "Dropped a realtime push to lab.1" in caplog.text


def test_pushes_reuse_their_redis_connections_instead_of_opening_one_each():
    """Issue 16: every push opened a new Redis connection (a new event loop each time, and
    channels_redis keeps its pools per loop)."""
    import redis
    from django.conf import settings

    from core import realtime as pushes

    counter = redis.Redis.from_url(settings.REDIS_URL)
    pushes._deliver(["lab.1"], {"type": "push", "message": {"type": "notice"}})  # the first one connects
    before = counter.info("stats")["total_connections_received"]
    for _ in range(20):
        pushes._deliver(["lab.1", "course.1"], {"type": "push", "message": {"type": "notice"}})
    assert counter.info("stats")["total_connections_received"] - before <= 2
