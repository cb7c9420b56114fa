"""Benchmark: the in-page console through the portal's relay (docs/console.md). Prints the figures.

    .venv/bin/python bench/console_relay.py                       # the defaults below
    .venv/bin/python bench/console_relay.py --sessions 50,200 --seconds 20 --tick 200ms
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres REDIS_URL=redis://127.0.0.1:6379/6 \\
        .venv/bin/python bench/console_relay.py

On a fresh portal (bench/_live.py: a throwaway database, Redis, the simulator with its WebMKS
console host, the demo seed, one daphne as runportal starts it), student1's lab is built in this
process. The clients are browser-like: a session cookie from the login page, the console opened
through the API route the console page calls, then an RFB client (tests/support/rfb.py) on
``ws/console/<key>/`` with the subprotocol ``binary``, as noVNC does.

1. Click to first frame: from the POST that opens a console to the whole first screen received.
2. Keystroke to echo: a key sent, until an update that changes the typed text arrives; the same
   straight to the simulator's console host (a ticket from pyVmomi), so the difference is the
   relay's share.
3. N concurrent consoles, each asking for updates as fast as they come while the simulator's
   screens change every ``--tick``: bytes per second held, daphne's CPU per MB relayed, sessions
   dropped, and the keystroke echo measured again under that load.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import ssl
import sys
import time
import urllib.request

from _live import (
    REPO_ROOT,
    Stack,
    dump_json,
    install_signal_handlers,
    percentile,
    raise_open_files_limit,
    say,
)

TEXT_ROWS = (80, 400)  # the typed text's part of the simulator's 720x400 screen


def _ms(values: list[float]) -> dict:
    if not values:
        return {"p50_ms": None, "p95_ms": None, "n": 0}
    return {
        "p50_ms": round(percentile(values, 50) * 1000, 1),
        "p95_ms": round(percentile(values, 95) * 1000, 1),
        "n": len(values),
    }


class Portal:
    """What the page does: open a console through the API, connect to the relay."""

    def __init__(self, stack: Stack, cookie: str) -> None:
        self.stack = stack
        self.cookie = cookie
        self.csrf = re.search(r"csrftoken=([^;]+)", cookie).group(1)

    def _open(self, lab_id: int, vm_id: int, mode: str) -> dict:
        request = urllib.request.Request(
            f"{self.stack.base_url}/api/v1/labs/{lab_id}/vms/{vm_id}/console/",
            data=json.dumps({"mode": mode}).encode(),
            method="POST",
            headers={
                "Cookie": self.cookie,
                "X-CSRFToken": self.csrf,
                "Content-Type": "application/json",
                "Referer": self.stack.base_url,
            },
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.load(response)

    async def open(self, lab_id: int, vm_id: int, mode: str = "control"):
        from websockets.asyncio.client import connect

        from tests.support.rfb import RfbClient

        session = await asyncio.to_thread(self._open, lab_id, vm_id, mode)
        socket = await connect(
            self.stack.ws_url(session["websocket_path"]),
            additional_headers={"Cookie": self.cookie, "Origin": self.stack.base_url},
            subprotocols=["binary"],
            max_size=None,
            open_timeout=30,
        )
        return socket, RfbClient(socket.send, socket.recv)


async def direct(ticket):
    """An RFB client straight on the simulator's console host (no portal)."""
    from websockets.asyncio.client import connect

    from tests.support.rfb import RfbClient

    context = ssl.create_default_context()
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    socket = await connect(ticket.url, ssl=context, subprotocols=["binary"], max_size=None)
    return socket, RfbClient(socket.send, socket.recv)


async def first_screen(client) -> None:
    await client.handshake()
    await client.request_update(incremental=False)
    await client.read_update()


async def keystroke_echoes(client, count: int) -> list[float]:
    """Seconds from each key sent to the update that shows it (one update request always waiting)."""
    times = []
    await client.request_update(incremental=True)
    letters = "abcdefghijklmnopqrstuvwxyz"
    for index in range(count):
        before = client.region(*TEXT_ROWS)
        started = time.perf_counter()
        await client.tap(ord(letters[index % len(letters)]))
        while True:
            await client.read_update()
            await client.request_update(incremental=True)
            if client.region(*TEXT_ROWS) != before:
                break
        times.append(time.perf_counter() - started)
        if index % 60 == 59:  # start a new line before the screen scrolls
            await client.tap(0xFF0D)
            await client.read_update()
            await client.request_update(incremental=True)
    return times


async def measure(stack: Stack, portal: Portal, lab, vms, options) -> dict:
    from pyVim.connect import Disconnect, SmartConnect
    from pyVmomi import vim

    figures: dict = {}
    router = next(vm for vm in vms if vm.role == "router")

    # 1. Click to first frame.
    opens = []
    for _ in range(options.opens):
        started = time.perf_counter()
        socket, client = await portal.open(lab.pk, router.pk)
        await first_screen(client)
        opens.append(time.perf_counter() - started)
        await socket.close()
    figures["first_frame"] = _ms(opens)

    # 2. Keystroke to echo, through the relay and straight to the host.
    socket, client = await portal.open(lab.pk, router.pk)
    await first_screen(client)
    relayed = await keystroke_echoes(client, options.keys)
    await socket.close()
    sim = stack.sim
    si = await asyncio.to_thread(
        SmartConnect, host=sim.host, port=sim.port, protocol="http", user=sim.username, pwd=sim.password
    )
    try:
        machine = vim.VirtualMachine(router.moref, si._stub)
        ticket = await asyncio.to_thread(machine.AcquireTicket, "webmks")
    finally:
        await asyncio.to_thread(Disconnect, si)
    socket, client = await direct(ticket)
    await first_screen(client)
    straight = await keystroke_echoes(client, options.keys)
    await socket.close()
    figures["keystroke_relayed"] = _ms(relayed)
    figures["keystroke_direct"] = _ms(straight)
    figures["relay_share_ms"] = {
        "p50": round((percentile(relayed, 50) - percentile(straight, 50)) * 1000, 1),
        "p95": round((percentile(relayed, 95) - percentile(straight, 95)) * 1000, 1),
    }

    # 3. Concurrent consoles.
    figures["concurrent"] = []
    for count in options.sessions:
        figures["concurrent"].append(await concurrent(stack, portal, lab, vms, count, options))
    return figures


async def concurrent(stack: Stack, portal: Portal, lab, vms, count: int, options) -> dict:
    running = [vm for vm in vms if vm.power_state == "poweredOn"]
    opened = []
    for index in range(count):
        opened.append(await portal.open(lab.pk, running[index % len(running)].pk, "observe"))
    await asyncio.gather(*(first_screen(client) for _, client in opened))
    received = [0] * count
    dropped: list[str] = []
    stop = asyncio.Event()

    async def stream(index: int, client) -> None:
        try:
            while not stop.is_set():
                await client.request_update(incremental=True)
                before = client.updates
                await client.read_update()
                if client.updates > before:
                    received[index] += 1
        except Exception as error:  # noqa: BLE001 - a dropped session is a figure, not a crash
            if not stop.is_set():
                dropped.append(f"session {index}: {type(error).__name__}: {error}")

    cpu_before, wall_before = stack.daphne_cpu(), time.perf_counter()
    streams = [asyncio.create_task(stream(index, client)) for index, (_, client) in enumerate(opened)]
    await asyncio.sleep(options.seconds / 2)
    # The keystroke echo again, on one more console, while the others stream.
    socket, client = await portal.open(lab.pk, next(vm for vm in vms if vm.role == "router").pk)
    await first_screen(client)
    loaded = await keystroke_echoes(client, options.keys_under_load)
    await socket.close()
    await asyncio.sleep(max(0.0, options.seconds / 2))
    wall = time.perf_counter() - wall_before
    cpu = stack.daphne_cpu() - cpu_before
    stop.set()
    for task in streams:
        task.cancel()
    await asyncio.gather(*streams, return_exceptions=True)
    for socket, _ in opened:
        await socket.close()
    updates = sum(received)
    update_bytes = 4 + 12 + 720 * 16 * 4  # a one-line update (the uptime line)
    megabytes = updates * update_bytes / 1e6
    return {
        "sessions": count,
        "seconds": round(wall, 1),
        "updates": updates,
        "updates_per_session_per_s": round(updates / count / wall, 1),
        "mb_per_s": round(megabytes / wall, 2),
        "daphne_cpu_s": round(cpu, 2),
        "daphne_cpu_share": round(cpu / wall, 2),
        "cpu_ms_per_mb": round(cpu * 1000 / megabytes, 1) if megabytes else None,
        "dropped": len(dropped),
        "dropped_examples": dropped[:5],
        "keystroke_under_load": _ms(loaded),
    }


def report(figures: dict, options) -> None:
    say()
    say(
        f"click to first frame ({figures['first_frame']['n']} opens): p50 {figures['first_frame']['p50_ms']} ms, "
        f"p95 {figures['first_frame']['p95_ms']} ms"
    )
    relayed, straight, share = figures["keystroke_relayed"], figures["keystroke_direct"], figures["relay_share_ms"]
    say(
        f"keystroke to echo ({relayed['n']} keys): through the relay p50 {relayed['p50_ms']} ms, "
        f"p95 {relayed['p95_ms']} ms;"
        f" straight to the host p50 {straight['p50_ms']} ms, p95 {straight['p95_ms']} ms;"
        f" the relay adds p50 {share['p50']} ms, p95 {share['p95']} ms"
    )
    for row in figures["concurrent"]:
        loaded = row["keystroke_under_load"]
        say(
            f"{row['sessions']} consoles for {row['seconds']} s (screens change every {options.tick}): "
            f"{row['updates_per_session_per_s']} updates/s each, {row['mb_per_s']} MB/s in all, daphne CPU "
            f"{row['daphne_cpu_share']:.0%} of a core, {row['cpu_ms_per_mb']} ms CPU per MB, dropped {row['dropped']}; "
            f"keystroke echo meanwhile p50 {loaded['p50_ms']} ms, p95 {loaded['p95_ms']} ms"
        )
        for line in row["dropped_examples"]:
            say(f"  ! {line}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], allow_abbrev=False)
    parser.add_argument("--opens", type=int, default=30, help="consoles opened one after another (30)")
    parser.add_argument("--keys", type=int, default=100, help="keystrokes timed, relayed and direct (100)")
    parser.add_argument("--keys-under-load", type=int, default=40, help="keystrokes timed under load (40)")
    parser.add_argument("--sessions", default="50,200", help="concurrent consoles, comma-separated (50,200)")
    parser.add_argument("--seconds", type=float, default=20.0, help="seconds each concurrent run lasts (20)")
    parser.add_argument("--tick", default="200ms", help="how often every simulated screen changes (200ms)")
    parser.add_argument("--json", help="also write the figures to this file")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory (daphne's log)")
    options = parser.parse_args(argv)
    options.sessions = [int(value) for value in options.sessions.split(",") if value]
    sys.path.insert(0, str(REPO_ROOT))
    install_signal_handlers()
    say(raise_open_files_limit(max(options.sessions, default=0) * 2 + 256))
    # One staff account opens every console (observe), so the per-lab and per-person limits go up.
    os.environ["NESTLAB_CONSOLE_SESSIONS_PER_LAB"] = "10000"
    os.environ["NESTLAB_CONSOLE_SESSIONS_PER_STAFF"] = "10000"
    stack = Stack(watcher=False, keep=options.keep, simulator_args=["-webmks-tick", options.tick])
    started = time.monotonic()
    figures = {}
    try:
        stack.start()
        from portal import demo

        lab = stack.build_lab("student1")
        vms = list(lab.vms.all())
        stack.serve()
        password = next(account.password for account in demo.DEMO_ACCOUNTS if account.username == "admin")
        portal = Portal(stack, stack.login("admin", password))
        say(
            f"ready in {time.monotonic() - started:.0f} s: {stack.database}, {stack.redis}, one daphne; "
            f"lab {lab.name}, {sum(vm.power_state == 'poweredOn' for vm in vms)} of {len(vms)} VMs on"
        )
        figures = asyncio.run(measure(stack, portal, lab, vms, options))
        report(figures, options)
        dump_json(options.json, figures)
    except KeyboardInterrupt:
        say("Interrupted; everything started was stopped.")
        return 130
    finally:
        stack.stop()
    return 0 if figures and not any(row["dropped"] for row in figures["concurrent"]) else 1


if __name__ == "__main__":
    sys.exit(main())
