"""labs/api/views.py course_provision and course_labs_bulk: a whole class, or a selection of
its labs, each lab through its own service (nothing is enqueued: no vCenter)."""

from __future__ import annotations

import pytest

from core.models import AuditEntry
from labs import services
from labs.models import Lab, Operation
from tests.factories import AdminFactory, open_course
from tests.integration.labs.api.conftest import client_for, idle, ready_lab, student_of

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def no_queue(monkeypatch):
    monkeypatch.setattr(services.dispatch, "send_operation", lambda *args, **kwargs: None)


def _provision(user, course, body=None):
    return client_for(user).post(f"/api/v1/courses/{course.pk}/provision/", body or {}, format="json")


def _bulk(user, course, action, labs):
    return client_for(user).post(
        f"/api/v1/courses/{course.pk}/labs/bulk/", {"action": action, "labs": labs}, format="json"
    )


# Provision the class


def test_provision_starts_a_lab_per_student_and_says_who_was_skipped_and_why():
    course = open_course(students=4, quota={"running_labs": 2})
    first = ready_lab(course, 0)
    response = _provision(course.instructors.get(), course)
    assert response.status_code == 202, response.json()
    body = response.json()
    [started] = body["started"]
    assert (started["kind"], started["state"]) == ("provision", "queued")
    assert Lab.objects.get(pk=started["lab"]).student == student_of(course, 1)
    assert body["skipped"] == {
        first.student.username: "already has a lab",
        student_of(course, 2).username: "No more labs can run at once in this class: the limit is 2 and 2 are in use.",
        student_of(course, 3).username: "No more labs can run at once in this class: the limit is 2 and 2 are in use.",
    }


def test_provision_some_students_and_name_those_not_in_the_class():
    course, other = open_course(students=3), open_course()
    chosen, stranger = student_of(course, 2), student_of(other)
    response = _provision(AdminFactory(), course, {"students": [chosen.username, stranger.username, "nobody-at-all"]})
    assert response.status_code == 202, response.json()
    body = response.json()
    assert [Lab.objects.get(pk=op["lab"]).student for op in body["started"]] == [chosen]
    assert body["skipped"] == {
        stranger.username: f"{stranger.username} is not enrolled in {course.code}.",
        "nobody-at-all": f"nobody-at-all is not enrolled in {course.code}.",
    }
    assert Lab.objects.count() == 1


def test_only_the_course_instructors_and_admins_provision():
    course, other = open_course(students=2), open_course()
    student = _provision(student_of(course), course)
    assert student.status_code == 403
    assert student.json()["detail"] == "Only this course's instructors can provision the class."
    assert _provision(other.instructors.get(), course).status_code == 404
    assert _provision(student_of(other), course).status_code == 404
    assert client_for().post(f"/api/v1/courses/{course.pk}/provision/").status_code == 403
    assert not Lab.objects.exists()


def test_provision_in_a_closed_course_is_400_in_words():
    course = open_course()
    course.state = "closed"
    course.save()
    response = _provision(course.instructors.get(), course)
    assert response.status_code == 400
    assert response.json()["detail"] == f"{course.title} is closed: labs cannot start."


# Bulk actions on a selection


def test_bulk_power_off_answers_per_lab_the_operation_or_the_refusal():
    course, other = open_course(students=3), open_course()
    idle_lab, busy_lab, deleted_lab = ready_lab(course, 0), ready_lab(course, 1), ready_lab(course, 2)
    foreign = ready_lab(other)
    running = services.lab_snapshot_create(lab=busy_lab, actor=busy_lab.student, name="mine")
    Lab.objects.filter(pk=deleted_lab.pk).update(state=Lab.State.DELETED)
    instructor = course.instructors.get()

    response = _bulk(
        instructor, course, "power_off", [idle_lab.pk, busy_lab.pk, deleted_lab.pk, foreign.pk, idle_lab.pk]
    )
    assert response.status_code == 202, response.json()
    results = response.json()["results"]
    assert [(row["lab"], row["status"]) for row in results] == [
        (idle_lab.pk, 202),
        (busy_lab.pk, 409),
        (deleted_lab.pk, 400),
        (foreign.pk, 404),
    ]
    started = results[0]["operation"]
    assert (started["kind"], started["lab"], started["actor"]) == ("power", idle_lab.pk, instructor.username)
    assert Operation.objects.get(pk=started["id"]).params == {"action": "off", "vm": None}
    assert results[0]["detail"] == ""
    assert results[1]["operation"] is None
    assert results[1]["detail"].startswith(f"{busy_lab.name} is busy: take snapshot #{running.pk} is queued.")
    assert results[2]["detail"] == f"{deleted_lab.name} is deleted."
    assert results[3]["detail"] == "No lab with that id in this course."
    assert not Operation.objects.filter(lab=foreign).exclude(kind="provision").exists()


def test_bulk_reset_and_delete_go_through_their_services():
    course = open_course(students=2, quota={"running_labs": 2})
    first, second = ready_lab(course, 0), ready_lab(course, 1)
    Lab.objects.filter(pk=first.pk).update(running_since=None)
    admin = AdminFactory()

    reset = _bulk(admin, course, "reset", [first.pk, second.pk]).json()["results"]
    assert [(row["status"], row["operation"]["kind"]) for row in reset] == [(202, "reset"), (202, "reset")]
    idle(first), idle(second)

    deleted = _bulk(admin, course, "delete", [first.pk, second.pk]).json()["results"]
    assert [(row["status"], row["operation"]["kind"]) for row in deleted] == [(202, "delete"), (202, "delete")]


def test_bulk_quota_refusals_name_the_limit():
    course = open_course(students=2, quota={"running_labs": 1})
    off = ready_lab(course, 0)
    Lab.objects.filter(pk=off.pk).update(running_since=None)
    running = ready_lab(course, 1)
    [result] = _bulk(course.instructors.get(), course, "reset", [off.pk]).json()["results"]
    assert result["status"] == 403
    assert result["detail"] == "No more labs can run at once in this class: the limit is 1 and 1 are in use."
    assert running.is_running
    # Refused like its own route would be, and recorded like it (it was not: issue 12).
    [entry] = AuditEntry.objects.filter(category="refusal")
    assert (entry.action, entry.actor, entry.target_id) == ("lab.bulk.reset", course.instructors.get(), str(off.pk))
    assert entry.detail == result["detail"]


def test_bulk_actions_do_not_reach_a_warm_pool_lab():
    """A pool lab is the pool's (labs.pools): not on the class table, a 404 at /labs/{id}/, so not
    the bulk route's either. It was: a reset powered it on outside the pool's window, a delete
    took it from under the pool."""
    from labs.models import WarmPool
    from tests.factories import lab_row

    course = open_course(students=1)
    WarmPool.objects.create(course=course, size=1)
    pooled = lab_row(course, None, 0)
    for action in ("power_off", "reset", "delete"):
        [result] = _bulk(course.instructors.get(), course, action, [pooled.pk]).json()["results"]
        assert (result["status"], result["detail"]) == (404, "No lab with that id in this course."), action
    assert not Operation.objects.filter(lab=pooled).exists()


def test_only_the_course_instructors_and_admins_act_in_bulk():
    course, other = open_course(students=2), open_course()
    lab = ready_lab(course)
    student = _bulk(lab.student, course, "power_off", [lab.pk])
    assert student.status_code == 403
    assert student.json()["detail"] == "Only this course's instructors can act on its labs together."
    assert _bulk(other.instructors.get(), course, "power_off", [lab.pk]).status_code == 404
    assert _bulk(student_of(other), course, "power_off", [lab.pk]).status_code == 404
    assert not Operation.objects.filter(lab=lab).exclude(kind="provision").exists()


def test_bulk_input_is_checked():
    course = open_course()
    instructor = course.instructors.get()
    wrong = _bulk(instructor, course, "explode", [1])
    assert wrong.status_code == 400 and "action" in wrong.json()["errors"]
    empty = _bulk(instructor, course, "delete", [])
    assert empty.status_code == 400 and "labs" in empty.json()["errors"]


def test_ids_the_database_cannot_hold_are_a_400_in_words_not_a_server_error():
    course = open_course()
    response = _bulk(course.instructors.get(), course, "power_off", [2**64])
    assert response.status_code == 400
    assert response.json()["errors"] == {
        "labs": ["item 1: Ensure this value is less than or equal to 9223372036854775807."]
    }
    listed = client_for(course.instructors.get()).get("/api/v1/labs/", {"course": 2**64})
    assert listed.status_code == 400 and "course" in listed.json()["errors"]
