"""What one push to browsers costs from synchronous code (a service, a worker, the watcher): wall
time and new Redis connections per push, the way core.realtime sends now (one event loop per
process) and the way it did before (a new event loop per push, through async_to_sync). Issue 16.

    .venv/bin/python -m portal.embedded_redis -- .venv/bin/python bench/push_cost.py [--pushes 300]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
os.environ.setdefault("NESTLAB_VAR_DIR", tempfile.mkdtemp(prefix="nestlab-bench-"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pushes", type=int, default=300)
    args = parser.parse_args()

    import django

    django.setup()
    import redis
    from asgiref.sync import async_to_sync
    from channels.layers import get_channel_layer
    from django.conf import settings

    from core import realtime

    counter = redis.Redis.from_url(settings.REDIS_URL)
    groups = ["lab.1", "course.1"]
    event = {"type": "push", "message": {"type": "notice", "seq": 0, "level": "info", "text": "x"}}

    def before(groups, event):  # what core.realtime._deliver did until issue 16
        async_to_sync(realtime._send_all)(get_channel_layer(), groups, event)

    print(f"{args.pushes} pushes to two groups each, one process")
    print(f"{'how':<34} {'ms per push (median, p95)':>26} {'new connections per push':>26}")
    for name, deliver in (
        ("a new event loop per push (before)", before),
        ("one loop per process (now)", realtime._deliver),
    ):
        deliver(groups, event)  # warm
        connections = counter.info("stats")["total_connections_received"]
        times = []
        for _ in range(args.pushes):
            started = time.perf_counter()
            deliver(groups, event)
            times.append((time.perf_counter() - started) * 1000)
        opened = counter.info("stats")["total_connections_received"] - connections
        p95 = sorted(times)[int(len(times) * 0.95) - 1]
        print(f"{name:<34} {statistics.median(times):>14.2f} {p95:>10.2f} {opened / args.pushes:>26.2f}")


if __name__ == "__main__":
    main()
