"""The class's guide progress grid (labs.selectors.course_guide_grid) as a CSV file: one line per
enrolled student, one column per guide step. Cells as the usage files write them
(labs.usage_csv.safe_cell): a name or a step title that a spreadsheet would take for a formula
starts with an apostrophe, headers included (step titles are the instructor's words)."""

from __future__ import annotations

import csv
import io
from typing import Any

from labs.usage_csv import safe_cell

FIXED_COLUMNS = ("student", "name", "lab", "score", "max_score")


def grid_csv(grid: dict[str, Any]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    steps = [f"{step['number']}. {step['title']}" for step in grid["steps"]]
    writer.writerow([safe_cell(header) for header in (*FIXED_COLUMNS, *steps)])
    for row in grid["rows"]:
        student, lab = row["student"], row["lab"]
        fixed = (student.get_username(), student.get_full_name(), lab.pk if lab else None, row["score"])
        writer.writerow([safe_cell(value) for value in (*fixed, grid["max_score"], *row["cells"])])
    return out.getvalue()


def grid_filename(course) -> str:
    """Course codes are slugs, so the name needs no quoting."""
    return f"guide-progress-{course.code}.csv"
