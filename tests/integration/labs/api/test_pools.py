"""labs/api/pools.py: GET and PUT /api/v1/courses/<id>/pool/ with the class page's service and
checks: the course's instructors and admins; others refused; bad input a 400 in words."""

from __future__ import annotations

import pytest

from labs import dispatch, services
from labs.models import WarmPool
from tests.factories import AdminFactory, InstructorFactory, StudentFactory, open_course
from tests.integration.labs.api.conftest import client_for

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def no_queue(monkeypatch):
    monkeypatch.setattr(services.dispatch, "send_operation", lambda *args, **kwargs: None)
    monkeypatch.setattr(dispatch, "pool_nudge", lambda course_id: None)


def _url(course) -> str:
    return f"/api/v1/courses/{course.pk}/pool/"


def test_the_instructor_reads_and_sizes_the_pool():
    course = open_course(students=2, quota={"pool_labs": 1})
    client = client_for(course.instructors.get())
    empty = client.get(_url(course))
    assert empty.status_code == 200
    assert empty.json() | {} == {
        "size": 0,
        "sizing": "fixed",
        "target": 0,
        "cap": 1,
        "ready": 0,
        "building": 0,
        "given_today": 0,
        "words": "No warm pool: every Start builds a new lab.",
    }
    sized = client.put(_url(course), {"size": 3, "sizing": "schedule"}, format="json")
    assert sized.status_code == 200, sized.json()
    assert sized.json()["size"] == 3 and sized.json()["target"] == 3
    assert "the quota caps the pool at 1" in sized.json()["words"]
    pool = WarmPool.objects.get(course=course)
    assert (pool.size, pool.sizing, pool.updated_by) == (3, "schedule", course.instructors.get())
    assert client_for(AdminFactory()).put(_url(course), {"size": 0}, format="json").json()["size"] == 0


def test_bad_sizes_are_400_in_words_and_change_nothing():
    course = open_course(students=1)
    client = client_for(course.instructors.get())
    client.put(_url(course), {"size": 2}, format="json")
    for body, field in (({"size": -1}, "size"), ({"size": 5000}, "size"), ({"size": 1, "sizing": "often"}, "sizing")):
        response = client.put(_url(course), body, format="json")
        assert response.status_code == 400, body
        assert field in str(response.json())
    assert WarmPool.objects.get(course=course).size == 2


def test_another_courses_instructor_and_students_are_refused():
    course = open_course(students=1)
    student = course.enrollments.get().student
    assert client_for(student).get(_url(course)).status_code == 403
    assert client_for(student).put(_url(course), {"size": 1}, format="json").status_code == 403
    assert client_for(StudentFactory()).get(_url(course)).status_code in (403, 404)
    other = client_for(InstructorFactory())
    assert other.get(_url(course)).status_code in (403, 404)
    assert other.put(_url(course), {"size": 1}, format="json").status_code in (403, 404)
    assert client_for().get(_url(course)).status_code in (401, 403)
    assert not WarmPool.objects.exists()
