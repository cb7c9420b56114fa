"""Lab manuals: how long the slowest inputs known take to render, and how long a lab page with
the largest manual allowed takes to answer (docs/security.md, finding 4; docs/benchmarks.md).

    .venv/bin/python bench/markdown_worst_case.py [--repeat 20]

Renders each pathological input at the size limit (and at 300 KB, the size of the finding, for
comparison), then serves the lab page of a student whose course's manual is the largest and
slowest allowed, through Django's test client on a throw-away SQLite database. Prints figures.
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


def pathological(size: int) -> dict[str, str]:
    """Inputs that were slow for one Markdown parser or sanitiser or another."""
    return {
        "open brackets": "[" * size,
        "link openers": ("[a](" * size)[:size],
        "nested quotes": ">" * size,
        "nested divs": ("<div>" * size)[:size],
        "emphasis runs": ("*a_" * size)[:size],
        "indented lists": "".join(" " * (i % 40) + "- x\n" for i in range(size))[:size],
        "mixed markup": ("> - *[step](https://docs.example.edu)* `x`\n" * size)[:size],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=20, help="page requests to time")
    args = parser.parse_args()

    import django

    django.setup()
    from core.markdown import render_markdown
    from courses.models import MANUAL_MAX_CHARACTERS

    print(f"Rendering (markdown-it-py + nh3), seconds; limit {MANUAL_MAX_CHARACTERS:,} characters")
    print(f"{'input':<16} {'at the limit':>13} {'300 KB':>9}")
    slowest = ("", 0.0)
    for name, text in pathological(MANUAL_MAX_CHARACTERS).items():
        started = time.perf_counter()
        render_markdown(text)
        at_limit = time.perf_counter() - started
        started = time.perf_counter()
        render_markdown(pathological(300_000)[name])
        big = time.perf_counter() - started
        print(f"{name:<16} {at_limit:>13.3f} {big:>9.3f}")
        if at_limit > slowest[1]:
            slowest = (name, at_limit)

    page_times(slowest[0], MANUAL_MAX_CHARACTERS, args.repeat)


def page_times(name: str, size: int, repeat: int) -> None:
    from django.test.utils import setup_test_environment

    setup_test_environment()
    from django.db import connection

    connection.creation.create_test_db(verbosity=0)
    from django.test import Client
    from django.urls import reverse

    from tests.factories import lab_row, open_course

    manual = pathological(size)[name]
    started = time.perf_counter()
    course = open_course(students=1, manual=manual)
    saved = time.perf_counter() - started
    student = course.enrollments.get().student
    lab = lab_row(course, student)
    client = Client()
    client.force_login(student)
    url = reverse("labs:lab-detail", args=[lab.pk])
    assert client.get(url).status_code == 200
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        response = client.get(url)
        times.append(time.perf_counter() - started)
        assert response.status_code == 200
    times.sort()
    print()
    print(f"Lab page with the slowest manual at the limit ({name}, {len(manual):,} characters):")
    print(f"  saving the template and publishing (renders once): {saved:.3f} s")
    print(
        f"  page answer over {repeat} requests: median {statistics.median(times) * 1000:.1f} ms, "
        f"slowest {times[-1] * 1000:.1f} ms, page {len(response.content):,} bytes"
    )


if __name__ == "__main__":
    main()
