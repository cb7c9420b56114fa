"""labs/guides.py: who may check a lab and how often, the words for bad input, results recorded
into progress and scores (to the LMS grade book too), the class-wide check; and the guide
selectors (labs/selectors.py) that never show a student an answer."""

from __future__ import annotations

import pytest
from django.core.exceptions import PermissionDenied, ValidationError

from core.errors import Conflict, TooSoon
from courses.models import GuideCheck
from labs import guides, selectors, services
from labs.models import CheckResult, Lab, Operation, StepResult
from tests.factories import InstructorFactory, lab_row, open_course

pytestmark = [pytest.mark.integration, pytest.mark.django_db]

GUIDE = {
    "variables": [],
    "steps": [
        {"key": "10", "title": "Read", "body_html": "<p>Read me</p>", "points": 0, "checks": []},
        {
            "key": "11",
            "title": "Sign",
            "body_html": "<p>Sign</p>",
            "points": 10,
            "checks": [
                {
                    "key": "21",
                    "kind": GuideCheck.Kind.COMMAND,
                    "label": "Signed",
                    "vm_role": "router",
                    "command": "grep SECRETCMD /x",
                    "exit_code": 0,
                    "output_pattern": "",
                    "timeout_seconds": 5,
                    "prompt": "",
                    "answer_mode": "exact",
                    "answer": "",
                    "case_sensitive": False,
                    "vm_property": "",
                    "expected": "",
                },
                {
                    "key": "22",
                    "kind": GuideCheck.Kind.QUESTION,
                    "label": "Address",
                    "vm_role": "",
                    "command": "",
                    "exit_code": 0,
                    "output_pattern": "",
                    "timeout_seconds": 30,
                    "prompt": "Which address?",
                    "answer_mode": "exact",
                    "answer": "SECRETANSWER",
                    "case_sensitive": False,
                    "vm_property": "",
                    "expected": "",
                },
            ],
        },
    ],
}


@pytest.fixture
def course(monkeypatch):
    monkeypatch.setattr(services.dispatch, "send_operation", lambda *args, **kwargs: None)
    course = open_course(students=2)
    version = course.template_version
    version.guide = GUIDE
    version.save(update_fields=["guide"])
    return course


@pytest.fixture
def labs(course):
    first, second = (enrollment.student for enrollment in course.enrollments.order_by("student__username"))
    return lab_row(course, first), lab_row(course, second)


def test_a_student_checks_their_lab_and_their_answers_go_with_the_operation(labs):
    lab = labs[0]
    operation = guides.lab_check_start(lab=lab, actor=lab.student, step_key="11", answers={"22": "10.0.0.1"})
    assert operation.kind == Operation.Kind.CHECK and operation.lab == lab
    assert operation.params == {"step": "11", "answers": {"22": "10.0.0.1"}, "by_student": True}
    assert Lab.objects.get(pk=lab.pk).state == Lab.State.READY  # a check does not make the lab busy


def test_a_student_cannot_check_another_students_lab(labs):
    with pytest.raises(PermissionDenied, match="not your lab"):
        guides.lab_check_start(lab=labs[1], actor=labs[0].student, step_key="11")
    assert not Operation.objects.exists()


@pytest.mark.parametrize(
    ("step", "answers", "words"),
    [
        ("99", None, "no such step"),
        ("10", None, "has no checks"),
        ("11", ["a"], "Give the answers as"),
        ("11", {"21": "x"}, "no such question"),
        ("11", {"22": 5}, "An answer is text"),
        ("11", {"22": "x" * 501}, "under 500 characters"),
        ("11", {"22": "\ud800"}, "not text"),
        ("11", {"\ud800": "a"}, "no such question"),
    ],
)
def test_bad_input_is_refused_in_words_and_starts_nothing(labs, step, answers, words):
    lab = labs[0]
    with pytest.raises(ValidationError, match=words):
        guides.lab_check_start(lab=lab, actor=lab.student, step_key=step, answers=answers)
    assert not Operation.objects.exists()


def test_a_lab_that_is_not_ready_or_busy_is_not_checked(labs, course):
    lab = labs[0]
    Lab.objects.filter(pk=lab.pk).update(state=Lab.State.PROVISIONING)
    lab.refresh_from_db()
    with pytest.raises(ValidationError, match="Checks run on a ready lab"):
        guides.lab_check_start(lab=lab, actor=lab.student, step_key="11")
    Lab.objects.filter(pk=lab.pk).update(state=Lab.State.READY)
    guides.lab_check_start(lab=lab, actor=lab.student, step_key="11")
    with pytest.raises(Conflict, match="is busy"):  # one check at a time per lab
        guides.lab_check_start(lab=lab, actor=lab.student, step_key="11")


def test_checks_are_rate_limited_per_lab_and_say_when_to_try_again(labs, settings):
    settings.NESTLAB_GUIDE_CHECKS_PER_MINUTE = 2
    lab = labs[0]
    for _ in range(2):
        operation = guides.lab_check_start(lab=lab, actor=lab.student, step_key="11")
        Operation.objects.filter(pk=operation.pk).update(state=Operation.State.SUCCEEDED)
    with pytest.raises(TooSoon, match="checked 2 times in the last minute") as refused:
        guides.lab_check_start(lab=lab, actor=lab.student, step_key="11")
    assert 1 <= refused.value.retry_after <= 61
    guides.lab_check_start(lab=labs[1], actor=labs[1].student, step_key="11")  # another student is not limited
    # A second lab of the same student (a clone holds the same values) shares the minute.
    clone = lab_row(lab.course, lab.student, number=2)
    with pytest.raises(TooSoon):
        guides.lab_check_start(lab=clone, actor=lab.student, step_key="11")
    # The course's staff are not held by the student's minute, nor count in it.
    guides.lab_check_start(lab=clone, actor=lab.course.instructors.get(), step_key="11")


def test_an_instructors_check_carries_no_answers(labs, course):
    lab = labs[0]
    operation = guides.lab_check_start(
        lab=lab, actor=course.instructors.get(), step_key="11", answers={"22": "SECRETANSWER"}
    )
    assert operation.params["answers"] == {} and operation.params["by_student"] is False


def record(lab, outcomes):
    step = guides.guide_step(lab, "11")
    return guides.check_results_record(lab=lab, step=step, outcomes=outcomes, operation=None)


def test_a_step_is_done_when_all_its_checks_pass_and_stays_done(labs):
    lab = labs[0]
    checked = record(lab, [guides.CheckOutcome("21", passed=True, words="Passed."), guides.CheckOutcome("22")])
    assert not checked.newly_completed and checked.passed == 1
    assert selectors.lab_score(lab) == (0, 10)
    checked = record(lab, [guides.CheckOutcome("21", skipped=True), guides.CheckOutcome("22", passed=True)])
    assert checked.newly_completed and selectors.lab_score(lab) == (10, 10)
    # A later failing check keeps the step done (the points were earned; the VM may have moved on).
    checked = record(lab, [guides.CheckOutcome("21", passed=False, words="Not yet"), guides.CheckOutcome("22")])
    assert checked.result.is_completed and selectors.lab_score(lab) == (10, 10)
    assert StepResult.objects.get(lab=lab, step_key="11").attempts == 3
    assert CheckResult.objects.get(lab=lab, check_key="21").words == "Not yet"


def test_output_a_student_shaped_with_nul_or_surrogates_is_stored_not_an_error(labs):
    lab = labs[0]
    record(lab, [guides.CheckOutcome("21", output="a\x00b\ud800c")])
    assert CheckResult.objects.get(lab=lab, check_key="21").output == "a\ufffdb?c"


def test_output_is_kept_trimmed_to_its_end(labs):
    lab = labs[0]
    record(lab, [guides.CheckOutcome("21", output="x" * 10_000 + "THE END")])
    output = CheckResult.objects.get(lab=lab, check_key="21").output
    assert len(output) == 4_000 and output.endswith("THE END")


def test_a_step_without_checks_is_marked_done_by_its_student(labs):
    lab = labs[0]
    guides.lab_step_complete(lab=lab, actor=lab.student, step_key="10")
    assert StepResult.objects.get(lab=lab, step_key="10").is_completed
    with pytest.raises(ValidationError, match="done when its checks pass"):
        guides.lab_step_complete(lab=lab, actor=lab.student, step_key="11")
    with pytest.raises(PermissionDenied):
        guides.lab_step_complete(lab=labs[1], actor=lab.student, step_key="10")


@pytest.mark.parametrize("position", [0, 3, "2", True, None])
def test_the_students_place_in_the_guide_is_bounded(labs, position):
    lab = labs[0]
    with pytest.raises(ValidationError, match="from 1 to 2"):
        guides.lab_guide_position_set(lab=lab, actor=lab.student, position=position)
    guides.lab_guide_position_set(lab=lab, actor=lab.student, position=2)
    assert Lab.objects.get(pk=lab.pk).guide_position == 2


def test_the_students_guide_shows_results_but_never_an_answer_or_a_command(labs, django_assert_num_queries):
    record(labs[0], [guides.CheckOutcome("21", words="Not yet", output="grep: /x"), guides.CheckOutcome("22")])
    lab = Lab.objects.select_related("template_version").get(pk=labs[0].pk)  # as the lab page reads it
    with django_assert_num_queries(2):  # the check results and the completed steps, each read once
        shown = selectors.lab_guide(lab)
    text = repr(shown)
    assert "SECRETANSWER" not in text and "SECRETCMD" not in text
    assert shown["steps"][1]["checks"][0]["result"]["words"] == "Not yet"
    assert shown["steps"][1]["state"] == selectors.STEP_FAILED
    assert (shown["score"], shown["max_score"]) == (0, 10)


def test_the_class_check_runs_on_every_ready_lab_and_says_why_one_was_not(labs, course):
    instructor = course.instructors.get()
    Lab.objects.filter(pk=labs[1].pk).update(state=Lab.State.ERROR)
    outcomes = guides.class_check_start(course=course, actor=instructor, step_key="11")
    assert [(outcome.lab_id, outcome.operation is not None) for outcome in outcomes] == [(labs[0].pk, True)]
    again = guides.class_check_start(course=course, actor=instructor, step_key="11")
    assert isinstance(again[0].refusal, Conflict)  # the first check is still queued
    with pytest.raises(PermissionDenied, match="Only this course's instructors can check the whole class"):
        guides.class_check_start(course=course, actor=InstructorFactory(), step_key="11")
    with pytest.raises(PermissionDenied, match="Only this course's instructors can check the whole class"):
        guides.class_check_start(course=course, actor=labs[0].student, step_key="11")


def test_the_progress_grid_has_a_row_per_student_from_their_best_lab(labs, course):
    first, second = labs
    clone = lab_row(course, first.student, number=2)
    record(clone, [guides.CheckOutcome("21", passed=True), guides.CheckOutcome("22", passed=True)])
    record(second, [guides.CheckOutcome("21", passed=False), guides.CheckOutcome("22")])
    grid = selectors.course_guide_grid(course=course, user=course.instructors.get())
    assert [step["title"] for step in grid["steps"]] == ["Read", "Sign"]
    rows = {row["student"]: row for row in grid["rows"]}
    assert rows[first.student]["lab"] == clone and rows[first.student]["score"] == 10
    assert rows[first.student]["cells"] == [selectors.STEP_UNTRIED, selectors.STEP_DONE]
    assert rows[second.student]["cells"] == [selectors.STEP_UNTRIED, selectors.STEP_FAILED]
    assert selectors.course_student_score(course=course, student=first.student) == (10, 10)
    Lab.objects.filter(pk=clone.pk).update(state=Lab.State.DELETED)  # points earned stay earned
    grid = selectors.course_guide_grid(course=course, user=course.instructors.get())
    assert {row["student"]: row["score"] for row in grid["rows"]}[first.student] == 10
    with pytest.raises(PermissionDenied):
        selectors.course_guide_grid(course=course, user=first.student)


def test_a_completed_step_sends_the_students_course_score_to_the_lms_grade_book(
    labs, course, lti_platform, django_capture_on_commit_callbacks
):
    """Through LTI Assignment and Grade Services, to the real test platform."""
    from lti import keys
    from lti.models import CourseLink, Identity, Platform

    platform = Platform.objects.create(
        name="Moodle",
        issuer=lti_platform.issuer,
        client_id=lti_platform.client_id,
        deployment_ids=[lti_platform.deployment_id],
        auth_login_url=lti_platform.auth_login_url,
        auth_token_url=lti_platform.auth_token_url,
        key_set_url=lti_platform.key_set_url,
    )
    lti_platform.set_tool_jwks(keys.public_key_set())
    lti_platform.set_members("course-101", [{"user_id": "ann", "roles": [], "status": "Active"}])
    CourseLink.objects.create(
        platform=platform,
        deployment_id=lti_platform.deployment_id,
        context_id="course-101",
        course=course,
        lineitems_url=f"{lti_platform.issuer}/ags/course-101/lineitems",
        ags_scopes=[
            "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem",
            "https://purl.imsglobal.org/spec/lti-ags/scope/score",
        ],
    )
    lab = labs[0]
    Identity.objects.create(platform=platform, subject="ann", user=lab.student)
    with django_capture_on_commit_callbacks(execute=True):
        record(lab, [guides.CheckOutcome("21", passed=True), guides.CheckOutcome("22", passed=False)])
    assert lti_platform.scores() == []  # not done yet: nothing to send
    with django_capture_on_commit_callbacks(execute=True):
        record(lab, [guides.CheckOutcome("21", skipped=True), guides.CheckOutcome("22", passed=True)])
    [score] = lti_platform.scores()
    assert (score["userId"], score["scoreGiven"], score["scoreMaximum"]) == ("ann", 10, 10)
    # A student the LMS does not know is skipped in the log, not an error of the check.
    other = labs[1]
    with django_capture_on_commit_callbacks(execute=True):
        record(other, [guides.CheckOutcome("21", passed=True), guides.CheckOutcome("22", passed=True)])
    assert len(lti_platform.scores()) == 1


def test_sending_the_class_scores_skips_warm_pool_labs(labs, course, caplog):
    """ "Send scores" took every lab's student, a pool lab's None too: the score of nobody went to
    ``lti.services.score_send``, whose refusal (no identity) named ``None.get_username()``, a 500.
    No one's identity is known to the LMS here, so nothing is sent, and nothing fails."""
    from lti.models import CourseLink
    from tests.factories import LtiPlatformFactory

    CourseLink.objects.create(
        platform=LtiPlatformFactory(),
        deployment_id="d-1",
        context_id="c-1",
        course=course,
        lineitems_url="https://lms.example.edu/lineitems",
    )
    lab_row(course, None, 0)
    assert guides.course_scores_send(course=course, actor=course.instructors.get()) == 0
    assert sorted(record.args[0] for record in caplog.records if "was not sent" in record.msg) == sorted(
        lab.student.get_username() for lab in labs
    )


def test_a_clone_starts_where_its_source_stands_in_the_guide(labs):
    """Its VMs are copies of the source's, so the work the checks found is in them; the course's
    score (the student's best lab) is the same either way."""
    lab = labs[0]
    record(
        lab,
        [
            guides.CheckOutcome("21", passed=True, words="Signed.", output="ok\n"),
            guides.CheckOutcome("22", passed=True),
        ],
    )
    Lab.objects.filter(pk=lab.pk).update(guide_position=1)
    lab.refresh_from_db()
    operation = services.lab_clone(lab=lab, actor=lab.student)
    clone = operation.lab
    assert clone.pk != lab.pk and clone.guide_position == 1
    copied = StepResult.objects.get(lab=clone, step_key="11")
    assert copied.is_completed and copied.points == 10 and copied.attempts == 1
    checks = {result.check_key: result for result in CheckResult.objects.filter(lab=clone)}
    assert checks["21"].passed and checks["21"].output == "ok\n" and checks["21"].operation is None
    assert checks["22"].passed
    assert StepResult.objects.filter(lab=lab).count() == 1, "the source keeps its own"
