"""The REST API against its schema, fuzzed much wider than the suite does, once, by hand.

    .venv/bin/python -m portal.embedded_redis -- \
        .venv/bin/python bench/api_fuzz_wide.py [--examples 40] [--sequences 100]

Runs tests/integration/portal/test_api_schema.py (every operation of /api/schema/, as a student
and as an instructor, against the real simulator and database) with N fuzzed examples per
operation instead of 6, and the coverage phase with invalid data too ("all": boundary values,
wrong types, missing fields, methods a route lacks). Every answer must be no 5xx, a documented
status and content type, and a body that matches the schema. Prints the figures for
docs/benchmarks.md; any failure is a bug to fix, never a check to loosen.

The stateful phase runs N sequences of up to 6 operations per role, chained through the
schema's OpenAPI links (core.api.link_created_objects) and the ones schemathesis infers, with
its use-after-free and resource-availability checks as well.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MODULE = "tests/integration/portal/test_api_schema.py"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=40, help="fuzzed examples per operation and role")
    parser.add_argument("--coverage", default="all", choices=["positive", "negative", "all"])
    parser.add_argument("--sequences", type=int, default=100, help="stateful sequences per role")
    args = parser.parse_args()
    env = {
        **os.environ,
        "NESTLAB_API_FUZZ_EXAMPLES": str(args.examples),
        "NESTLAB_API_FUZZ_COVERAGE": args.coverage,
        "NESTLAB_API_FUZZ_SEQUENCES": str(args.sequences),
    }
    started = time.monotonic()
    run = subprocess.run(
        [sys.executable, "-m", "pytest", MODULE, "-q", "-p", "no:cacheprovider", "-rf", "--timeout", "3600"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    seconds = time.monotonic() - started
    summary = run.stdout.strip().splitlines()[-1] if run.stdout.strip() else "(no output)"
    passed = int(m.group(1)) if (m := re.search(r"(\d+) passed", summary)) else 0
    failed = int(m.group(1)) if (m := re.search(r"(\d+) failed", summary)) else 0
    print(
        f"schemathesis, {args.examples} examples per operation and role, coverage phase: {args.coverage},"
        f" {args.sequences} stateful sequences per role"
    )
    print(f"  operation x role cases: {passed + failed} ({passed} passed, {failed} failed)")
    print(f"  wall time: {seconds:.0f} s")
    for line in run.stdout.splitlines():
        if line.startswith("FAILED"):
            print(f"  {line}")
    if failed:
        print(run.stdout[-20000:])
    return 1 if failed or run.returncode not in (0, 1) else 0


if __name__ == "__main__":
    raise SystemExit(main())
