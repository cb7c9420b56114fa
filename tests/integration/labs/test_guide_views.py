"""labs/guide_views.py and the guide panel of the lab page (labs/views.py): what a student sees
(never an answer or a command), "Check my work", "Mark as done" and the kept place, refusals in
words with their status, other people's labs hidden; the instructor's progress grid, its CSV and
the class-wide check."""

from __future__ import annotations

import csv
import io

import pytest
from django.urls import reverse

from labs import guides, services
from labs.models import Lab, Operation, StepResult
from lti.models import CourseLink
from tests.factories import InstructorFactory, LtiPlatformFactory, lab_row, open_course
from tests.integration.labs.test_guides import GUIDE

pytestmark = [pytest.mark.integration, pytest.mark.django_db]

DEMO_ANSWER = "192.168.10.1"


@pytest.fixture
def course(monkeypatch):
    monkeypatch.setattr(services.dispatch, "send_operation", lambda *args, **kwargs: None)
    course = open_course(students=2)
    version = course.template_version
    # The demo guide's answer in the question, as the issue asks the page never to show it.
    guide = {**GUIDE, "steps": [dict(step) for step in GUIDE["steps"]]}
    guide["steps"][1]["checks"] = [dict(check) for check in GUIDE["steps"][1]["checks"]]
    guide["steps"][1]["checks"][1]["answer"] = DEMO_ANSWER
    version.guide = guide
    version.save(update_fields=["guide"])
    return course


@pytest.fixture
def labs(course):
    first, second = (enrollment.student for enrollment in course.enrollments.order_by("student__username"))
    return lab_row(course, first), lab_row(course, second)


def record(lab, outcomes):
    return guides.check_results_record(lab=lab, step=guides.guide_step(lab, "11"), outcomes=outcomes, operation=None)


def lab_page(client, lab, **params):
    return client.get(reverse("labs:lab-detail", args=[lab.pk]), params)


def fragment(client, lab):
    return client.get(reverse("labs:lab-fragment", args=[lab.pk, "guide"]))


# The panel


def test_the_student_sees_the_guide_beside_their_lab_without_answers_or_commands(client, labs):
    lab = labs[0]
    record(lab, [guides.CheckOutcome("21", words="Not yet: exit code 1", output="grep: /x: No such file")])
    client.force_login(lab.student)
    page = lab_page(client, lab).content.decode()
    assert 'id="guide"' in page and "Lab guide" in page
    assert "0 of 10 points" in page
    assert "1. Read" in page and "2. Sign" in page
    assert reverse("labs:lab-fragment", args=[lab.pk, "guide"]) in page
    assert DEMO_ANSWER not in page and "SECRETCMD" not in page and "grep SECRETCMD" not in page

    Lab.objects.filter(pk=lab.pk).update(guide_position=2)
    panel = fragment(client, lab).content.decode()
    assert "Step 2 of 2" in panel and "Check my work" in panel
    assert "Which address?" in panel and 'name="answer-22"' in panel
    assert "✗" in panel and "Not yet: exit code 1" in panel
    assert "<details" in panel and "grep: /x: No such file" in panel
    assert DEMO_ANSWER not in panel and "SECRETCMD" not in panel


def test_a_lab_without_a_guide_has_no_panel(client, course, labs):
    version = course.template_version
    version.guide = {}
    version.save(update_fields=["guide"])
    client.force_login(labs[0].student)
    assert 'id="guide"' not in lab_page(client, labs[0]).content.decode()


def test_check_my_work_starts_a_check_with_the_answers_and_answers_the_panel(client, labs):
    lab = labs[0]
    client.force_login(lab.student)
    response = client.post(
        reverse("labs:lab-guide-check", args=[lab.pk]), {"step": "11", "answer-22": "10.0.0.1"}, HTTP_HX_REQUEST="true"
    )
    assert response.status_code == 200
    operation = Operation.objects.get(kind=Operation.Kind.CHECK)
    assert operation.params["answers"] == {"22": "10.0.0.1"}
    body = response.content.decode()
    assert "Checking your work" in body
    assert "disabled>Check my work" in body  # until the check ends (live.js follows the operation)


def test_check_my_work_without_javascript_redirects_with_a_message(client, labs):
    lab = labs[0]
    client.force_login(lab.student)
    response = client.post(reverse("labs:lab-guide-check", args=[lab.pk]), {"step": "11"}, follow=True)
    assert response.redirect_chain[-1][0] == reverse("labs:lab-detail", args=[lab.pk]) + "#guide"
    assert any("Checking your work" in str(message) for message in response.context["messages"])


def test_refusals_are_words_with_their_status_and_keep_what_was_typed(client, labs, settings):
    lab = labs[0]
    client.force_login(lab.student)
    url = reverse("labs:lab-guide-check", args=[lab.pk])
    bad = client.post(url, {"step": "10"}, HTTP_HX_REQUEST="true")
    assert bad.status_code == 400 and "has no checks" in bad.content.decode()

    settings.NESTLAB_GUIDE_CHECKS_PER_MINUTE = 1
    assert client.post(url, {"step": "11"}, HTTP_HX_REQUEST="true").status_code == 200
    Operation.objects.update(state=Operation.State.SUCCEEDED)
    too_soon = client.post(url, {"step": "11", "answer-22": "my typed answer"}, HTTP_HX_REQUEST="true")
    assert too_soon.status_code == 429 and too_soon["Retry-After"]
    body = too_soon.content.decode()
    assert "Not checked." in body and "try again in" in body
    assert 'value="my typed answer"' in body

    settings.NESTLAB_GUIDE_CHECKS_PER_MINUTE = 10
    Operation.objects.update(state=Operation.State.RUNNING)
    busy = client.post(url, {"step": "11"}, HTTP_HX_REQUEST="true")
    assert busy.status_code == 409 and "Not checked." in busy.content.decode()


def test_mark_as_done_and_the_kept_place(client, labs):
    lab = labs[0]
    client.force_login(lab.student)
    done = client.post(reverse("labs:lab-guide-done", args=[lab.pk]), {"step": "10"}, HTTP_HX_REQUEST="true")
    assert done.status_code == 200 and "Marked as done." in done.content.decode()
    assert StepResult.objects.get(lab=lab, step_key="10").completed_at is not None

    moved = client.post(reverse("labs:lab-guide-position", args=[lab.pk]), {"position": "2"}, HTTP_HX_REQUEST="true")
    assert moved.status_code == 200 and "Step 2 of 2" in moved.content.decode()
    assert Lab.objects.get(pk=lab.pk).guide_position == 2
    wrong = client.post(reverse("labs:lab-guide-position", args=[lab.pk]), {"position": "9"}, HTTP_HX_REQUEST="true")
    assert wrong.status_code == 400 and "from 1 to 2" in wrong.content.decode()
    for odd in ("²", "1" * 50, "-"):  # "²".isdigit() is true, int() refuses it: a 400, not a 500
        refused = client.post(
            reverse("labs:lab-guide-position", args=[lab.pk]), {"position": odd}, HTTP_HX_REQUEST="true"
        )
        assert refused.status_code == 400, odd
    plain = client.post(reverse("labs:lab-guide-position", args=[lab.pk]), {"position": "1"})
    assert plain.status_code == 302 and Lab.objects.get(pk=lab.pk).guide_position == 1


def test_another_student_gets_404_on_the_panel_and_its_buttons(client, labs):
    mine, theirs = labs
    client.force_login(mine.student)
    assert fragment(client, theirs).status_code == 404
    for name, data in (
        ("labs:lab-guide-check", {"step": "11"}),
        ("labs:lab-guide-done", {"step": "10"}),
        ("labs:lab-guide-position", {"position": "2"}),
    ):
        assert client.post(reverse(name, args=[theirs.pk]), data).status_code == 404
    assert not Operation.objects.exists() and not StepResult.objects.exists()
    assert Lab.objects.get(pk=theirs.pk).guide_position == 1


def test_an_instructor_reads_any_step_of_a_students_guide_without_moving_their_place(client, course, labs):
    lab = labs[0]
    client.force_login(course.instructors.get())
    page = lab_page(client, lab, step=2).content.decode()
    assert "Step 2 of 2" in page and "Check this step" in page
    assert 'name="answer-22"' in page and "disabled" in page  # only the student answers
    assert f"{reverse('labs:lab-fragment', args=[lab.pk, 'guide'])}?step=2" in page
    assert DEMO_ANSWER not in page and "SECRETCMD" not in page
    assert Lab.objects.get(pk=lab.pk).guide_position == 1


# The progress grid


def test_the_grid_shows_each_student_and_step(client, course, labs):
    first, second = labs
    record(first, [guides.CheckOutcome("21", passed=True), guides.CheckOutcome("22", passed=True)])
    record(second, [guides.CheckOutcome("21", passed=False)])
    client.force_login(course.instructors.get())
    response = client.get(reverse("labs:course-progress", args=[course.pk]))
    assert response.status_code == 200
    page = response.content.decode()
    assert f'data-live="/ws/courses/{course.pk}/"' in page
    assert reverse("labs:course-progress-grid", args=[course.pk]) in page
    assert "✓ done" in page and "✗ failed" in page and "10 / 10" in page and "0 / 10" in page
    assert "Check the whole class" in page
    assert "Send scores to the LMS" not in page  # no LMS grade book linked
    grid = client.get(reverse("labs:course-progress-grid", args=[course.pk])).content.decode()
    assert "<table" in grid and "<html" not in grid
    assert (
        reverse("labs:course-progress", args=[course.pk])
        in client.get(reverse("labs:class-labs", args=[course.pk])).content.decode()
    )


def test_the_grid_is_for_the_courses_instructors_only(client, course, labs):
    urls = [
        reverse(name, args=[course.pk])
        for name in ("labs:course-progress", "labs:course-progress-grid", "labs:course-progress-csv")
    ]
    client.force_login(labs[0].student)
    assert {client.get(url).status_code for url in urls} == {403}
    assert client.post(reverse("labs:course-check", args=[course.pk]), {"step": "11"}).status_code == 403
    client.force_login(InstructorFactory())
    assert {client.get(url).status_code for url in urls} == {404}
    assert client.post(reverse("labs:course-scores-send", args=[course.pk])).status_code == 404
    assert not Operation.objects.exists()


def test_the_csv_has_a_row_per_student_and_keeps_formulas_as_text(client, course, labs):
    first, second = labs
    second.student.first_name = "=HYPERLINK(1)"
    second.student.save()
    record(first, [guides.CheckOutcome("21", passed=True), guides.CheckOutcome("22", passed=True)])
    client.force_login(course.instructors.get())
    response = client.get(reverse("labs:course-progress-csv", args=[course.pk]))
    assert response["Content-Type"].startswith("text/csv")
    assert f"guide-progress-{course.code}.csv" in response["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(response.content.decode())))
    assert rows[0] == ["student", "name", "lab", "score", "max_score", "1. Read", "2. Sign"]
    by_student = {row[0]: row for row in rows[1:]}
    assert len(rows) == 3
    assert by_student[first.student.username][2:] == [str(first.pk), "10", "10", "untried", "done"]
    assert by_student[second.student.username][1].startswith("'=HYPERLINK")
    assert by_student[second.student.username][3:] == ["0", "10", "untried", "untried"]
    # The page's file is the API's.
    api = client.get(f"/api/v1/courses/{course.pk}/guide/progress.csv")
    assert api.status_code == 200 and api.content == response.content


def test_check_the_whole_class_says_how_many_started_and_why_not(client, course, labs):
    Lab.objects.filter(pk=labs[1].pk).update(state=Lab.State.ERROR)
    client.force_login(course.instructors.get())
    response = client.post(reverse("labs:course-check", args=[course.pk]), {"step": "11"}, follow=True)
    texts = [str(message) for message in response.context["messages"]]
    assert texts == ["Checking 1 lab: results come in live."]
    again = client.post(reverse("labs:course-check", args=[course.pk]), {"step": "11"}, follow=True)
    [words] = [str(message) for message in again.context["messages"]]
    assert words.startswith(f"Not checked for {labs[0].student.username}: ")
    assert Operation.objects.count() == 1


def test_send_scores_to_the_lms_shows_with_a_grade_book_and_says_how_many(client, course, labs, monkeypatch):
    client.force_login(course.instructors.get())
    CourseLink.objects.create(
        platform=LtiPlatformFactory(),
        deployment_id="1",
        context_id="course-1",
        course=course,
        lineitems_url="https://lms.example/lineitems",
    )
    page = client.get(reverse("labs:course-progress", args=[course.pk])).content.decode()
    assert "Send scores to the LMS" in page
    sent = []
    monkeypatch.setattr(guides, "course_scores_send", lambda *, course, actor: sent.append(actor) or 2)
    response = client.post(reverse("labs:course-scores-send", args=[course.pk]), follow=True)
    assert sent == [course.instructors.get()]
    assert [str(message) for message in response.context["messages"]] == ["Sent the scores of 2 students to the LMS."]
