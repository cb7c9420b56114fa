"""What one REST request costs inside Django: SQL statements, CPU, and where the CPU goes, for the
polls and the actions of bench/load_api.py (issue 16, "a request costs milliseconds").

    .venv/bin/python -m portal.embedded_redis -- .venv/bin/python bench/request_cost.py
    ... bench/request_cost.py --show-sql                    # every statement of each route
    ... bench/request_cost.py --profile "POST start"        # cProfile of one route, top 30

Django's test client in this process (the middleware, DRF, the view, the service, the audit
entry and the push on commit all run as under daphne; ASGI and the socket do not), a real
``Authorization: Token`` header or a signed-in session cookie, on a throw-away PostgreSQL
database (--database-url; created and dropped) or SQLite (--sqlite). The operation's "go"
message is sent as in production (Redis: the embedded one above). A lab of the demo template's
size (two VMs here, a baseline and two snapshots). CPU time is this process's
(time.process_time): on PostgreSQL the server's own work is not in it.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
os.environ.setdefault("NESTLAB_VAR_DIR", tempfile.mkdtemp(prefix="nestlab-bench-"))

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/nestlab_costbench"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=200, help="requests per figure")
    parser.add_argument("--database-url", default=DEFAULT_DATABASE_URL)
    parser.add_argument("--sqlite", action="store_true", help="a SQLite file instead of PostgreSQL")
    parser.add_argument("--show-sql", action="store_true", help="print every statement of each route once")
    parser.add_argument("--profile", metavar="ROUTE", help='cProfile one route (e.g. "GET lab, token")')
    parser.add_argument("--profile-sort", default="cumulative", help="pstats order: cumulative, tottime")
    parser.add_argument("--profile-dump", metavar="FILE", help="also write the profile to FILE (pstats)")
    parser.add_argument("--profile-callees", metavar="REGEX", help="also what the functions matching it call")
    args = parser.parse_args()
    if args.sqlite:
        os.environ.pop("DATABASE_URL", None)
    else:
        os.environ["DATABASE_URL"] = args.database_url

    import django

    django.setup()
    from django.test.utils import setup_test_environment

    setup_test_environment()
    from django.db import connection

    test_name = connection.creation.create_test_db(verbosity=0, keepdb=False)
    try:
        _measure(args)
    finally:
        connection.creation.destroy_test_db(test_name, verbosity=0)


def _measure(args) -> None:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext
    from rest_framework.authtoken.models import Token
    from rest_framework.test import APIClient

    from courses.models import CourseQuota
    from labs.models import Lab, LabSnapshot, LabVM, Operation
    from tests.factories import open_course
    from tests.integration.labs.api.conftest import idle, ready_lab, student_of

    course = open_course(students=3)
    # Every limit set, as bench/load_api.py sets them, so a start runs every quota check.
    version = course.template_version
    CourseQuota.objects.update_or_create(
        course=course,
        defaults={
            **dict.fromkeys(CourseQuota.LIMIT_FIELDS),
            "running_labs": 10,
            "labs_per_student": 1,
            "snapshots_per_lab": 5,
            "vcpu_total": 10 * version.vcpu_total,
            "memory_gb_total": 10 * version.memory_mb_total,
            "storage_gb_total": 10 * version.disk_gb_total,
            "lab_hours_per_student": 10,
        },
    )
    lab = ready_lab(course)
    LabVM.objects.filter(lab=lab).update(power_state=LabVM.PowerState.ON)
    # Not running: a running lab's hours move its ETag every 36 s, and the 304 figures need it still.
    Lab.objects.filter(pk=lab.pk).update(running_since=None)
    lab.refresh_from_db()
    baseline = LabSnapshot.objects.create(lab=lab, name="Baseline", is_baseline=True)
    LabSnapshot.objects.create(lab=lab, name="cluster built", parent=baseline)
    LabSnapshot.objects.create(lab=lab, name="before the upgrade", parent=baseline)
    operation = Operation.objects.filter(lab=lab).latest("pk")
    student = lab.student
    starter = student_of(course, 1)

    token_client = APIClient()
    token_client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=student).key}")
    session_client = APIClient(enforce_csrf_checks=False)
    session_client.force_login(student)
    starter_client = APIClient()
    starter_client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=starter).key}")

    def start():
        return starter_client.post("/api/v1/labs/", {"course": course.pk}, format="json")

    def after_start(response):
        Lab.objects.filter(pk=response.json()["lab"]).delete()

    snapshot_names = iter(range(10**6))

    def snapshot():
        return token_client.post(f"/api/v1/labs/{lab.pk}/snapshots/", {"name": f"s{next(snapshot_names)}"}, "json")

    def revert():
        return token_client.post(f"/api/v1/labs/{lab.pk}/revert/", {"snapshot": baseline.pk}, format="json")

    def reset():
        return token_client.post(f"/api/v1/labs/{lab.pk}/reset/")

    def after_action(response):
        idle(lab)
        LabSnapshot.objects.filter(lab=lab, name__startswith="s").exclude(pk=baseline.pk).delete()

    lab_url, operation_url = f"/api/v1/labs/{lab.pk}/", f"/api/v1/operations/{operation.pk}/"
    lab_etag, operation_etag = token_client.get(lab_url)["ETag"], token_client.get(operation_url)["ETag"]
    routes = {
        "GET lab, token": (lambda: token_client.get(lab_url), 200, None),
        "GET lab, session": (lambda: session_client.get(lab_url), 200, None),
        "GET lab 304, token": (lambda: token_client.get(lab_url, HTTP_IF_NONE_MATCH=lab_etag), 304, None),
        "GET operation, token": (lambda: token_client.get(operation_url), 200, None),
        "GET operation, session": (lambda: session_client.get(operation_url), 200, None),
        "GET operation 304, token": (
            lambda: token_client.get(operation_url, HTTP_IF_NONE_MATCH=operation_etag),
            304,
            None,
        ),
        "POST start": (start, 202, after_start),
        "POST snapshot": (snapshot, 202, after_action),
        "POST revert": (revert, 202, after_action),
        "POST reset": (reset, 202, after_action),
    }
    print(f"{'route':<26} {'SQL':>4} {'CPU ms median':>14} {'p95':>7}  ({args.repeat} requests each)")
    for name, (call, expect, after) in routes.items():
        for _ in range(3):  # warm: caches, the first request's imports
            response = call()
            assert response.status_code == expect, (name, response.status_code, response.content[:300])
            if after:
                after(response)
        with CaptureQueriesContext(connection) as captured:
            response = call()
        statements = [query["sql"] for query in captured.captured_queries]  # the next request clears them
        if after:
            after(response)
        if args.show_sql:
            print(f"\n== {name}")
            for sql in statements:
                print("  ", sql[:220])
        times = []
        profiler = cProfile.Profile() if args.profile == name else None
        for _ in range(args.repeat):
            started = time.process_time()
            if profiler:
                profiler.enable()
            response = call()
            if profiler:
                profiler.disable()
            times.append((time.process_time() - started) * 1000)
            assert response.status_code == expect, (name, response.status_code)
            if after:
                after(response)
        print(
            f"{name:<26} {len(statements):>4} {statistics.median(times):>14.2f} "
            f"{sorted(times)[int(len(times) * 0.95) - 1]:>7.2f}"
        )
        if profiler:
            if args.profile_dump:
                profiler.dump_stats(args.profile_dump)
            stats = pstats.Stats(profiler).sort_stats(args.profile_sort)
            stats.print_stats(30)
            if args.profile_callees:
                stats.print_callees(args.profile_callees)


if __name__ == "__main__":
    main()
