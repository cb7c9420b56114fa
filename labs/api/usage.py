"""Usage reports in the API: the same selectors (labs.usage) and permissions as the pages,
as JSON and as the pages' CSV files."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import TypeVar

from django.core.exceptions import ValidationError
from django.http import Http404, HttpResponse
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.decorators import api_view
from rest_framework.request import Request
from rest_framework.response import Response

from core.api import errors
from courses import selectors as course_selectors
from courses.models import Course
from labs import usage, usage_csv

# Serializers


class PeriodSerializer(serializers.Serializer):
    start = serializers.DateField(help_text="The first day (the query's `from`).")
    end = serializers.DateField(help_text="The last day, included (the query's `to`).")


class FiguresSerializer(serializers.Serializer):
    """What a student, a course or a vCenter used."""

    lab_hours = serializers.FloatField(help_text="Hours any VM of the labs was on, within the period.")
    lab_hours_total = serializers.FloatField(
        help_text="Hours since the labs began, deleted labs included: what the lab-hours quota counts."
    )
    labs = serializers.IntegerField(help_text="Labs holding vCenter resources now.")
    labs_started = serializers.IntegerField(help_text="Labs created in the period (deleted ones included).")
    running = serializers.IntegerField(help_text="Labs powered on now.")
    snapshots = serializers.IntegerField(help_text="Snapshots kept now (lab baselines left out).")
    snapshots_most_in_a_lab = serializers.IntegerField(help_text="Snapshots kept by the fullest lab.")
    snapshots_taken = serializers.IntegerField(help_text="Snapshots taken in the period.")
    vcpu = serializers.IntegerField(help_text="Virtual CPUs of the labs held now.")
    memory_gb = serializers.FloatField(help_text="Memory (GB) of the labs held now.")
    storage_gb = serializers.FloatField(help_text="Datastore space (GB) of the labs held now, as published.")


class StudentUsageSerializer(FiguresSerializer):
    student = serializers.CharField(source="username", help_text="User name.")
    name = serializers.CharField()
    enrolled = serializers.BooleanField(help_text="false: removed from the course, labs kept.")
    lab_hours_limit = serializers.IntegerField(allow_null=True, help_text="The quota plus top-ups; null: no limit.")
    labs_limit = serializers.IntegerField(allow_null=True, help_text="The quota plus top-ups; null: no limit.")


class DayHoursSerializer(serializers.Serializer):
    day = serializers.DateField()
    hours = serializers.FloatField()


class CourseLimitsSerializer(serializers.Serializer):
    """The course quota's limits (null: no limit)."""

    running_labs = serializers.IntegerField(allow_null=True)
    labs_per_student = serializers.IntegerField(allow_null=True)
    snapshots_per_lab = serializers.IntegerField(allow_null=True)
    vcpu_total = serializers.IntegerField(allow_null=True)
    memory_gb_total = serializers.IntegerField(allow_null=True)
    storage_gb_total = serializers.IntegerField(allow_null=True)
    lab_hours_per_student = serializers.IntegerField(allow_null=True)


class ReportCourseSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    code = serializers.CharField()
    title = serializers.CharField()


class CourseUsageReportSerializer(serializers.Serializer):
    course = ReportCourseSerializer()
    period = PeriodSerializer()
    limits = CourseLimitsSerializer()
    totals = FiguresSerializer(help_text="The whole class.")
    students = StudentUsageSerializer(many=True, help_text="Enrolled students first, then others with labs; by name.")
    days = DayHoursSerializer(many=True, help_text="Lab hours per day of the period, every day listed.")
    generated_at = serializers.DateTimeField()


class CourseUsageRowSerializer(FiguresSerializer):
    id = serializers.IntegerField(source="course_id")
    code = serializers.CharField()
    title = serializers.CharField()
    state = serializers.CharField()
    students = serializers.IntegerField(help_text="Enrolled now.")
    endpoints = serializers.ListField(child=serializers.CharField(), help_text="vCenters its labs were built on.")
    running_limit = serializers.IntegerField(allow_null=True)
    vcpu_limit = serializers.IntegerField(allow_null=True)
    memory_gb_limit = serializers.IntegerField(allow_null=True)
    storage_gb_limit = serializers.IntegerField(allow_null=True)


class EndpointUsageRowSerializer(FiguresSerializer):
    id = serializers.IntegerField(source="endpoint_id")
    name = serializers.CharField()
    courses = serializers.IntegerField(help_text="Courses with labs on it.")


class UsageReportSerializer(serializers.Serializer):
    period = PeriodSerializer()
    totals = FiguresSerializer(help_text="Every course.")
    courses = CourseUsageRowSerializer(many=True, help_text="Open and closed courses, and any other with labs.")
    endpoints = EndpointUsageRowSerializer(many=True)
    days = DayHoursSerializer(many=True)
    generated_at = serializers.DateTimeField()


# Views

PERIOD_PARAMETERS = [
    OpenApiParameter("from", date, description="First day, YYYY-MM-DD (default: see the route)."),
    OpenApiParameter("to", date, description="Last day, included, YYYY-MM-DD (at most 731 days in all)."),
]
CSV = {(200, "text/csv"): OpenApiResponse(OpenApiTypes.STR, description="The rows of the report, one per line.")}

Report = TypeVar("Report")


def _report(request: Request, default: usage.Period, read: Callable[[usage.Period], Report]) -> Report:
    """The report over the period asked for. The selector asks the permission before a bad
    period is answered, so a refusal never depends on the query."""
    try:
        period, refused = usage.parse_period(request.query_params, default), None
    except ValidationError as error:
        period, refused = default, error
    report = read(period)
    if refused is not None:
        raise refused
    return report


def _course_report(request: Request, course_id: int) -> usage.CourseUsageReport:
    course: Course | None = course_selectors.course_list(user=request.user).filter(pk=course_id).first()
    if course is None:
        raise Http404("No course with that id.")
    return _report(
        request,
        usage.course_period(course),
        lambda period: usage.course_usage_report(course=course, user=request.user, period=period),
    )


def _all_report(request: Request) -> usage.UsageReport:
    return _report(
        request,
        usage.recent_period(timezone.localdate()),
        lambda period: usage.usage_report(user=request.user, period=period),
    )


COURSE_WORDS = (
    "The course's instructors and admins (a student of the course gets 403, anyone who cannot see it 404). "
    "Over `from` to `to`, by default the course's dates."
)
ALL_WORDS = "Admins. Over `from` to `to`, by default the last 30 days."


@extend_schema(
    tags=["usage"],
    summary="A course's usage: per student, in total against the quota, per day",
    description=COURSE_WORDS,
    parameters=PERIOD_PARAMETERS,
    responses={200: CourseUsageReportSerializer, **errors(400, 403, 404)},
)
@api_view(["GET"])
def course_usage_report(request: Request, course_id: int) -> Response:
    report = _course_report(request, course_id)
    data = {
        "course": {"id": report.course.pk, "code": report.course.code, "title": report.course.title},
        "period": report.period,
        "limits": report.limits,
        "totals": report.totals,
        "students": report.students,
        "days": report.days,
        "generated_at": report.generated_at,
    }
    return Response(CourseUsageReportSerializer(data).data)


@extend_schema(
    tags=["usage"],
    summary="A course's usage per student, as CSV",
    description=(
        f"{COURSE_WORDS} The rows of the JSON's `students`, the columns its field names; a cell that a "
        "spreadsheet would take for a formula starts with an apostrophe."
    ),
    parameters=PERIOD_PARAMETERS,
    responses={**CSV, **errors(400, 403, 404)},
)
@api_view(["GET"])
def course_usage_report_csv(request: Request, course_id: int) -> HttpResponse:
    report = _course_report(request, course_id)
    return usage_csv.csv_response(usage_csv.course_report_csv(report), usage_csv.course_report_filename(report))


@extend_schema(
    tags=["usage"],
    summary="Every course's and vCenter's usage, and lab hours per day",
    description=ALL_WORDS,
    parameters=PERIOD_PARAMETERS,
    responses={200: UsageReportSerializer, **errors(400, 403)},
)
@api_view(["GET"])
def usage_report(request: Request) -> Response:
    return Response(UsageReportSerializer(_all_report(request)).data)


@extend_schema(
    tags=["usage"],
    summary="Every course's usage, as CSV",
    description=f"{ALL_WORDS} The rows of the JSON's `courses`; `endpoints` joined with '; '.",
    parameters=PERIOD_PARAMETERS,
    responses={**CSV, **errors(400, 403)},
)
@api_view(["GET"])
def usage_report_csv(request: Request) -> HttpResponse:
    report = _all_report(request)
    return usage_csv.csv_response(usage_csv.usage_report_csv(report), usage_csv.usage_report_filename(report))
