"""Benchmark: from a power change made directly in vCenter to the `vm.state` message at a
browser-like client, through the real watcher and daphne. Prints the figures.

    .venv/bin/python bench/live_latency.py                     # 200 changes
    .venv/bin/python bench/live_latency.py --changes 100
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres REDIS_URL=redis://127.0.0.1:6379/6 \
        .venv/bin/python bench/live_latency.py

On a fresh portal (bench/_live.py: a throwaway database, Redis, the simulator, the demo
seed): student1's lab is built in this process (labs.services.lab_start, then
labs.jobs.execute); daphne and `manage.py runwatcher` run as child processes; student1
signs in through the login page and a `websockets` client opens ws/labs/<id>/ with that
session cookie, as the lab page does. Then the lab's VMs are powered off and on again in
turn with pyVmomi against the simulator (not through the portal). The clock starts when
the PowerOffVM_Task/PowerOnVM_Task call returns and stops when the client has the
matching `vm.state` message. docs/benchmarks.md has the figures and what they mean.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import time

from _live import (
    REPO_ROOT,
    SIMULATOR_BATCH_S,
    Client,
    Stack,
    cpu_words,
    dump_json,
    install_signal_handlers,
    machine_cpu,
    percentile,
    say,
)


async def measure(stack: Stack, lab_id: int, vms: list[dict], cookie: str, options) -> dict:
    from pyVim.connect import Disconnect, SmartConnect
    from pyVmomi import vim

    inbox: list[tuple[float, dict]] = []
    arrived = asyncio.Event()

    def observe(client, now, message):
        inbox.append((now, message))
        arrived.set()

    async def first_after(mark: int, predicate, deadline: float) -> tuple[float | None, int]:
        """The arrival time of the first message from inbox[mark:] that matches, and how many came."""
        index = mark
        while True:
            while index < len(inbox):
                now, message = inbox[index]
                index += 1
                if predicate(message):
                    return now, index - mark
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None, index - mark
            arrived.clear()
            if index < len(inbox):
                continue
            try:
                await asyncio.wait_for(arrived.wait(), remaining)
            except TimeoutError:
                return None, index - mark

    client = Client(0, stack.ws_url(f"/ws/labs/{lab_id}/"), cookie=cookie, origin=stack.base_url, observe=observe)
    if not await client.connect():
        raise RuntimeError(f"The client could not connect: {client.error}")
    sim = stack.sim
    si = await asyncio.to_thread(
        SmartConnect, host=sim.host, port=sim.port, protocol="http", user=sim.username, pwd=sim.password
    )
    rng = random.Random(options.seed)
    power = {vm["id"]: vm["power_state"] for vm in vms}
    latencies: list[float] = []
    calls: list[float] = []
    missed: list[str] = []
    errors: list[str] = []
    extra_messages = 0
    total = options.warmup + options.changes
    cpu_before, machine_before, started = stack.cpu_now(), machine_cpu(), time.monotonic()
    try:
        for number in range(total):
            vm = vms[(number // 2) % len(vms)]
            want = "poweredOff" if power[vm["id"]] == "poweredOn" else "poweredOn"
            target = vim.VirtualMachine(vm["moref"], si._stub)
            method = target.PowerOffVM_Task if want == "poweredOff" else target.PowerOnVM_Task
            mark = len(inbox)
            called = time.monotonic()
            try:
                await asyncio.to_thread(method)
            except Exception as error:  # noqa: BLE001 - reported; the VM's state is read back
                errors.append(f"{vm['role']} -> {want}: {error}")
                power[vm["id"]] = str(await asyncio.to_thread(lambda t=target: t.runtime.powerState))
                continue
            clock = time.monotonic()  # the vCenter call returned: the change exists
            arrival, seen = await first_after(
                mark,
                lambda m, vm_id=vm["id"], want=want: (
                    m.get("type") == "vm.state" and m["vm"]["id"] == vm_id and m["vm"]["power_state"] == want
                ),
                clock + options.timeout,
            )
            power[vm["id"]] = want
            if number >= options.warmup:
                calls.append(clock - called)
                if arrival is None:
                    missed.append(f"change {number - options.warmup + 1}: {vm['role']} -> {want}")
                else:
                    latencies.append(arrival - clock)
                    extra_messages += seen - 1
            # A random pause, so that each change falls at a random point of the
            # simulator's 250 ms batching (right after a message, it would always
            # fall at the same point and bias the figure).
            await asyncio.sleep(rng.uniform(options.pause_min, options.pause_max))
    finally:
        await asyncio.to_thread(Disconnect, si)
        await client.close()
    return {
        "latencies_s": latencies,
        "calls_s": calls,
        "missed": missed,
        "errors": errors,
        "extra_messages": extra_messages,
        "gaps": client.gaps,
        "stale": client.stale,
        "client_error": client.error if client.error and not client.error.startswith("closed") else "",
        "cpu": cpu_words(stack, cpu_before, machine_before, started),
    }


def histogram(values_ms: list[float], width: float = 50.0) -> str:
    if not values_ms:
        return ""
    buckets: dict[int, int] = {}
    for value in values_ms:
        buckets[int(value // width)] = buckets.get(int(value // width), 0) + 1
    top = max(buckets.values())
    lines, previous = [], None
    for bucket in sorted(buckets):
        if previous is not None and bucket > previous + 1:
            lines.append("    ...")
        count = buckets[bucket]
        lines.append(
            f"    {bucket * width:5.0f}-{(bucket + 1) * width:<5.0f} ms {count:4d} {'#' * round(40 * count / top)}"
        )
        previous = bucket
    return "\n".join(lines)


def report(stack: Stack, lab_name: str, vm_count: int, options, figures: dict) -> dict:
    ms = [value * 1000 for value in figures["latencies_s"]]
    calls = [value * 1000 for value in figures["calls_s"]]
    summary = {
        "database": stack.database,
        "redis": stack.redis,
        "changes": options.changes,
        "received": len(ms),
        "missed": len(figures["missed"]),
        "errors": len(figures["errors"]),
        "p50_ms": round(percentile(ms, 50), 1) if ms else None,
        "p95_ms": round(percentile(ms, 95), 1) if ms else None,
        "max_ms": round(max(ms), 1) if ms else None,
        "mean_ms": round(statistics.fmean(ms), 1) if ms else None,
        "min_ms": round(min(ms), 1) if ms else None,
        "vcenter_call_p50_ms": round(percentile(calls, 50), 1) if calls else None,
        "seq_gaps": figures["gaps"],
        "latencies_ms": [round(value, 1) for value in ms],
    }
    batch_ms = SIMULATOR_BATCH_S * 1000
    say("")
    say("Live status: a power change made in vCenter -> vm.state at a browser-like client")
    say(
        f"  setup           {stack.database}, {stack.redis}; one daphne process; manage.py runwatcher; "
        f"the simulator (-demo)"
    )
    say(
        f"  client          websockets, through daphne, ws/labs/<id>/ of {lab_name} ({vm_count} VMs), "
        "student1's session cookie from the login page"
    )
    say(
        f"  changes         {len(ms)} measured of {options.changes} (after {options.warmup} warm-up), "
        f"{len(figures['missed'])} missed (no message within {options.timeout:g} s), "
        f"{len(figures['errors'])} vCenter errors; power off / on of each VM in turn, "
        f"{options.pause_min:g}-{options.pause_max:g} s apart"
    )
    if ms:
        say(
            f"  latency         p50 {summary['p50_ms']:.0f} ms   p95 {summary['p95_ms']:.0f} ms   "
            f"max {summary['max_ms']:.0f} ms   mean {summary['mean_ms']:.0f} ms   (min {summary['min_ms']:.0f} ms)"
        )
        say(histogram(ms))
    say(
        f"  the simulator   hands out PropertyCollector changes on a {batch_ms:.0f} ms ticker (govmomi "
        f"WaitForUpdatesEx), so each change waits 0-{batch_ms:.0f} ms, {batch_ms / 2:.0f} ms on average, "
        "before the watcher even sees it."
    )
    if ms:
        say(
            f"                  Without that wait the mean would be about "
            f"{summary['mean_ms'] - batch_ms / 2:.0f} ms; the fastest change ({summary['min_ms']:.0f} ms) is "
            "the floor of the rest of the path (watcher, database, Redis, daphne, client)."
        )
    say(
        f"  also            the vCenter call itself took {summary['vcenter_call_p50_ms']} ms (p50, not counted); "
        f"seq gaps seen by the client {figures['gaps']}; other messages before the awaited one "
        f"{figures['extra_messages']}"
    )
    say(f"  CPU             {figures['cpu']}")
    for line in figures["missed"][:5] + figures["errors"][:5]:
        say(f"  ! {line}")
    if figures["client_error"]:
        say(f"  ! client: {figures['client_error']}")
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], allow_abbrev=False)
    parser.add_argument("--changes", type=int, default=200, help="power changes to measure (default 200)")
    parser.add_argument("--warmup", type=int, default=4, help="changes made first and not counted (default 4)")
    parser.add_argument("--pause-min", type=float, default=0.3, help="seconds between changes, at least (0.3)")
    parser.add_argument("--pause-max", type=float, default=0.8, help="seconds between changes, at most (0.8)")
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds to wait for each message (10)")
    parser.add_argument("--seed", type=int, default=1, help="random seed of the pauses")
    parser.add_argument("--json", help="also write the figures to this file")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory (daphne and watcher logs)")
    options = parser.parse_args(argv)
    if options.changes < 1 or options.pause_max < options.pause_min:
        parser.error("--changes must be at least 1 and --pause-max at least --pause-min")
    sys.path.insert(0, str(REPO_ROOT))
    install_signal_handlers()

    stack = Stack(watcher=True, keep=options.keep)
    started = time.monotonic()
    try:
        stack.start()
        from portal import demo

        lab = stack.build_lab("student1")
        vms = [{"id": vm.pk, "role": vm.role, "moref": vm.moref, "power_state": vm.power_state} for vm in lab.vms.all()]
        stack.serve()
        password = next(account.password for account in demo.DEMO_ACCOUNTS if account.username == "student1")
        cookie = stack.login("student1", password)
        say(
            f"ready in {time.monotonic() - started:.0f} s: {stack.database}, {stack.redis}, daphne at "
            f"{stack.base_url}, watcher running; lab {lab.name} with {len(vms)} VMs"
        )
        figures = asyncio.run(measure(stack, lab.pk, vms, cookie, options))
        summary = report(stack, lab.name, len(vms), options, figures)
        dump_json(options.json, summary)
    except KeyboardInterrupt:
        say("Interrupted; everything started was stopped.")
        return 130
    finally:
        stack.stop()
    return 0 if summary["received"] == options.changes and not summary["errors"] else 1


if __name__ == "__main__":
    sys.exit(main())
