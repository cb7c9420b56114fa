"""courses/views.py, class sessions: instructors add and remove them on the course page, refused
input comes back on the form in words, students read the next session and when their lab is ready."""

from __future__ import annotations

import datetime

import pytest
from django.urls import reverse

from courses import services
from courses.models import ClassSession
from tests.factories import StudentFactory, open_course

pytestmark = pytest.mark.django_db

TOMORROW = datetime.date.today() + datetime.timedelta(days=1)
FORM = {
    "title": "Lab 3: vMotion",
    "repeat": "weekly",
    "first_date": str(TOMORROW),
    "last_date": str(TOMORROW + datetime.timedelta(days=60)),
    "weekdays": [str(TOMORROW.isoweekday())],
    "start_time": "09:00",
    "duration_minutes": "90",
    "time_zone": "Europe/Paris",
    "ready_minutes_before": "15",
}


def test_an_instructor_adds_a_weekly_session_and_removes_it(client):
    course = open_course(students=1)
    client.force_login(course.instructors.get())
    page = client.get(reverse("courses:course-detail", args=[course.pk]))
    assert b"No class sessions are set" in page.content and b"Add session" in page.content
    response = client.post(reverse("courses:class-session-add", args=[course.pk]), FORM)
    assert response.status_code == 302 and response["Location"].endswith("#sessions")
    session = ClassSession.objects.get()
    assert session.weekdays == [TOMORROW.isoweekday()] and session.ready_minutes_before == 15
    page = client.get(reverse("courses:course-detail", args=[course.pk]))
    text = page.content.decode()
    assert "Next session:</strong> Lab 3: vMotion" in text and "(Europe/Paris)" in text
    assert "09:00" in text and "ready and running by" in text
    response = client.post(reverse("courses:class-session-remove", args=[course.pk, session.pk]))
    assert response.status_code == 302 and not ClassSession.objects.exists()


def test_a_bad_session_comes_back_on_the_form_in_words(client):
    course = open_course(students=0)
    client.force_login(course.instructors.get())
    response = client.post(
        reverse("courses:class-session-add", args=[course.pk]),
        {**FORM, "last_date": str(TOMORROW - datetime.timedelta(days=1)), "duration_minutes": "0"},
    )
    assert response.status_code == 200
    form = response.context["session_form"]
    assert "greater than or equal to 1" in " ".join(form.errors["duration_minutes"])
    assert not ClassSession.objects.exists()
    response = client.post(
        reverse("courses:class-session-add", args=[course.pk]),
        {**FORM, "last_date": str(TOMORROW - datetime.timedelta(days=1))},
    )
    assert "The last date is before the first" in response.content.decode()


def test_students_read_the_next_session_and_cannot_change_them(client):
    course = open_course(students=1)
    student = course.enrollments.get().student
    services.class_session_create(
        course=course,
        actor=course.instructors.get(),
        first_date=TOMORROW,
        start_time=datetime.time(14, 0),
        duration_minutes=60,
        time_zone="America/New_York",
        ready_minutes_before=10,
    )
    client.force_login(student)
    text = client.get(reverse("courses:course-detail", args=[course.pk])).content.decode()
    assert "Next session:" in text and "14:00" in text and "Your lab will be ready by" in text and "13:50" in text
    assert "Add session" not in text
    response = client.post(reverse("courses:class-session-add", args=[course.pk]), FORM, follow=True)
    assert "Only this course&#x27;s instructors and admins can change its sessions." in response.content.decode()
    assert ClassSession.objects.count() == 1
    client.force_login(StudentFactory())
    assert client.get(reverse("courses:course-detail", args=[course.pk])).status_code == 404
