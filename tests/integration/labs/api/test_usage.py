"""labs/api/usage.py: the usage reports as JSON and CSV, with the pages' permissions, and
documented in the OpenAPI schema."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime

import pytest
import yaml
from django.urls import reverse

from courses import services as course_services
from labs.models import LabRun, LabSnapshot
from tests.factories import AdminFactory, InstructorFactory, StudentFactory, lab_row, open_course
from tests.integration.labs.api.conftest import client_for

pytestmark = pytest.mark.django_db

OCTOBER = {"from": "2026-10-01", "to": "2026-10-31"}


@pytest.fixture
def course():
    """ada ran her lab 1.5 h on 3 Oct 2026 and keeps one snapshot; "@bob" has no lab."""
    course = open_course(students=0, code="vsp8-api", quota={"storage_gb_total": 100, "labs_per_student": 1})
    instructor = course.instructors.get()
    ada, bob = StudentFactory(username="ada"), StudentFactory(username="@bob")
    for student in (ada, bob):
        course_services.enrollment_add(course=course, actor=instructor, student=student)
    lab = lab_row(course, ada, hours_used=1.5, created_at=datetime(2026, 10, 2, 8, tzinfo=UTC))
    LabRun.objects.create(
        lab=lab, started_at=datetime(2026, 10, 3, 9, tzinfo=UTC), ended_at=datetime(2026, 10, 3, 10, 30, tzinfo=UTC)
    )
    LabSnapshot.objects.create(lab=lab, name="before the upgrade")
    return course


def report_url(course) -> str:
    return reverse("course-usage-report", args=[course.pk])


def csv_url(course) -> str:
    return reverse("course-usage-report-csv", args=[course.pk])


def test_a_course_s_report_as_json(course):
    response = client_for(course.instructors.get()).get(report_url(course), OCTOBER)
    assert response.status_code == 200
    data = response.json()
    assert data["course"] == {"id": course.pk, "code": "vsp8-api", "title": "vSphere 8"}
    assert data["period"] == {"start": "2026-10-01", "end": "2026-10-31"}
    assert data["limits"]["storage_gb_total"] == 100 and data["limits"]["vcpu_total"] is None
    assert [row["student"] for row in data["students"]] == ["@bob", "ada"]
    ada = data["students"][1]
    assert ada == {
        "lab_hours": 1.5,
        "lab_hours_total": 1.5,
        "labs": 1,
        "labs_started": 1,
        "running": 0,
        "snapshots": 1,
        "snapshots_most_in_a_lab": 1,
        "snapshots_taken": 0,
        "vcpu": 5,
        "memory_gb": 17.0,
        "storage_gb": 40.0,
        "student": "ada",
        "name": ada["name"],
        "enrolled": True,
        "lab_hours_limit": None,
        "labs_limit": 1,
    }
    assert data["totals"]["storage_gb"] == 40.0
    assert len(data["days"]) == 31
    assert data["days"][2] == {"day": "2026-10-03", "hours": 1.5}


def test_a_course_s_report_as_csv(course):
    response = client_for(AdminFactory()).get(csv_url(course), OCTOBER)
    assert response.status_code == 200
    assert response["Content-Disposition"] == 'attachment; filename="usage-vsp8-api-2026-10-01-to-2026-10-31.csv"'
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert [(row["student"], row["lab_hours"], row["snapshots"]) for row in rows] == [
        ("'@bob", "0", "0"),
        ("ada", "1.5", "1"),
    ]


@pytest.mark.parametrize("route", [report_url, csv_url])
def test_a_student_of_the_course_gets_403_in_words(course, route):
    response = client_for(course.enrollments.first().student).get(route(course))
    assert response.status_code == 403
    assert response.json() == {"detail": "Only this course's instructors and admins can see its usage."}


@pytest.mark.parametrize("route", [report_url, csv_url])
def test_another_course_s_instructor_gets_404(course, route):
    assert client_for(InstructorFactory()).get(route(course)).status_code == 404


@pytest.mark.parametrize("route", [report_url, csv_url])
def test_anonymous_callers_get_403(course, route):
    assert client_for().get(route(course)).status_code == 403


def test_a_bad_period_is_a_400_naming_the_field(course):
    response = client_for(course.instructors.get()).get(report_url(course), {"from": "2026-13-01"})
    assert response.status_code == 400
    assert response.json() == {
        "detail": "“2026-13-01” is not a date: write it as YYYY-MM-DD.",
        "errors": {"from": ["“2026-13-01” is not a date: write it as YYYY-MM-DD."]},
    }
    assert client_for(course.instructors.get()).get(csv_url(course), {"to": "2020-01-01"}).status_code == 400


def test_admins_read_every_course_and_vcenter(course):
    response = client_for(AdminFactory()).get(reverse("usage-report"), OCTOBER)
    assert response.status_code == 200
    data = response.json()
    endpoint = course.template_version.template.endpoint
    assert [(row["id"], row["code"], row["lab_hours"], row["students"]) for row in data["courses"]] == [
        (course.pk, "vsp8-api", 1.5, 2)
    ]
    assert data["courses"][0]["endpoints"] == [endpoint.name]
    assert data["courses"][0]["storage_gb_limit"] == 100
    assert [(row["id"], row["name"], row["courses"], row["labs"]) for row in data["endpoints"]] == [
        (endpoint.pk, endpoint.name, 1, 1)
    ]
    assert data["totals"]["lab_hours"] == 1.5

    rows = list(csv.DictReader(io.StringIO(client_for(AdminFactory()).get(reverse("usage-report-csv"), OCTOBER).text)))
    assert [(row["code"], row["endpoints"], row["storage_gb_limit"]) for row in rows] == [
        ("vsp8-api", endpoint.name, "100")
    ]


@pytest.mark.parametrize("who", [InstructorFactory, StudentFactory])
@pytest.mark.parametrize("route", ["usage-report", "usage-report-csv"])
def test_only_admins_read_every_course(who, route):
    response = client_for(who()).get(reverse(route))
    assert response.status_code == 403
    assert response.json() == {"detail": "Only admins can see the usage of every course."}


def test_the_routes_are_in_the_schema(client):
    schema = yaml.safe_load(client.get(reverse("api-schema")).content)
    paths = schema["paths"]
    course_report = paths["/api/v1/courses/{course_id}/usage/report/"]["get"]
    assert course_report["tags"] == ["usage"]
    assert {parameter["name"] for parameter in course_report["parameters"]} >= {"from", "to"}
    assert set(course_report["responses"]) == {"200", "400", "403", "404"}
    assert "text/csv" in paths["/api/v1/courses/{course_id}/usage/report.csv"]["get"]["responses"]["200"]["content"]
    assert "/api/v1/usage/" in paths and "/api/v1/usage.csv" in paths
    students = schema["components"]["schemas"]["StudentUsage"]["properties"]
    assert students["lab_hours_limit"]["nullable"] is True


@pytest.mark.parametrize("route", [report_url, csv_url])
@pytest.mark.parametrize(("name", "value"), [("to", "9999-12-31"), ("from", "0001-01-01")])
def test_a_date_out_of_range_is_a_400_in_words_not_a_500(course, route, name, value):
    """Issue 10: ?to=9999-12-31 was 500 "date value out of range"."""
    response = client_for(course.instructors.get()).get(route(course), {name: value})
    assert response.status_code == 400
    body = response.content.decode()
    assert "Pick a date between 2000-01-01 and" in body


def test_a_long_non_date_is_echoed_short(course):
    response = client_for(course.instructors.get()).get(report_url(course), {"from": "x" * 5000})
    assert response.status_code == 400
    assert response.json()["errors"]["from"] == [f"“{'x' * 40}…” is not a date: write it as YYYY-MM-DD."]
