"""Usage pages and their CSV files: thin; labs.usage reads and asks the permission.

A course's page is for its instructors and admins (others who can see the course get 403 in
words, anyone else 404, as the class labs page); the page across courses is for admins.
"""

from __future__ import annotations

from urllib.parse import urlencode

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBadRequest
from django.shortcuts import get_object_or_404, render
from django.utils import timezone
from django.views.decorators.http import require_GET

from core.web import forbidden
from courses import permissions as course_permissions
from courses.models import Course
from labs import usage, usage_csv


def _course_or_404(request: HttpRequest, course_id: int) -> Course:
    course = get_object_or_404(Course, pk=course_id)
    if not course_permissions.can_view_course(request.user, course):
        raise Http404("No such course.")
    return course


def _period(request: HttpRequest, default: usage.Period) -> tuple[usage.Period, dict[str, list[str]]]:
    """The period asked for, or the default with the reasons the asked one was refused."""
    try:
        return usage.parse_period(request.GET, default), {}
    except ValidationError as error:
        return default, error.message_dict


def _bad_period(errors: dict[str, list[str]]) -> HttpResponse:
    words = " ".join(message for messages in errors.values() for message in messages)
    return HttpResponseBadRequest(words, content_type="text/plain; charset=utf-8")


def _query(period: usage.Period) -> str:
    return urlencode({"from": period.start.isoformat(), "to": period.end.isoformat()})


def _form(request: HttpRequest, period: usage.Period, errors: dict, default: usage.Period) -> dict:
    return {
        "period": period,
        "default_period": default,
        "from_value": request.GET.get("from", "") if errors else period.start.isoformat(),
        "to_value": request.GET.get("to", "") if errors else period.end.isoformat(),
        "period_errors": errors,
        "query": _query(period),
        "is_default": period == default,
        "time_zone": timezone.get_current_timezone_name(),
    }


@login_required
@require_GET
def course_usage(request: HttpRequest, course_id: int) -> HttpResponse:
    course = _course_or_404(request, course_id)
    default = usage.course_period(course)
    period, errors = _period(request, default)
    try:
        report = usage.course_usage_report(course=course, user=request.user, period=period)
    except PermissionDenied as refusal:
        return forbidden(request, refusal)
    totals, limits = report.totals, report.limits
    context = {
        "course": course,
        "report": report,
        "student_hours": sorted(
            ((row.username, row.lab_hours) for row in report.students), key=lambda item: (-item[1], item[0])
        ),
        "in_use": [
            ("Labs running", totals.running, limits.running_labs, ""),
            ("Virtual CPUs", totals.vcpu, limits.vcpu_total, "vCPU"),
            ("Memory", totals.memory_gb, limits.memory_gb_total, "GB"),
            ("Datastore", totals.storage_gb, limits.storage_gb_total, "GB"),
        ],
        **_form(request, period, errors, default),
    }
    return render(request, "labs/usage_course.html", context, status=400 if errors else 200)


@login_required
@require_GET
def course_usage_csv(request: HttpRequest, course_id: int) -> HttpResponse:
    course = _course_or_404(request, course_id)
    period, errors = _period(request, usage.course_period(course))
    try:
        report = usage.course_usage_report(course=course, user=request.user, period=period)
    except PermissionDenied as refusal:  # asked before the period, so a refusal never depends on it
        return forbidden(request, refusal)
    if errors:
        return _bad_period(errors)
    return usage_csv.csv_response(usage_csv.course_report_csv(report), usage_csv.course_report_filename(report))


@login_required
@require_GET
def usage_overview(request: HttpRequest) -> HttpResponse:
    default = usage.recent_period(timezone.localdate())
    period, errors = _period(request, default)
    try:
        report = usage.usage_report(user=request.user, period=period)
    except PermissionDenied as refusal:
        return forbidden(request, refusal)
    context = {
        "report": report,
        "course_hours": sorted(
            ((row.code, row.lab_hours) for row in report.courses if row.lab_hours or row.labs),
            key=lambda item: (-item[1], item[0]),
        ),
        **_form(request, period, errors, default),
    }
    return render(request, "labs/usage_overview.html", context, status=400 if errors else 200)


@login_required
@require_GET
def usage_overview_csv(request: HttpRequest) -> HttpResponse:
    period, errors = _period(request, usage.recent_period(timezone.localdate()))
    try:
        report = usage.usage_report(user=request.user, period=period)
    except PermissionDenied as refusal:
        return forbidden(request, refusal)
    if errors:
        return _bad_period(errors)
    return usage_csv.csv_response(usage_csv.usage_report_csv(report), usage_csv.usage_report_filename(report))
