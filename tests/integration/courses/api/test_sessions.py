"""courses/api/sessions.py: a course's class sessions and next meetings."""

import datetime

import pytest

from courses.models import ClassSession
from tests.factories import StudentFactory, open_course
from tests.integration.courses.api.conftest import client_for

pytestmark = pytest.mark.django_db

WEEKLY = {
    "title": "Lab hours",
    "repeat": "weekly",
    "first_date": "2026-03-02",
    "last_date": "2026-05-29",
    "weekdays": [1, 3],
    "start_time": "09:00",
    "duration_minutes": 90,
    "time_zone": "Europe/Paris",
}


def _url(course, rest=""):
    return f"/api/v1/courses/{course.pk}/sessions/{rest}"


def test_an_instructor_adds_changes_and_removes_a_weekly_session():
    course = open_course(students=1)
    client = client_for(course.instructors.get())
    response = client.post(_url(course), WEEKLY, format="json")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["weekdays"] == [1, 3] and body["ready_minutes_before"] == 10
    assert body["description"].startswith("Every Monday, Wednesday at 09:00 Europe/Paris")
    response = client.patch(_url(course, f"{body['id']}/"), {"ready_minutes_before": 30}, format="json")
    assert response.status_code == 200 and response.json()["ready_minutes_before"] == 30
    assert client.get(_url(course)).json()["results"][0]["id"] == body["id"]
    assert client.delete(_url(course, f"{body['id']}/")).status_code == 204
    assert not ClassSession.objects.exists()


@pytest.mark.parametrize(
    ("change", "field", "words"),
    [
        ({"time_zone": "Paris"}, "time_zone", "Paris is not a time zone Nestlab knows: give an IANA name"),
        ({"duration_minutes": 0}, "duration_minutes", "Ensure this value is greater than or equal to 1."),
        ({"last_date": "2026-03-01"}, "last_date", "The last date is before the first: the session would never meet."),
        ({"weekdays": [0]}, "weekdays", "Pick the days it meets: 1 (Monday) to 7 (Sunday), each once."),
        ({"repeat": "daily"}, "repeat", "“daily” is not one of the choices: once, weekly."),
    ],
)
def test_bad_sessions_are_a_400_in_words(change, field, words):
    course = open_course(students=0)
    response = client_for(course.instructors.get()).post(_url(course), {**WEEKLY, **change}, format="json")
    assert response.status_code == 400
    assert words in " ".join(response.json()["errors"][field])
    assert not ClassSession.objects.exists()


def test_students_read_the_sessions_and_next_meetings_of_their_course_only():
    course = open_course(students=1)
    student = course.enrollments.get().student
    today = datetime.date.today()
    client_for(course.instructors.get()).post(
        _url(course),
        {
            "first_date": str(today + datetime.timedelta(days=2)),
            "start_time": "14:30",
            "duration_minutes": 60,
            "time_zone": "America/New_York",
            "ready_minutes_before": 15,
        },
        format="json",
    )
    response = client_for(student).get(_url(course, "upcoming/"))
    assert response.status_code == 200
    [meeting] = response.json()
    assert meeting["local_start"].startswith(f"{today + datetime.timedelta(days=2)}T14:30:00")
    assert meeting["time_zone"] == "America/New_York"
    starts = datetime.datetime.fromisoformat(meeting["starts_at"].replace("Z", "+00:00"))
    ready = datetime.datetime.fromisoformat(meeting["labs_ready_at"].replace("Z", "+00:00"))
    assert starts - ready == datetime.timedelta(minutes=15)
    assert client_for(student).post(_url(course), WEEKLY, format="json").status_code == 403
    assert client_for(StudentFactory()).get(_url(course)).status_code == 404
