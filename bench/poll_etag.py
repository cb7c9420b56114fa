"""Polling a lab and an operation through the REST API: the CPU one poll costs when it is answered
in full, and when the client sends the last ETag and nothing changed (304). Issue 16; figures in
docs/benchmarks.md.

    .venv/bin/python -m portal.embedded_redis -- .venv/bin/python bench/poll_etag.py [--repeat 500]

Django's test client in this process, on a throw-away SQLite database; a lab of the demo template's
size (five VMs, its networks, a baseline and two snapshots, a running operation). CPU time is this
process's (time.process_time), so the database's own work (SQLite, in process) is counted too.
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
os.environ.pop("DATABASE_URL", None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=500, help="polls per figure")
    args = parser.parse_args()

    import django

    django.setup()
    from django.test.utils import setup_test_environment

    setup_test_environment()
    from django.db import connection

    connection.creation.create_test_db(verbosity=0)
    from rest_framework.test import APIClient

    from labs import dispatch, services
    from labs.models import LabSnapshot
    from tests.factories import open_course
    from tests.integration.labs.api.conftest import ready_lab

    dispatch.send_operation = lambda *args, **kwargs: None  # nothing runs it: a poll reads only
    course = open_course(students=1)
    lab = ready_lab(course)
    baseline = LabSnapshot.objects.create(lab=lab, name="Baseline", is_baseline=True)
    LabSnapshot.objects.create(lab=lab, name="cluster built", parent=baseline)
    LabSnapshot.objects.create(lab=lab, name="before the upgrade", parent=baseline)
    operation = services.lab_power(lab=lab, actor=lab.student, action="off")
    client = APIClient()
    client.force_authenticate(lab.student)

    print(f"CPU per poll, ms (median and 95th percentile of {args.repeat}); lab with {lab.vms.count()} VMs")
    print(f"{'route':<28} {'full 200':>10} {'p95':>7} {'304':>8} {'p95':>7} {'bytes':>7}")
    for name, url in (
        ("GET /api/v1/labs/{id}/", f"/api/v1/labs/{lab.pk}/"),
        ("GET /api/v1/operations/{id}/", f"/api/v1/operations/{operation.pk}/"),
    ):
        first = client.get(url)
        etag = first["ETag"]
        full = _cpu(lambda url=url: client.get(url), args.repeat, expect=200)
        unchanged = _cpu(lambda url=url, etag=etag: client.get(url, HTTP_IF_NONE_MATCH=etag), args.repeat, expect=304)
        print(
            f"{name:<28} {statistics.median(full):>10.2f} {_p95(full):>7.2f} "
            f"{statistics.median(unchanged):>8.2f} {_p95(unchanged):>7.2f} {len(first.content):>7}"
        )
    floor = _floor(client, args.repeat)
    print(f"{'floor: GET /api/v1/account/keys/':<28} {statistics.median(floor):>10.2f} {_p95(floor):>7.2f}")


def _floor(client, repeat: int) -> list[float]:
    """The least an authenticated API answer costs here: an empty list of the caller's API keys."""
    return _cpu(lambda: client.get("/api/v1/account/keys/"), repeat, expect=200)


def _cpu(call, repeat: int, *, expect: int) -> list[float]:
    times = []
    for _ in range(repeat):
        started = time.process_time()
        response = call()
        times.append((time.process_time() - started) * 1000)
        assert response.status_code == expect, response.status_code
    return times


def _p95(values: list[float]) -> float:
    return sorted(values)[int(len(values) * 0.95) - 1]


if __name__ == "__main__":
    main()
