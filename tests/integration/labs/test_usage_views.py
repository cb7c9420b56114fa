"""labs/usage_views.py: the usage pages and their CSV files: who may open them, the period
form, the charts (inline SVG with titles, no style attribute, no script) and the CSV rows."""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, date, datetime
from html import unescape

import pytest
from django.urls import reverse

from courses import services as course_services
from courses.models import Course
from labs.models import LabRun
from tests.factories import AdminFactory, InstructorFactory, StudentFactory, lab_row, open_course

pytestmark = pytest.mark.django_db


@pytest.fixture
def course():
    """Two students: ada ran her lab 2 h on 3 Oct 2026; "=cmd" (a name a spreadsheet would run) none."""
    course = open_course(students=0, code="vsp8-views", quota={"vcpu_total": 10, "lab_hours_per_student": 20})
    # Fixed dates, as the figures below are: the factory's term moves with the day the tests run.
    Course.objects.filter(pk=course.pk).update(starts_on=date(2026, 9, 1), ends_on=date(2027, 1, 31))
    course.refresh_from_db()
    instructor = course.instructors.get()
    ada = StudentFactory(username="ada", first_name="Ada", last_name="Lovelace")
    mallory = StudentFactory(username="mallory", first_name="=cmd|' /C calc'!A0", last_name="")
    for student in (ada, mallory):
        course_services.enrollment_add(course=course, actor=instructor, student=student)
    lab = lab_row(course, ada, hours_used=2, created_at=datetime(2026, 9, 20, tzinfo=UTC))
    LabRun.objects.create(
        lab=lab, started_at=datetime(2026, 10, 3, 9, tzinfo=UTC), ended_at=datetime(2026, 10, 3, 11, tzinfo=UTC)
    )
    return course


def page_url(course) -> str:
    return reverse("labs:course-usage", args=[course.pk])


def csv_url(course) -> str:
    return reverse("labs:course-usage-csv", args=[course.pk])


def read_csv(response) -> list[dict]:
    return list(csv.DictReader(io.StringIO(response.content.decode())))


def test_the_course_s_instructor_sees_tables_and_charts(client, course):
    client.force_login(course.instructors.get())
    response = client.get(page_url(course), {"from": "2026-10-01", "to": "2026-10-31"})
    assert response.status_code == 200
    html = response.content.decode()
    # Dates in the one format of the period's date pickers (portal/templatetags/dates.py).
    assert '<time datetime="2026-10-01" data-date>2026-10-01</time> to <time datetime="2026-10-31" data-date>' in html
    assert '<td><time datetime="2026-10-03" data-date>2026-10-03</time></td><td>2</td>' in html
    ada = re.search(r'<tr data-student="ada">.*?</tr>', html, re.S).group(0)
    assert "Ada Lovelace" in ada
    assert re.findall(r'<td class="num[^"]*">([^<]*)', ada)[:2] == ["2", "2"]  # in the period, in all
    for chart in ("in-use-chart", "per-day-chart", "per-student-chart"):
        assert f'aria-labelledby="{chart}-title {chart}-desc"' in html
    assert "<title>Sat 3 Oct 2026: 2 h</title>" in html
    assert "<title>ada: 2 h</title>" in html
    assert "<title>Virtual CPUs: 5 of 10 vCPU · 50 %</title>" in html
    assert f'href="{csv_url(course)}?from=2026-10-01&amp;to=2026-10-31"' in html
    svg = html[html.index("<svg") : html.rindex("</svg>")]
    assert " style=" not in svg and "<script" not in html.split("<main", 1)[1]


def test_the_course_page_links_to_its_usage_and_the_csv_link_is_the_csv(client, course):
    client.force_login(course.instructors.get())
    page = client.get(reverse("courses:course-detail", args=[course.pk])).content.decode()
    assert f'<a href="{page_url(course)}">Usage per student, per day</a>' in page
    assert f'<a href="{csv_url(course)}" download>as CSV</a>' in page  # it opened the HTML page (issue 10)


def test_the_default_period_is_the_course_s_dates(client, course):
    client.force_login(AdminFactory())
    response = client.get(page_url(course))
    assert response.context["report"].period.start == date(2026, 9, 1)
    assert 'value="2027-01-31"' in response.content.decode()


def test_a_bad_period_is_said_in_words_and_the_default_shown(client, course):
    client.force_login(course.instructors.get())
    response = client.get(page_url(course), {"from": "2026-10-31", "to": "2026-10-01"})
    assert response.status_code == 400
    html = response.content.decode()
    assert "The period ends (2026-10-01) before it starts (2026-10-31)." in html
    assert 'Showing <time datetime="2026-09-01" data-date>2026-09-01</time> to ' in html
    assert client.get(page_url(course), {"from": "1 Oct"}).status_code == 400


def test_a_student_of_the_course_is_refused_in_words(client, course):
    client.force_login(course.enrollments.first().student)
    response = client.get(page_url(course))
    assert response.status_code == 403
    assert "Only this course's instructors and admins can see its usage." in unescape(response.content.decode())
    assert client.get(csv_url(course)).status_code == 403
    assert client.get(csv_url(course), {"from": "nonsense"}).status_code == 403  # refused before the period


def test_another_course_s_instructor_does_not_see_the_course(client, course):
    client.force_login(InstructorFactory())
    assert client.get(page_url(course)).status_code == 404
    assert client.get(csv_url(course)).status_code == 404


def test_signed_out_people_go_to_the_login_page(client, course):
    response = client.get(page_url(course))
    assert response.status_code == 302 and response.url.startswith(reverse("login"))


def test_the_csv_has_the_table_s_rows_and_no_formula(client, course):
    client.force_login(course.instructors.get())
    response = client.get(csv_url(course), {"from": "2026-10-01", "to": "2026-10-31"})
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"] == 'attachment; filename="usage-vsp8-views-2026-10-01-to-2026-10-31.csv"'
    rows = read_csv(response)
    assert list(rows[0]) == [
        "student",
        "name",
        "enrolled",
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
        "lab_hours_limit",
        "labs_limit",
    ]
    assert [row["student"] for row in rows] == ["ada", "mallory"]
    ada, mallory = rows
    assert (ada["name"], ada["enrolled"], ada["lab_hours"], ada["labs"], ada["vcpu"]) == (
        "Ada Lovelace",
        "yes",
        "2.0",
        "1",
        "5",
    )
    assert (ada["lab_hours_limit"], ada["labs_limit"]) == ("20", "")  # blank: no limit
    assert mallory["name"] == "'=cmd|' /C calc'!A0"


def test_a_bad_period_in_the_csv_is_a_400_in_words(client, course):
    client.force_login(course.instructors.get())
    response = client.get(csv_url(course), {"to": "2031-01-01"})
    assert response.status_code == 400
    assert response.content.decode() == "A period is at most 731 days; this one has 1584."


# Across courses


def test_admins_see_every_course_with_links_and_vcenters(client, course):
    client.force_login(AdminFactory())
    response = client.get(reverse("labs:usage"), {"from": "2026-10-01", "to": "2026-10-31"})
    assert response.status_code == 200
    html = response.content.decode()
    assert f'href="{page_url(course)}?from=2026-10-01&amp;to=2026-10-31"' in html
    assert f'<tr data-endpoint="{course.template_version.template.endpoint.name}">' in html
    assert "<title>vsp8-views: 2 h</title>" in html
    assert f'href="{reverse("labs:usage")}"' in html  # the nav link
    rows = read_csv(client.get(reverse("labs:usage-csv"), {"from": "2026-10-01", "to": "2026-10-31"}))
    assert [(row["code"], row["lab_hours"], row["vcpu"], row["vcpu_limit"]) for row in rows] == [
        ("vsp8-views", "2.0", "5", "10")
    ]


@pytest.mark.parametrize("who", [InstructorFactory, StudentFactory])
def test_only_admins_see_usage_across_courses(client, who):
    person = who()
    client.force_login(person)
    response = client.get(reverse("labs:usage"))
    assert response.status_code == 403
    assert "Only admins can see the usage of every course." in response.content.decode()
    assert client.get(reverse("labs:usage-csv")).status_code == 403
    assert f'href="{reverse("labs:usage")}"' not in client.get(reverse("home")).content.decode()
