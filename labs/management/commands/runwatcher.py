"""Run the vSphere watchers (one per endpoint) until SIGTERM or Ctrl-C."""

from __future__ import annotations

import signal
import threading

from django.core.management import BaseCommand

from labs.watcher import WatcherPool


class Command(BaseCommand):
    help = "Follow every lab VM on every vCenter endpoint and push changes to browsers."

    def add_arguments(self, parser):
        parser.add_argument("--refresh", type=float, default=30.0, help="Seconds between endpoint list checks.")

    def handle(self, *args, **options):
        done = threading.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: done.set())
        pool = WatcherPool()
        self.stdout.write("vSphere watcher started")
        try:
            while not done.is_set():
                pool.refresh()
                done.wait(options["refresh"])
        finally:
            pool.stop()
            self.stdout.write("vSphere watcher stopped")
