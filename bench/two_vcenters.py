"""Benchmark: one class provisioned over two vCenters against the same class on one.

    .venv/bin/python bench/two_vcenters.py                  # 200 students, one vCenter then two
    .venv/bin/python bench/two_vcenters.py --students 100

Each run, in a child process of its own, on fresh everything (as bench/provision_class.py,
whose helpers it uses): a SQLite file (or a throwaway PostgreSQL database when DATABASE_URL is
set), an embedded Redis (or REDIS_URL), the demo seed, N students, no quota limits. "one":
one simulator, one builder process of --concurrency. "two": a second simulator with the same
demo inventory and the same concurrency limit, the demo template published to it too
(labs.jobs.publish, an extra endpoint), and a builder of --concurrency per endpoint. Then
"provision the class" and a wait until every lab is ready; the wall time of each, their ratio
(goal: at most 0.55) and the machine's load are printed. docs/benchmarks.md has the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from provision_class import (
    REPO_ROOT,
    VMS_PER_LAB,
    ThrowawayPostgres,
    Worker,
    _install_signal_handlers,
    _say,
    ideal_seconds,
)

sys.path.insert(0, str(REPO_ROOT))


def run_one(options: argparse.Namespace) -> dict:
    endpoints_wanted = 2 if options.mode == "two" else 1
    students = options.students
    workdir = Path(tempfile.mkdtemp(prefix="nestlab-bench-2vc-"))
    queue = f"nestlab-bench-{uuid.uuid4().hex[:8]}"
    postgres = ThrowawayPostgres(os.environ["DATABASE_URL"]) if os.environ.get("DATABASE_URL") else None
    sims, workers, redis_context = [], [], None
    try:
        env = {
            "NESTLAB_VAR_DIR": str(workdir),
            "NESTLAB_CELERY_QUEUE": queue,
            "DJANGO_SETTINGS_MODULE": "portal.settings",
        }
        if postgres is not None:
            env["DATABASE_URL"] = postgres.create()
        else:
            os.environ.pop("DATABASE_URL", None)
        if os.environ.get("REDIS_URL"):
            redis_url = os.environ["REDIS_URL"]
        else:
            from portal.embedded_redis import embedded_redis

            redis_context = embedded_redis(data_dir=workdir / "redis")
            redis_url = redis_context.__enter__()
        env["REDIS_URL"] = redis_url
        os.environ.update(env)
        os.environ["LOG_LEVEL"] = "WARNING"

        from portal import simulator

        for _ in range(endpoints_wanted):
            sims.append(simulator.start(args=["-demo", "-task-duration", f"CloneVM_Task={options.clone_seconds:g}s"]))

        import django

        django.setup()
        from django.contrib.auth import get_user_model
        from django.core.management import call_command

        from courses import services as course_services
        from courses.models import CourseQuota, Enrollment, VCenterEndpoint
        from labs import services
        from labs.jobs import execute
        from labs.models import Lab, Operation
        from portal import demo

        call_command("migrate", verbosity=0)
        course = demo.seed_demo(
            vcenter_url=sims[0].url, vcenter_user=sims[0].username, vcenter_password=sims[0].password
        )
        User = get_user_model()
        instructor, admin = User.objects.get(username="instructor"), User.objects.get(username="admin")
        template = course.template_version.template
        first = template.endpoint
        endpoints = [first]
        if endpoints_wanted == 2:
            second = VCenterEndpoint(
                name="Second vCenter (simulator)",
                url=sims[1].url,
                username=sims[1].username,
                verify_tls=first.verify_tls,
                datacenter=first.datacenter,
                compute_path=first.compute_path,
                datastore=first.datastore,
                lab_switch=first.lab_switch,
                vlan_min=first.vlan_min,
                vlan_max=first.vlan_max,
            )
            second.set_password(sims[1].password)
            second.save()
            endpoints.append(second)
            course_services.template_update(template=template, actor=instructor, extra_endpoints=[second])
            publish = services.template_publish(template=template, actor=instructor, unchanged_again=True)
            execute(publish.pk)  # here, before any worker runs: its queued message is a no-op later
            publish.refresh_from_db()
            assert publish.state == Operation.State.SUCCEEDED, publish.error
            assert publish.template_version.ready_endpoint_ids() == sorted(e.pk for e in endpoints)
            course_services.course_update(course=course, actor=instructor, template_version=publish.template_version)
        VCenterEndpoint.objects.filter(pk__in=[e.pk for e in endpoints]).update(concurrency_limit=options.limit)
        course_services.quota_update(course=course, actor=admin, **dict.fromkeys(CourseQuota.LIMIT_FIELDS))
        wanted = [f"student{number}" for number in range(1, students + 1)]
        Enrollment.objects.filter(course=course).exclude(student__username__in=wanted).delete()
        for username in wanted:
            student, created = User.objects.get_or_create(username=username)
            if created:
                student.set_unusable_password()
                student.save(update_fields=["password"])
            course_services.enrollment_add(course=course, actor=instructor, student=student)

        worker_env = {**os.environ, "LOG_LEVEL": "INFO"}
        # --concurrency builders per endpoint (docs/deployment.md), and the quick worker.
        workers.append(
            Worker(
                queue=f"{queue}-build",
                concurrency=options.concurrency * endpoints_wanted,
                pool="prefork",
                env=worker_env,
                log=workdir / "builder.log",
                profile=None,
            )
        )
        workers.append(
            Worker(queue=queue, concurrency=2, pool="prefork", env=worker_env, log=workdir / "quick.log", profile=None)
        )
        for worker in workers:
            worker.start()
        load_before = os.getloadavg()[0]
        _say(f"[{options.mode}: {students} students, {endpoints_wanted} vCenter(s)] provisioning")
        click = time.time()
        provision = services.course_provision(course=course, actor=instructor)
        ids = [operation.pk for operation in provision.started]
        placed = {e.name: sum(1 for op in provision.started if op.endpoint_id == e.pk) for e in endpoints}
        deadline = time.monotonic() + options.timeout
        timed_out = False
        while Operation.objects.filter(pk__in=ids, state__in=Operation.ACTIVE_STATES).exists():
            if time.monotonic() > deadline:
                timed_out = True
                break
            time.sleep(0.25)
        labs = list(Lab.objects.filter(course=course))
        ready = [lab for lab in labs if lab.state == Lab.State.READY]
        end = max(lab.ready_at.timestamp() for lab in ready) if ready and not timed_out else time.time()
        return {
            "mode": options.mode,
            "students": students,
            "vms": students * VMS_PER_LAB,
            "endpoints": endpoints_wanted,
            "limit": options.limit,
            "builders": options.concurrency * endpoints_wanted,
            "placed": placed,
            "ready": len(ready),
            "skipped": len(provision.skipped),
            "wall_s": round(end - click, 1),
            "ideal_s": round(ideal_seconds(students, options.limit * endpoints_wanted, options.clone_seconds), 1),
            "load_before": round(load_before, 1),
            "load_after": round(os.getloadavg()[0], 1),
            "timed_out": timed_out,
            "database": "PostgreSQL" if postgres is not None else "SQLite",
        }
    finally:
        for worker in workers:
            worker.stop()
        if "django" in sys.modules:
            from django.db import connections

            connections.close_all()
        if postgres is not None:
            postgres.drop()
        for sim in sims:
            sim.stop()
        if redis_context is not None:
            redis_context.__exit__(None, None, None)
        import shutil

        shutil.rmtree(workdir, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], allow_abbrev=False)
    parser.add_argument("--students", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=3, help="builder processes per endpoint (default 3)")
    parser.add_argument("--limit", type=int, default=8, help="each endpoint's concurrency limit (default 8)")
    parser.add_argument("--clone-seconds", type=float, default=2.0)
    parser.add_argument("--timeout", type=float, default=1200)
    parser.add_argument("--json", help="also write both runs' figures to this file")
    parser.add_argument("--mode", choices=["one", "two"], help=argparse.SUPPRESS)
    parser.add_argument("--result-file", help=argparse.SUPPRESS)
    options = parser.parse_args(argv)
    _install_signal_handlers()
    if options.mode:
        Path(options.result_file).write_text(json.dumps(run_one(options)))
        return 0
    results = {}
    for mode in ("one", "two"):
        out = Path(tempfile.mkstemp(suffix=".json")[1])
        command = [sys.executable, __file__, "--mode", mode, "--result-file", str(out)]
        for name in ("students", "concurrency", "limit", "clone_seconds", "timeout"):
            command += [f"--{name.replace('_', '-')}", str(getattr(options, name))]
        if subprocess.call(command, cwd=REPO_ROOT) != 0 or not out.read_text():
            _say(f"The {mode}-vCenter run failed.")
            return 1
        results[mode] = json.loads(out.read_text())
        out.unlink()
        _say(json.dumps(results[mode]))
    ratio = round(results["two"]["wall_s"] / results["one"]["wall_s"], 2)
    _say(
        f"\n{options.students} students, limit {options.limit} per vCenter, clones {options.clone_seconds:g} s, "
        f"{options.concurrency} builders per vCenter:\n"
        f"  one vCenter:  {results['one']['wall_s']} s (ideal {results['one']['ideal_s']} s), "
        f"load {results['one']['load_before']} -> {results['one']['load_after']}\n"
        f"  two vCenters: {results['two']['wall_s']} s (ideal {results['two']['ideal_s']} s), "
        f"placed {results['two']['placed']}, load {results['two']['load_before']} -> {results['two']['load_after']}\n"
        f"  ratio two/one: {ratio} (goal at most 0.55); {os.cpu_count()} cores, load average now "
        f"{', '.join(f'{value:.1f}' for value in os.getloadavg())}"
    )
    if options.json:
        Path(options.json).write_text(json.dumps({**results, "ratio": ratio}, indent=2))
    return 0 if ratio <= 0.55 else 2


if __name__ == "__main__":
    raise SystemExit(main())
