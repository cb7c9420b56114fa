"""labs/pool_views.py: the class page shows the warm pool and its form; the instructor sizes it
(htmx gets the panel back, a plain post a redirect); bad input a 400 in words; others refused."""

from __future__ import annotations

import pytest
from django.test import Client

from labs import dispatch, services
from labs.models import Lab, WarmPool
from tests.factories import InstructorFactory, open_course

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def no_queue(monkeypatch):
    monkeypatch.setattr(services.dispatch, "send_operation", lambda *args, **kwargs: None)
    monkeypatch.setattr(dispatch, "pool_nudge", lambda course_id: None)


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_the_class_page_shows_the_pool_and_the_form_sizes_it():
    course = open_course(students=2)
    instructor = course.instructors.get()
    client = _client(instructor)
    page = client.get(f"/labs/courses/{course.pk}/")
    assert page.status_code == 200
    assert b"Warm pool" in page.content and b"No warm pool: every Start builds a new lab." in page.content

    answer = client.post(f"/labs/courses/{course.pk}/pool/", {"size": "2", "sizing": "fixed"}, HTTP_HX_REQUEST="true")
    assert answer.status_code == 200
    assert b"The warm pool keeps 2 labs ready." in answer.content
    assert b"0 ready and 0 being built of 2 wanted" in answer.content
    assert WarmPool.objects.get(course=course).size == 2
    # Pool labs are no rows of the class table.
    version = course.template_version
    Lab.objects.create(course=course, template_version=version, endpoint=version.template.endpoint, state="ready")
    table = client.get(f"/labs/courses/{course.pk}/fragments/table/")
    assert b"-pool-" not in table.content
    fragment = client.get(f"/labs/courses/{course.pk}/fragments/pool/")
    assert b"1 ready and 0 being built of 2 wanted" in fragment.content

    plain = client.post(f"/labs/courses/{course.pk}/pool/", {"size": "1", "sizing": "schedule"})
    assert plain.status_code == 302 and plain["Location"].endswith(f"/labs/courses/{course.pk}/#pool")


def test_a_bad_size_is_refused_in_words_and_nothing_changes():
    course = open_course(students=1)
    client = _client(course.instructors.get())
    answer = client.post(f"/labs/courses/{course.pk}/pool/", {"size": "5000", "sizing": "fixed"}, HTTP_HX_REQUEST="1")
    assert answer.status_code == 400
    assert b"less than or equal to 1000" in answer.content
    assert not WarmPool.objects.exists()


def test_students_and_another_courses_instructor_are_refused():
    course = open_course(students=1)
    for person in (course.enrollments.get().student, InstructorFactory()):
        client = _client(person)
        assert client.get(f"/labs/courses/{course.pk}/fragments/pool/").status_code in (403, 404)
        assert client.post(f"/labs/courses/{course.pk}/pool/", {"size": "1", "sizing": "fixed"}).status_code in (
            403,
            404,
        )
    assert not WarmPool.objects.exists()
