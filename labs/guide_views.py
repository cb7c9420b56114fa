"""Pages of lab guides (issue 15): the guide panel's buttons on a lab, and the instructor's
progress grid with its CSV, class-wide check and scores to the LMS. Thin: labs.guides decides and
writes, labs.selectors reads; the API's routes (labs/api) call the same services.

The panel's forms post with htmx and get the panel back (a refusal in words, with its status:
400, 403, 409, 429); without JavaScript they post, redirect to the lab page and say it there.
"""

from __future__ import annotations

import re
from collections import defaultdict

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from core.errors import refusal_status, refusal_words
from core.web import forbidden, refusal_message
from courses.models import Course
from labs import guide_csv, guides, selectors, usage_csv
from labs.models import Lab
from labs.views import REFUSALS, _class_course_or_404, _lab_or_404, _next_url, guide_context

ANSWER_FIELD_PREFIX = "answer-"


def _panel_answer(
    request: HttpRequest, lab: Lab, *, said: str, refusal: Exception | None = None, answers: dict | None = None
) -> HttpResponse:
    """htmx: the panel again, saying what happened (a refusal with its status, what was typed kept).
    A plain post: the lab page (or ``next``) with a message."""
    words = f"{said} {refusal_message(request, refusal)}" if refusal is not None else said
    if request.headers.get("HX-Request"):
        lab = _lab_or_404(request, lab.pk)  # the operation just started shows in the panel
        context = guide_context(
            request,
            lab,
            guide_message=words,
            guide_refused=refusal is not None,
            typed_answers=answers or {},
            step_key=request.POST.get("step"),
        )
        status = refusal_status(refusal) if refusal is not None else 200
        response = render(request, "labs/_guide_panel.html", context, status=status)
        if status == 429:
            response["Retry-After"] = str(getattr(refusal, "retry_after", 60))
        return response
    (messages.error if refusal is not None else messages.success)(request, words)
    return redirect(_next_url(request, reverse("labs:lab-detail", args=[lab.pk]) + "#guide"))


@login_required
@require_POST
def lab_guide_check(request: HttpRequest, lab_id: int) -> HttpResponse:
    """ "Check my work" on the step the form names, with the student's answers to its questions."""
    lab = _lab_or_404(request, lab_id)
    answers = {
        name.removeprefix(ANSWER_FIELD_PREFIX): value
        for name, value in request.POST.items()
        if name.startswith(ANSWER_FIELD_PREFIX)
    }
    try:
        guides.lab_check_start(lab=lab, actor=request.user, step_key=request.POST.get("step", ""), answers=answers)
    except REFUSALS as refusal:
        return _panel_answer(request, lab, said="Not checked.", refusal=refusal, answers=answers)
    return _panel_answer(request, lab, said="Checking your work: the result shows here in a moment.", answers=answers)


@login_required
@require_POST
def lab_guide_step_complete(request: HttpRequest, lab_id: int) -> HttpResponse:
    """ "Mark as done" on a step without checks."""
    lab = _lab_or_404(request, lab_id)
    try:
        guides.lab_step_complete(lab=lab, actor=request.user, step_key=request.POST.get("step", ""))
    except REFUSALS as refusal:
        return _panel_answer(request, lab, said="Not marked done.", refusal=refusal)
    return _panel_answer(request, lab, said="Marked as done.")


@login_required
@require_POST
def lab_guide_position(request: HttpRequest, lab_id: int) -> HttpResponse:
    """Previous / Next / a step of the list: the student's place in the guide, kept for next time."""
    lab = _lab_or_404(request, lab_id)
    raw = request.POST.get("position", "")
    try:
        # A number that is not one is passed on as given: the service refuses it in words.
        # ASCII digits only: "²".isdigit() is true but int() refuses it; anything else goes to the
        # service as typed, which refuses it in words.
        position = int(raw) if re.fullmatch(r"-?[0-9]{1,6}", raw.strip()) else raw
        guides.lab_guide_position_set(lab=lab, actor=request.user, position=position)
    except REFUSALS as refusal:
        return _panel_answer(request, lab, said="The guide did not move.", refusal=refusal)
    if request.headers.get("HX-Request"):
        return render(request, "labs/_guide_panel.html", guide_context(request, _lab_or_404(request, lab.pk)))
    return redirect(_next_url(request, reverse("labs:lab-detail", args=[lab.pk]) + "#guide"))


# The instructor's progress grid: a row per student, a column per step, live, with its CSV and class-wide actions.


def _grid_context(request: HttpRequest, course: Course) -> dict:
    grid = selectors.course_guide_grid(course=course, user=request.user)
    guide = (course.template_version.guide or {}) if course.template_version_id else {}
    checked = {step["key"] for step in guide.get("steps", []) if step["checks"]}
    for index, step in enumerate(grid["steps"]):
        # The footer: how many students did the step, and "Check the whole class" where it has checks.
        step["done"] = sum(1 for row in grid["rows"] if row["cells"][index] == selectors.STEP_DONE)
        step["has_checks"] = step["key"] in checked
    return {"course": course, "grid": grid}


@login_required
@require_GET
def course_progress(request: HttpRequest, course_id: int) -> HttpResponse:
    try:
        course = _class_course_or_404(request, course_id)
        context = _grid_context(request, course)
    except PermissionDenied as refusal:
        return forbidden(request, refusal)
    context["has_grade_book"] = selectors.course_has_grade_book(course)
    return render(request, "labs/course_progress.html", context)


@login_required
@require_GET
def course_progress_grid(request: HttpRequest, course_id: int) -> HttpResponse:
    """The grid alone, for the live layer to swap in when a lab's guide changed."""
    try:
        course = _class_course_or_404(request, course_id)
        context = _grid_context(request, course)
    except PermissionDenied as refusal:
        return forbidden(request, refusal)
    return render(request, "labs/_progress_grid.html", context)


@login_required
@require_GET
def course_progress_csv(request: HttpRequest, course_id: int) -> HttpResponse:
    """The grid as a CSV file, the same as the API's (labs.guide_csv): a row per enrolled student,
    the score, a column per step (done, failed, untried); formula-like cells kept as text."""
    try:
        course = _class_course_or_404(request, course_id)
        grid = selectors.course_guide_grid(course=course, user=request.user)
    except PermissionDenied as refusal:
        return forbidden(request, refusal)
    return usage_csv.csv_response(guide_csv.grid_csv(grid), guide_csv.grid_filename(course))


def _progress_url(course: Course) -> str:
    return reverse("labs:course-progress", args=[course.pk])


@login_required
@require_POST
def course_check(request: HttpRequest, course_id: int) -> HttpResponse:
    """ "Check the whole class" on one step: how many checks started, and each refusal in words."""
    try:
        course = _class_course_or_404(request, course_id)
        outcomes = guides.class_check_start(course=course, actor=request.user, step_key=request.POST.get("step", ""))
    except PermissionDenied as refusal:
        return forbidden(request, refusal)
    started = [outcome for outcome in outcomes if outcome.refusal is None]
    refused: dict[str, list[str]] = defaultdict(list)
    for outcome in outcomes:  # the service recorded its refusals: only words here
        if outcome.refusal is not None:
            refused[refusal_words(outcome.refusal)].append(outcome.lab.student.get_username())
    if started:
        messages.success(
            request, f"Checking {len(started)} lab{'s' if len(started) != 1 else ''}: results come in live."
        )
    elif not refused:
        messages.info(request, "No lab to check: none of the class's labs is ready.")
    for words, usernames in refused.items():
        messages.warning(request, f"Not checked for {', '.join(usernames)}: {words}")
    return redirect(_progress_url(course))


@login_required
@require_POST
def course_scores_send(request: HttpRequest, course_id: int) -> HttpResponse:
    """Send every student's score to the LMS grade book again."""
    try:
        course = _class_course_or_404(request, course_id)
        sent = guides.course_scores_send(course=course, actor=request.user)
    except PermissionDenied as refusal:
        return forbidden(request, refusal)
    messages.success(request, f"Sent the scores of {sent} student{'s' if sent != 1 else ''} to the LMS.")
    return redirect(_progress_url(course))
