"""Usage reports as CSV files: the rows of the page's table, the period of the page.

The columns are the API's field names. Every text cell that a spreadsheet would read as a
formula (it starts with = + - @, a tab or a carriage return) gets a leading apostrophe, so a
student named "=HYPERLINK(...)" stays text.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from django.http import HttpResponse

from labs.usage import CourseUsageReport, CourseUsageRow, StudentUsageRow, UsageReport

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")

FIGURE_COLUMNS = (
    "lab_hours",
    "lab_hours_total",
    "labs",
    "labs_started",
    "running",
    "snapshots",
    "snapshots_most_in_a_lab",
    "snapshots_taken",
    "vcpu",
    "memory_gb",
    "storage_gb",
)

Column = tuple[str, Callable[[Any], Any]]


def _field(name: str) -> Column:
    return name, lambda row: getattr(row, name)


STUDENT_COLUMNS: Sequence[Column] = (
    ("student", lambda row: row.username),
    _field("name"),
    ("enrolled", lambda row: "yes" if row.enrolled else "no"),
    *(_field(name) for name in FIGURE_COLUMNS),
    _field("lab_hours_limit"),
    _field("labs_limit"),
)

COURSE_COLUMNS: Sequence[Column] = (
    _field("code"),
    _field("title"),
    _field("state"),
    _field("students"),
    ("endpoints", lambda row: "; ".join(row.endpoints)),
    *(_field(name) for name in FIGURE_COLUMNS),
    _field("running_limit"),
    _field("vcpu_limit"),
    _field("memory_gb_limit"),
    _field("storage_gb_limit"),
)


def safe_cell(value: Any) -> Any:
    """A cell as written: None as empty, text that could start a formula behind an apostrophe."""
    if value is None:
        return ""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def write_csv(columns: Sequence[Column], rows: Iterable[Any]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([name for name, _ in columns])
    for row in rows:
        writer.writerow([safe_cell(value(row)) for _, value in columns])
    return out.getvalue()


def course_report_csv(report: CourseUsageReport) -> str:
    rows: list[StudentUsageRow] = report.students
    return write_csv(STUDENT_COLUMNS, rows)


def usage_report_csv(report: UsageReport) -> str:
    rows: list[CourseUsageRow] = report.courses
    return write_csv(COURSE_COLUMNS, rows)


def course_report_filename(report: CourseUsageReport) -> str:
    return f"usage-{report.course.code}-{report.period.start:%Y-%m-%d}-to-{report.period.end:%Y-%m-%d}.csv"


def usage_report_filename(report: UsageReport) -> str:
    return f"usage-all-courses-{report.period.start:%Y-%m-%d}-to-{report.period.end:%Y-%m-%d}.csv"


def csv_response(content: str, filename: str) -> HttpResponse:
    """A download (course codes are slugs and dates digits, so the file name needs no quoting)."""
    response = HttpResponse(content, content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response
