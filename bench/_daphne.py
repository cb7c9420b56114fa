"""daphne as the live benchmarks start it, with switches for measuring. The product is not
edited; these act only inside this process.

    python bench/_daphne.py [daphne arguments...]

- NESTLAB_BENCH_DAPHNE_PROFILE=FILE: cProfile timed in CPU seconds (time.process_time, so
  time lost to other load on the machine does not count), switched on by SIGUSR1 and off
  by SIGUSR2, which also writes the statistics to FILE. The benchmark profiles only the
  events, not the connection burst.
- NESTLAB_BENCH_READY_LINE=1: write "nestlab-bench: daphne is serving" to stderr once the
  reactor runs (daphne has then loaded the application and listens), for daphnes that share
  one socket, where a health check may be answered by another one.
- NESTLAB_BENCH_QUERY_LOG=FILE: after every HTTP request, append "METHOD ROUTE QUERIES" to FILE,
  ROUTE the path with numbers as {id}. Queries are counted per thread: a request's synchronous
  work all runs on one of daphne's request threads (portal/asgi_limit.py).
- NESTLAB_BENCH_PUSH_DIRECT=1 (experiment): a consumer handles `push` events without
  channels' `aclose_old_connections()` hop, which AsyncConsumer.dispatch (channels 4.2+)
  makes before every handler: a sync_to_async call into the one thread that runs database
  work. `push` only relays a message and touches no database.
"""

from __future__ import annotations

import cProfile
import os
import signal
import sys
import time


def _profile(out: str) -> None:
    profiler = cProfile.Profile(time.process_time)

    def start(signum, frame) -> None:
        profiler.enable()  # the main thread: daphne's event loop

    def stop(signum, frame) -> None:
        profiler.disable()
        profiler.dump_stats(out)

    signal.signal(signal.SIGUSR1, start)
    signal.signal(signal.SIGUSR2, stop)


def _gc_log() -> None:
    import gc

    started: dict[int, float] = {}

    def callback(phase: str, info: dict) -> None:
        generation = info["generation"]
        if generation == 0:
            return
        if phase == "start":
            started[generation] = time.monotonic()
        elif generation in started:
            begin = started.pop(generation)
            sys.stderr.write(
                f"nestlab-bench-gc {generation} {begin:.6f} {time.monotonic() - begin:.6f} {info['collected']}\n"
            )

    gc.callbacks.append(callback)


def _gc_freeze() -> None:
    import gc

    from django.urls import get_resolver

    import portal.asgi  # noqa: F401 - sets Django up

    get_resolver().url_patterns  # noqa: B018 - imports every view module now
    gc.collect()
    gc.freeze()
    sys.stderr.write(f"nestlab-bench: gc.freeze() put {gc.get_freeze_count()} objects out of the collector's sight\n")


def _query_log(path: str) -> None:
    import re
    import threading

    from django.core import signals
    from django.db.backends import utils

    import portal.asgi  # noqa: F401 - sets Django up

    counted = threading.local()
    lock = threading.Lock()
    out = open(path, "a", buffering=1)  # noqa: SIM115 - open for the life of the process

    def counting(method):
        def wrapper(self, *args, **kwargs):
            counted.queries = getattr(counted, "queries", 0) + 1
            return method(self, *args, **kwargs)

        return wrapper

    utils.CursorWrapper.execute = counting(utils.CursorWrapper.execute)
    utils.CursorWrapper.executemany = counting(utils.CursorWrapper.executemany)

    def started(sender, scope=None, **kwargs) -> None:
        counted.queries = 0
        counted.route = (
            f"{(scope or {}).get('method', '?')} {re.sub(r'/[0-9]+/', '/{id}/', (scope or {}).get('path', '?'))}"
        )

    def finished(sender, **kwargs) -> None:
        with lock:
            out.write(f"{getattr(counted, 'route', '?')} {getattr(counted, 'queries', 0)}\n")

    signals.request_started.connect(started, weak=False)
    signals.request_finished.connect(finished, weak=False)


def _push_direct() -> None:
    import portal.asgi  # noqa: F401 - sets Django up and imports the consumers
    from labs import consumers

    inherited = consumers._PushConsumer.dispatch

    async def dispatch(self, message):
        if message.get("type") == "push":
            await self.push(message)
        else:
            await inherited(self, message)

    consumers._PushConsumer.dispatch = dispatch


def main() -> None:
    if os.environ.get("NESTLAB_BENCH_DAPHNE_PROFILE"):
        _profile(os.environ["NESTLAB_BENCH_DAPHNE_PROFILE"])
    if os.environ.get("NESTLAB_BENCH_GC_LOG") == "1":
        _gc_log()
    sys.path.insert(0, os.getcwd())
    if os.environ.get("NESTLAB_BENCH_QUERY_LOG"):
        _query_log(os.environ["NESTLAB_BENCH_QUERY_LOG"])
    if os.environ.get("NESTLAB_BENCH_PUSH_DIRECT") == "1":
        _push_direct()
    if os.environ.get("NESTLAB_BENCH_GC_FREEZE") == "1":
        _gc_freeze()
    from daphne.cli import CommandLineInterface

    if os.environ.get("NESTLAB_BENCH_READY_LINE") == "1":
        import daphne.server  # noqa: F401 - installs Twisted's asyncio reactor first
        from twisted.internet import reactor

        reactor.callWhenRunning(lambda: sys.stderr.write("nestlab-bench: daphne is serving\n"))

    sys.argv = ["daphne", *sys.argv[1:]]
    CommandLineInterface.entrypoint()


if __name__ == "__main__":
    main()
