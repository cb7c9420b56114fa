"""labs/api/guides.py: a lab's guide and "Check my work" (labs/{id}/guide/...), and a course's
progress grid, CSV, class-wide check and scores (courses/{course_id}/guide/...). Nothing is
enqueued (no vCenter): the checks' runs are tests/integration/labs/jobs/test_guide_check.py."""

from __future__ import annotations

import csv
import io

import pytest

from core import crypto
from courses.models import GuideCheck
from labs import guides, services
from labs.models import CheckResult, Lab, Operation, StepResult
from lti.models import CourseLink
from tests.factories import AdminFactory, InstructorFactory, LtiPlatformFactory, lab_row, open_course
from tests.integration.labs.api.conftest import client_for

pytestmark = [pytest.mark.integration, pytest.mark.django_db]

# What a student must never read, through any route: each check's answer, command, output
# pattern and expected value, and the guest account's password (plain or encrypted).
SECRETS = ("SECRETCMD", "SECRETPATTERN", "SECRETANSWER", "SECRETEXPECTED", "SECRETGUESTPW")


def _check(key: str, kind: str, **fields) -> dict:
    return {
        "key": key,
        "kind": kind,
        "label": f"Check {key}",
        "vm_role": "",
        "command": "",
        "exit_code": 0,
        "output_pattern": "",
        "timeout_seconds": 30,
        "prompt": "",
        "answer_mode": "exact",
        "answer": "",
        "case_sensitive": False,
        "vm_property": "",
        "expected": "",
        **fields,
    }


GUIDE = {
    "variables": [{"name": "lab_code", "kind": "string", "length": 8, "minimum": 1, "maximum": 100, "choices": []}],
    "steps": [
        {"key": "10", "title": "Read", "body_html": "<p>Your code is {{ lab_code }}</p>", "points": 0, "checks": []},
        {
            "key": "11",
            "title": "Sign",
            "body_html": "<p>Sign</p>",
            "points": 10,
            "checks": [
                _check(
                    "21",
                    GuideCheck.Kind.COMMAND,
                    vm_role="esxi-01",
                    command="grep SECRETCMD /x",
                    output_pattern="SECRETPATTERN",
                ),
                _check("22", GuideCheck.Kind.QUESTION, prompt="Which code?", answer="SECRETANSWER {{ lab_code }}"),
                _check(
                    "23",
                    GuideCheck.Kind.VM_STATE,
                    vm_role="esxi-01",
                    vm_property="snapshot_exists",
                    expected="SECRETEXPECTED",
                ),
            ],
        },
    ],
}


@pytest.fixture(autouse=True)
def no_queue(monkeypatch):
    monkeypatch.setattr(services.dispatch, "send_operation", lambda *args, **kwargs: None)


@pytest.fixture
def course():
    course = open_course(students=3)
    version = course.template_version
    version.guide = GUIDE
    version.guest_accounts = {"esxi-01": {"username": "root", "password_ciphertext": crypto.encrypt("SECRETGUESTPW")}}
    version.save(update_fields=["guide", "guest_accounts"])
    return course


def _students(course):
    return [enrollment.student for enrollment in course.enrollments.order_by("student__username")]


@pytest.fixture
def labs(course):
    return [
        lab_row(course, student, variables={"lab_code": f"code{index}"})
        for index, student in enumerate(_students(course)[:2])
    ]


def _idle():
    """Every operation under way ends (nothing runs them here)."""
    Operation.objects.filter(state__in=Operation.ACTIVE_STATES).update(state=Operation.State.SUCCEEDED)


def _no_secrets(response) -> None:
    text = response.content.decode()
    leaked = [secret for secret in SECRETS if secret in text]
    assert not leaked, f"{response.request['PATH_INFO']} shows {leaked}"


# A lab's guide


def test_the_student_reads_their_guide_with_their_values_and_without_any_answer(labs):
    lab = labs[0]
    response = client_for(lab.student).get(f"/api/v1/labs/{lab.pk}/guide/")
    assert response.status_code == 200, response.json()
    body = response.json()
    assert [step["key"] for step in body["steps"]] == ["10", "11"]
    assert body["steps"][0]["body_html"] == "<p>Your code is code0</p>"
    assert [check["key"] for check in body["steps"][1]["checks"]] == ["21", "22", "23"]
    assert body["steps"][1]["checks"][1]["prompt"] == "Which code?"
    assert all(check["result"] is None for check in body["steps"][1]["checks"])
    assert (body["position"], body["score"], body["max_score"]) == (1, 0, 10)
    assert {step["state"] for step in body["steps"]} == {"untried"}
    _no_secrets(response)


def test_the_course_instructor_and_admins_read_a_students_guide_without_answers_too(labs, course):
    lab = labs[0]
    for reader in (course.instructors.get(), AdminFactory()):
        response = client_for(reader).get(f"/api/v1/labs/{lab.pk}/guide/")
        assert response.status_code == 200
        _no_secrets(response)


def test_another_student_or_instructor_finds_no_such_lab(labs, course):
    lab, other_student = labs[0], labs[1].student
    outsider = open_course(students=1)
    for stranger in (other_student, InstructorFactory(), outsider.instructors.get()):
        client = client_for(stranger)
        assert client.get(f"/api/v1/labs/{lab.pk}/guide/").status_code == 404
        assert client.post(f"/api/v1/labs/{lab.pk}/guide/check/", {"step": "11"}, format="json").status_code == 404
        assert client.post(f"/api/v1/labs/{lab.pk}/guide/steps/10/done/").status_code == 404
        assert client.put(f"/api/v1/labs/{lab.pk}/guide/position/", {"position": 2}, format="json").status_code == 404
    assert not Operation.objects.filter(kind=Operation.Kind.CHECK).exists()
    assert not StepResult.objects.exists()
    assert client_for().get(f"/api/v1/labs/{lab.pk}/guide/").status_code == 403


def test_check_my_work_answers_202_with_the_check_operation(labs):
    lab = labs[0]
    response = client_for(lab.student).post(
        f"/api/v1/labs/{lab.pk}/guide/check/", {"step": "11", "answers": {"22": "SECRET? no: code0"}}, format="json"
    )
    assert response.status_code == 202, response.json()
    body = response.json()
    assert (body["kind"], body["state"], body["lab"]) == ("check", "queued", lab.pk)
    operation = Operation.objects.get(pk=body["id"])
    assert operation.params == {"step": "11", "answers": {"22": "SECRET? no: code0"}, "by_student": True}


def test_an_instructors_check_keeps_no_answers(labs, course):
    lab = labs[0]
    response = client_for(course.instructors.get()).post(
        f"/api/v1/labs/{lab.pk}/guide/check/", {"step": 11, "answers": {"22": "x"}}, format="json"
    )
    assert response.status_code == 202, response.json()
    assert Operation.objects.get(pk=response.json()["id"]).params == {"step": "11", "answers": {}, "by_student": False}


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        ({"step": "99"}, "step", "This lab's guide has no such step."),
        ({"step": "10"}, "step", "This step has no checks: mark it done when you have done it."),
        ({"step": "11", "answers": ["code0"]}, "answers", "Give the answers as {check key: answer}."),
        ({"step": "11", "answers": "code0"}, "answers", "Give the answers as {check key: answer}."),
        ({"step": "11", "answers": {"21": "x"}}, "answers", "This step has no such question."),
        ({"step": "11", "answers": {"22": 5}}, "answers", "An answer is text."),
        ({"step": "11", "answers": {"22": "a\x00b"}}, "answers", "An answer cannot contain a NUL character."),
        ({"step": "11", "answers": {"22": "x" * 501}}, "answers", "Keep an answer under 500 characters."),
        ({}, "step", "This field is required."),
        ({"step": ""}, "step", "This field may not be blank."),
    ],
)
def test_bad_input_to_a_check_is_400_in_words_and_starts_nothing(labs, body, field, words):
    lab = labs[0]
    response = client_for(lab.student).post(f"/api/v1/labs/{lab.pk}/guide/check/", body, format="json")
    assert response.status_code == 400
    assert response.json()["errors"] == {field: [words]}
    assert words in response.json()["detail"]
    assert not Operation.objects.exists()


def test_a_lab_that_is_not_ready_is_not_checked(labs):
    lab = labs[0]
    Lab.objects.filter(pk=lab.pk).update(state=Lab.State.PROVISIONING)
    response = client_for(lab.student).post(f"/api/v1/labs/{lab.pk}/guide/check/", {"step": "11"}, format="json")
    assert response.status_code == 400
    assert response.json()["detail"] == f"Checks run on a ready lab; {lab.name} is provisioning."


def test_a_second_check_while_one_runs_is_409(labs):
    lab = labs[0]
    client = client_for(lab.student)
    assert client.post(f"/api/v1/labs/{lab.pk}/guide/check/", {"step": "11"}, format="json").status_code == 202
    busy = client.post(f"/api/v1/labs/{lab.pk}/guide/check/", {"step": "11"}, format="json")
    assert busy.status_code == 409
    assert busy.json()["detail"].startswith(f"{lab.name} is busy")


def test_checking_too_often_is_429_with_retry_after(labs, settings):
    settings.NESTLAB_GUIDE_CHECKS_PER_MINUTE = 2
    lab = labs[0]
    client = client_for(lab.student)
    for _ in range(2):
        assert client.post(f"/api/v1/labs/{lab.pk}/guide/check/", {"step": "11"}, format="json").status_code == 202
        _idle()
    refused = client.post(f"/api/v1/labs/{lab.pk}/guide/check/", {"step": "11"}, format="json")
    assert refused.status_code == 429
    wait = int(refused["Retry-After"])
    assert 1 <= wait <= 61
    assert refused.json() == {
        "detail": f"Your labs in {lab.course.code} were checked 2 times in the last minute (at most 2): "
        f"try again in {wait} s."
    }
    assert Operation.objects.filter(kind=Operation.Kind.CHECK).count() == 2
    # Another lab has its own allowance.
    other = labs[1]
    assert (
        client_for(other.student)
        .post(f"/api/v1/labs/{other.pk}/guide/check/", {"step": "11"}, format="json")
        .status_code
        == 202
    )


def test_a_removed_student_reads_their_guide_but_checks_nothing(labs, course):
    lab = labs[0]
    from courses import services as course_services

    course_services.enrollment_remove(
        enrollment=course.enrollments.get(student=lab.student), actor=course.instructors.get()
    )
    client = client_for(lab.student)
    assert client.get(f"/api/v1/labs/{lab.pk}/guide/").status_code == 200
    refused = client.post(f"/api/v1/labs/{lab.pk}/guide/check/", {"step": "11"}, format="json")
    assert refused.status_code == 403
    assert "no longer enrolled" in refused.json()["detail"]


def test_a_step_without_checks_is_marked_done_and_the_progress_answered(labs):
    lab = labs[0]
    client = client_for(lab.student)
    response = client.post(f"/api/v1/labs/{lab.pk}/guide/steps/10/done/")
    assert response.status_code == 200, response.json()
    body = response.json()
    assert (body["lab"], body["student"], body["steps"]) == (lab.pk, lab.student.pk, {"10": "done", "11": "untried"})
    assert client.get(f"/api/v1/labs/{lab.pk}/guide/").json()["steps"][0]["state"] == "done"
    with_checks = client.post(f"/api/v1/labs/{lab.pk}/guide/steps/11/done/")
    assert with_checks.status_code == 400
    assert with_checks.json()["errors"] == {"step": ["This step is done when its checks pass: use Check my work."]}
    unknown = client.post(f"/api/v1/labs/{lab.pk}/guide/steps/nope/done/")
    assert unknown.status_code == 400
    assert unknown.json()["detail"] == "This lab's guide has no such step."


def test_the_student_keeps_their_place_in_the_guide(labs):
    lab = labs[0]
    client = client_for(lab.student)
    response = client.put(f"/api/v1/labs/{lab.pk}/guide/position/", {"position": 2}, format="json")
    assert response.status_code == 200, response.json()
    assert response.json() == {"position": 2}
    assert client.get(f"/api/v1/labs/{lab.pk}/guide/").json()["position"] == 2
    for bad in (3, 0, "two", None):
        refused = client.patch(f"/api/v1/labs/{lab.pk}/guide/position/", {"position": bad}, format="json")
        assert refused.status_code == 400, bad
        assert refused.json()["errors"]["position"]
    assert Lab.objects.get(pk=lab.pk).guide_position == 2


def test_no_route_a_student_may_call_shows_an_answer_a_command_or_the_guest_password(labs, course):
    """After a check ran (its results recorded as a worker records them), everything the
    student can read about their lab, its operations and their course."""
    lab = labs[0]
    operation = guides.lab_check_start(lab=lab, actor=lab.student, step_key="11", answers={"22": "code0"})
    guides.check_results_record(
        lab=lab,
        step=GUIDE["steps"][1],
        outcomes=[
            guides.CheckOutcome("21", passed=False, words="Not yet.", output="no such file"),
            guides.CheckOutcome("22", passed=False, words="That is not the expected answer.", answer="code0"),
            guides.CheckOutcome("23", passed=True, words="Snapshot found."),
        ],
        operation=operation,
    )
    Operation.objects.filter(pk=operation.pk).update(
        state=Operation.State.SUCCEEDED, result={"step": "11", "passed": 1, "total": 3, "completed": False}
    )
    client = client_for(lab.student)
    guide = client.get(f"/api/v1/labs/{lab.pk}/guide/")
    assert guide.json()["steps"][1]["checks"][0]["result"]["output"] == "no such file"
    assert guide.json()["steps"][1]["checks"][1]["result"]["answer"] == "code0"
    assert guide.json()["steps"][1]["state"] == "failed"
    for path in (
        f"/api/v1/labs/{lab.pk}/guide/",
        "/api/v1/labs/",
        f"/api/v1/labs/{lab.pk}/",
        "/api/v1/operations/",
        f"/api/v1/operations/{operation.pk}/",
        "/api/v1/courses/",
        f"/api/v1/courses/{course.pk}/",
        f"/api/v1/courses/{course.pk}/guide/progress/",
        f"/api/v1/templates/{course.template_version.template_id}/guide/steps/",
        f"/api/v1/templates/{course.template_version.template_id}/versions/",
    ):
        response = client.get(path)
        assert response.status_code in (200, 403), path
        _no_secrets(response)
    _no_secrets(client.post(f"/api/v1/labs/{lab.pk}/guide/steps/10/done/"))
    _no_secrets(client.put(f"/api/v1/labs/{lab.pk}/guide/position/", {"position": 2}, format="json"))


# A course's guide


def test_the_progress_grid_has_a_row_per_student_and_a_cell_per_step(labs, course):
    first, second = labs
    StepResult.objects.create(lab=first, step_key="10", completed_at=first.created_at)
    StepResult.objects.create(lab=first, step_key="11", completed_at=first.created_at, points=10)
    CheckResult.objects.create(
        lab=second, step_key="11", check_key="21", passed=False, words="Not yet.", checked_at=second.created_at
    )
    response = client_for(course.instructors.get()).get(f"/api/v1/courses/{course.pk}/guide/progress/")
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["steps"] == [
        {"key": "10", "number": 1, "title": "Read", "points": 0},
        {"key": "11", "number": 2, "title": "Sign", "points": 10},
    ]
    assert body["max_score"] == 10
    students = _students(course)
    assert [(row["student"], row["lab"], row["score"], row["cells"]) for row in body["rows"]] == [
        (students[0].username, first.pk, 10, ["done", "done"]),
        (students[1].username, second.pk, 0, ["untried", "failed"]),
        (students[2].username, None, 0, ["untried", "untried"]),
    ]
    _no_secrets(response)


def test_the_grid_and_the_class_routes_are_for_the_course_staff(labs, course):
    student, other = labs[0].student, open_course(students=0).instructors.get()
    routes = [
        ("get", f"/api/v1/courses/{course.pk}/guide/progress/", None),
        ("get", f"/api/v1/courses/{course.pk}/guide/progress.csv", None),
        ("post", f"/api/v1/courses/{course.pk}/guide/check/", {"step": "11"}),
        ("post", f"/api/v1/courses/{course.pk}/guide/scores/", None),
    ]
    for method, path, body in routes:
        refused = getattr(client_for(student), method)(path, body, format="json")
        assert refused.status_code == 403, path
        assert refused.json()["detail"].startswith("Only this course's instructors can"), path
        assert getattr(client_for(other), method)(path, body, format="json").status_code == 404, path
        assert getattr(client_for(AdminFactory()), method)(path, body, format="json").status_code in (200, 202)
    # A student's refusal comes before their body is read.
    assert client_for(student).post(f"/api/v1/courses/{course.pk}/guide/check/", {}, format="json").status_code == 403


def test_the_grid_as_csv_keeps_formulas_as_text(labs, course):
    student = _students(course)[0]
    student.first_name, student.last_name = '=HYPERLINK("http://x")', "Doe"
    student.save()
    guide = {**GUIDE, "steps": [{**GUIDE["steps"][0], "title": "@SUM(A1)"}, GUIDE["steps"][1]]}
    version = course.template_version
    version.guide = guide
    version.save(update_fields=["guide"])
    response = client_for(course.instructors.get()).get(f"/api/v1/courses/{course.pk}/guide/progress.csv")
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"] == f'attachment; filename="guide-progress-{course.code}.csv"'
    rows = list(csv.reader(io.StringIO(response.content.decode())))
    assert rows[0] == [
        "student",
        "name",
        "lab",
        "score",
        "max_score",
        "1. @SUM(A1)",
        "2. Sign",
    ]  # the number leads: no formula
    assert rows[1] == [
        student.username,
        '\'=HYPERLINK("http://x") Doe',
        str(labs[0].pk),
        "0",
        "10",
        "untried",
        "untried",
    ]
    assert len(rows) == 4
    _no_secrets(response)


def test_the_class_check_answers_per_lab(labs, course):
    first, second = labs
    elsewhere = open_course(students=1)
    stranger = lab_row(elsewhere, _students(elsewhere)[0])
    Lab.objects.filter(pk=second.pk).update(state=Lab.State.PROVISIONING)
    instructor = course.instructors.get()
    response = client_for(instructor).post(
        f"/api/v1/courses/{course.pk}/guide/check/",
        {"step": "11", "labs": [first.pk, second.pk, stranger.pk, first.pk]},
        format="json",
    )
    assert response.status_code == 202, response.json()
    results = response.json()["results"]
    assert [(row["lab"], row["status"]) for row in results] == [(first.pk, 202), (second.pk, 400), (stranger.pk, 404)]
    assert results[0]["operation"]["kind"] == "check"
    assert results[0]["operation"]["actor"] == instructor.username
    assert results[1]["detail"] == f"Checks run on a ready lab; {second.name} is provisioning."
    assert results[2]["detail"] == "No lab with that id in this course."
    assert not Operation.objects.filter(lab=stranger).exists()


def test_the_class_check_without_labs_takes_every_ready_lab(labs, course):
    _idle()
    response = client_for(course.instructors.get()).post(
        f"/api/v1/courses/{course.pk}/guide/check/", {"step": "11"}, format="json"
    )
    assert response.status_code == 202
    assert sorted(row["lab"] for row in response.json()["results"]) == sorted(lab.pk for lab in labs)
    assert {row["status"] for row in response.json()["results"]} == {202}


@pytest.mark.parametrize(
    ("body", "field"),
    [({}, "step"), ({"step": "11", "labs": []}, "labs"), ({"step": "11", "labs": ["one"]}, "labs")],
)
def test_bad_input_to_the_class_check_is_400_in_words(labs, course, body, field):
    response = client_for(course.instructors.get()).post(
        f"/api/v1/courses/{course.pk}/guide/check/", body, format="json"
    )
    assert response.status_code == 400
    assert list(response.json()["errors"]) == [field]
    assert not Operation.objects.filter(kind=Operation.Kind.CHECK).exists()


def test_sending_the_scores_to_the_lms(labs, course, monkeypatch):
    sent = []
    monkeypatch.setattr(guides.lti_services, "score_send", lambda **kwargs: sent.append(kwargs))
    instructor = course.instructors.get()
    none_linked = client_for(instructor).post(f"/api/v1/courses/{course.pk}/guide/scores/")
    assert none_linked.status_code == 200
    assert none_linked.json() == {"sent": 0, "detail": "Scores of 0 students sent to the LMS."}

    CourseLink.objects.create(
        platform=LtiPlatformFactory(),
        deployment_id="d-1",
        context_id="c-1",
        course=course,
        lineitems_url="https://lms.example.edu/lineitems",
    )
    StepResult.objects.create(lab=labs[0], step_key="11", completed_at=labs[0].created_at, points=10)
    response = client_for(instructor).post(f"/api/v1/courses/{course.pk}/guide/scores/")
    assert response.status_code == 200
    assert response.json() == {"sent": 2, "detail": "Scores of 2 students sent to the LMS."}
    scores = {call["student"]: (call["score_given"], call["score_maximum"]) for call in sent}
    assert scores == {labs[0].student: (10, 10), labs[1].student: (0, 10)}
