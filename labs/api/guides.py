"""Lab guides (issue 15) in the API: a lab's guide and "Check my work" (labs/{id}/guide/...), and
a course's progress grid, class-wide check and scores (courses/{course_id}/guide/...). Thin: the
same services (labs.guides) and selectors (labs.selectors) as the lab page and the class's
progress page, so who may do what, the rate limit and every refusal's words are written once.

Nothing here ever carries a check's answer, command, output pattern or expected value: a lab's
guide is ``labs.selectors.lab_guide``, which leaves them out for everyone.
"""

from __future__ import annotations

from django.http import Http404, HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_field
from rest_framework import serializers, status, viewsets
from rest_framework.decorators import action, api_view
from rest_framework.request import Request
from rest_framework.response import Response

from core.api import ChoiceField, ErrorSerializer, errors
from core.errors import refusal_status, refusal_words
from courses import selectors as course_selectors
from courses.models import Course, GuideCheck
from labs import guide_csv, guides, selectors
from labs.api.serializers import BulkResponseSerializer, IdField, OperationSerializer
from labs.models import Lab

STEP_STATES = selectors.STEP_STATES
STATE_WORDS = "done (its checks passed, or marked done), failed (a check failed last time) or untried"

# Serializers: requests


@extend_schema_field({"type": "object", "additionalProperties": {"type": "string", "maxLength": 500}})
class AnswersField(serializers.JSONField):
    """The student's answers to the step's questions, by check key. Checked by the service, which
    says in words what is wrong (not an object, a key that is no question, an answer not text)."""


class CheckStartSerializer(serializers.Serializer):
    step = serializers.CharField(max_length=40, help_text="The step's `key` (from the lab's guide).")
    answers = AnswersField(
        required=False,
        help_text="The step's questions answered, {check key: answer}; only the lab's student's count.",
    )


class StepPositionSerializer(serializers.Serializer):
    position = serializers.IntegerField(min_value=1, help_text="The step the student is reading, 1 for the first.")


class ClassCheckSerializer(serializers.Serializer):
    step = serializers.CharField(max_length=40, help_text="The step's `key` (from the progress grid's `steps`).")
    labs = serializers.ListField(
        child=IdField(),
        min_length=1,
        max_length=1000,
        required=False,
        help_text="Only these labs of the course, in this order; without it, every ready lab.",
    )


# Serializers: answers


class CheckResultSerializer(serializers.Serializer):
    passed = serializers.BooleanField()
    words = serializers.CharField(help_text="Why it passed or not, in the words the student sees.")
    output = serializers.CharField(help_text="The end of a command check's output (empty for other kinds).")
    answer = serializers.CharField(help_text="The student's own answer to a question (never the expected one).")
    checked_at = serializers.DateTimeField()


class StudentCheckSerializer(serializers.Serializer):
    key = serializers.CharField()
    kind = ChoiceField(choices=GuideCheck.Kind.choices)
    label = serializers.CharField(help_text="What is checked, in the instructor's words.")
    prompt = serializers.CharField(help_text="A question's text, with the lab's values filled in (else empty).")
    result = CheckResultSerializer(allow_null=True, help_text="Its last result, or null: never checked.")


class StudentStepSerializer(serializers.Serializer):
    key = serializers.CharField(help_text="Names the step in `guide/check/` and `guide/steps/{key}/done/`.")
    number = serializers.IntegerField(help_text="1 for the first step.")
    title = serializers.CharField()
    body_html = serializers.CharField(help_text="What to do, as sanitised HTML with the lab's values filled in.")
    points = serializers.IntegerField()
    state = ChoiceField(choices=STEP_STATES, help_text=STATE_WORDS)
    checks = StudentCheckSerializer(many=True)


class LabGuideSerializer(serializers.Serializer):
    """A lab's guide as its student sees it: no answer, command, pattern or expected value."""

    steps = StudentStepSerializer(many=True)
    position = serializers.IntegerField(help_text="The step the student was reading, 1 for the first.")
    score = serializers.IntegerField(help_text="Points earned on this lab.")
    max_score = serializers.IntegerField(help_text="Points the guide is worth.")


class ProgressCheckSerializer(serializers.Serializer):
    step = serializers.CharField()
    passed = serializers.BooleanField()
    words = serializers.CharField()
    checked_at = serializers.DateTimeField()


class LabGuideProgressSerializer(serializers.Serializer):
    """A lab's progress: what the `lab.guide` WebSocket message carries (docs/websocket.md)."""

    lab = serializers.IntegerField()
    course = serializers.IntegerField()
    student = serializers.IntegerField(help_text="The student's user id.")
    score = serializers.IntegerField()
    max_score = serializers.IntegerField()
    steps = serializers.DictField(child=ChoiceField(choices=STEP_STATES), help_text=f"Step key -> {STATE_WORDS}.")
    checks = serializers.DictField(child=ProgressCheckSerializer(), help_text="Check key -> its last result.")


class PositionAnswerSerializer(serializers.Serializer):
    position = serializers.IntegerField()


class GridStepSerializer(serializers.Serializer):
    key = serializers.CharField()
    number = serializers.IntegerField()
    title = serializers.CharField()
    points = serializers.IntegerField()


class GridRowSerializer(serializers.Serializer):
    student = serializers.CharField(help_text="User name.")
    name = serializers.CharField()
    lab = serializers.IntegerField(allow_null=True, help_text="The student's best lab, or null: none yet.")
    score = serializers.IntegerField()
    cells = serializers.ListField(
        child=ChoiceField(choices=STEP_STATES), help_text=f"Each step's state, in the order of `steps`: {STATE_WORDS}."
    )


class GuideGridSerializer(serializers.Serializer):
    steps = GridStepSerializer(many=True)
    rows = GridRowSerializer(many=True, help_text="One per enrolled student, by user name.")
    max_score = serializers.IntegerField()


class ScoresSentSerializer(serializers.Serializer):
    sent = serializers.IntegerField(help_text="Students whose score at least one LMS grade book took.")
    detail = serializers.CharField()


# A lab's guide: labs/{id}/guide/...

LAB_WHO = "The lab's student, the course's instructors and admins (anyone else: 404, as for the lab's other routes)."
ACT_WHO = (
    "The lab's student, the course's instructors and admins; a student removed from the course: 403 in the "
    "lab's words; anyone else 404."
)


@extend_schema(tags=["labs"])
class LabGuideViewSet(viewsets.GenericViewSet):
    """A lab's guide, at labs/{id}/guide/ (registered beside LabViewSet under the same prefix)."""

    lookup_value_regex = r"\d+"

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Lab.objects.none()
        return selectors.lab_list(user=self.request.user, include_deleted=True)

    def get_object(self) -> Lab:
        lab = self.get_queryset().select_related("template_version").filter(pk=self.kwargs["pk"]).first()
        if lab is None:
            raise Http404("No lab with that id.")
        return lab

    @extend_schema(
        summary="A lab's guide: its steps, where the student is, each check's last result, the score",
        description=(
            f"{LAB_WHO} Step bodies and questions carry the lab's own values (its variables); a check shows its "
            "label and last result (a command's output, the student's own answer), never its answer, command, "
            "output pattern or expected value."
        ),
        responses={200: LabGuideSerializer, **errors(403, 404)},
    )
    @action(detail=True, methods=["get"], url_path="guide")
    def guide(self, request: Request, pk: str | None = None) -> Response:
        return Response(LabGuideSerializer(selectors.lab_guide(self.get_object())).data)

    @extend_schema(
        summary='"Check my work": run a step\'s checks on the lab',
        description=(
            f"{ACT_WHO} Answers 202 with the `check` operation (quick queue; the lab stays usable). Its `result` "
            "when it ends: `step`, `passed`, `total`, `completed`, `checks` (check key -> passed), `summary` "
            "(words); each check's words and output are in the lab's guide. Only the lab's student's answers "
            "count: when someone else checks, questions keep their last result. One operation at a time per "
            "lab (409); at most `NESTLAB_GUIDE_CHECKS_PER_MINUTE` checks of a lab a minute (429 with "
            "`Retry-After`). 400 in words for a step the guide does not have, a step without checks, answers "
            "that are not an object of texts, or a lab that is not ready."
        ),
        request=CheckStartSerializer,
        responses={
            202: OperationSerializer,
            **errors(400, 403, 404),
            409: OpenApiResponse(ErrorSerializer, description="The lab is busy: `detail` names the operation."),
            429: OpenApiResponse(
                ErrorSerializer, description="Checked too often: `detail` and the `Retry-After` header say when."
            ),
        },
    )
    @action(detail=True, methods=["post"], url_path="guide/check")
    def guide_check(self, request: Request, pk: str | None = None) -> Response:
        lab = self.get_object()
        serializer = CheckStartSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        operation = guides.lab_check_start(
            lab=lab,
            actor=request.user,
            step_key=serializer.validated_data["step"],
            answers=serializer.validated_data.get("answers"),
        )
        return Response(
            OperationSerializer(operation, context={"request": request}).data, status=status.HTTP_202_ACCEPTED
        )

    @extend_schema(
        summary="Mark a step without checks done",
        description=(
            f"{ACT_WHO} A step with checks is done when they pass (400 in words). Answers the lab's progress, "
            "as the `lab.guide` WebSocket message carries it."
        ),
        parameters=[OpenApiParameter("step_key", str, OpenApiParameter.PATH, description="The step's `key`.")],
        request=None,
        responses={200: LabGuideProgressSerializer, **errors(400, 403, 404)},
    )
    @action(detail=True, methods=["post"], url_path=r"guide/steps/(?P<step_key>[\w-]+)/done")
    def guide_step_done(self, request: Request, pk: str | None = None, step_key: str = "") -> Response:
        lab = self.get_object()
        guides.lab_step_complete(lab=lab, actor=request.user, step_key=step_key)
        return Response(LabGuideProgressSerializer(selectors.lab_guide_progress(lab)).data)

    @extend_schema(
        summary="Keep the step the student is reading",
        description=f"{ACT_WHO} The guide opens there next time. 400 for a number beyond the guide's steps.",
        request=StepPositionSerializer,
        responses={200: PositionAnswerSerializer, **errors(400, 403, 404)},
    )
    @action(detail=True, methods=["put", "patch"], url_path="guide/position")
    def guide_position(self, request: Request, pk: str | None = None) -> Response:
        lab = self.get_object()
        serializer = StepPositionSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        lab = guides.lab_guide_position_set(lab=lab, actor=request.user, position=serializer.validated_data["position"])
        return Response({"position": lab.guide_position})


# A course's guide: courses/{course_id}/guide/...

COURSE_WHO = "The course's instructors and admins (a student of the course gets 403, anyone who cannot see it 404)."
CSV = {(200, "text/csv"): OpenApiResponse(OpenApiTypes.STR, description="One line per student, a column per step.")}


def _course(request: Request, course_id: int) -> Course:
    """A course the caller may see, else 404 (the services answer 403 to those who may not act)."""
    course = course_selectors.course_list(user=request.user).filter(pk=course_id).first()
    if course is None:
        raise Http404("No course with that id.")
    return course


def _grid(request: Request, course_id: int) -> tuple[Course, dict]:
    course = _course(request, course_id)
    return course, selectors.course_guide_grid(course=course, user=request.user)


@extend_schema(
    tags=["courses"],
    summary="The class's guide progress: a row per student, a cell per step",
    description=(
        f"{COURSE_WHO} Each student's best lab (the most points), its score, and each step's state. "
        "Not paginated. Live changes: the `lab.guide` WebSocket message on the course's socket."
    ),
    responses={200: GuideGridSerializer, **errors(403, 404)},
)
@api_view(["GET"])
def course_guide_progress(request: Request, course_id: int) -> Response:
    _, grid = _grid(request, course_id)
    rows = [
        {
            "student": row["student"].get_username(),
            "name": row["student"].get_full_name(),
            "lab": row["lab"].pk if row["lab"] else None,
            "score": row["score"],
            "cells": row["cells"],
        }
        for row in grid["rows"]
    ]
    return Response(GuideGridSerializer({**grid, "rows": rows}).data)


@extend_schema(
    tags=["courses"],
    summary="The class's guide progress, as CSV",
    description=(
        f"{COURSE_WHO} Columns `student`, `name`, `lab`, `score`, `max_score`, then one per step (`<number>. "
        "<title>`) holding done, failed or untried. A cell that a spreadsheet would take for a formula starts "
        "with an apostrophe."
    ),
    responses={**CSV, **errors(403, 404)},
)
@api_view(["GET"])
def course_guide_progress_csv(request: Request, course_id: int) -> HttpResponse:
    course, grid = _grid(request, course_id)
    response = HttpResponse(guide_csv.grid_csv(grid), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{guide_csv.grid_filename(course)}"'
    return response


@extend_schema(
    tags=["courses"],
    summary="Check the whole class: run a step's checks on every ready lab",
    description=(
        f'{COURSE_WHO} Each lab goes through its own "Check my work", as if its button were clicked: one busy '
        "or refused lab does not stop the others. The students' answers to questions are kept, not asked "
        "again. Answers 202 with one result per lab: `status` is what the lab's own route would answer (202 "
        "with `operation`; 400, 404, 409 or 429 with `detail`)."
    ),
    request=ClassCheckSerializer,
    responses={202: BulkResponseSerializer, **errors(400, 403, 404)},
)
@api_view(["POST"])
def course_guide_check(request: Request, course_id: int) -> Response:
    course = _course(request, course_id)
    guides.class_check_allowed(course=course, actor=request.user)  # a refusal before the body is read
    serializer = ClassCheckSerializer(data=request.data)
    serializer.is_valid(raise_exception=True)
    outcomes = guides.class_check_start(
        course=course,
        actor=request.user,
        step_key=serializer.validated_data["step"],
        lab_ids=serializer.validated_data.get("labs"),
    )
    results = [
        {
            "lab": outcome.lab_id,
            "status": status.HTTP_202_ACCEPTED if outcome.refusal is None else refusal_status(outcome.refusal),
            "operation": outcome.operation,
            "detail": "" if outcome.refusal is None else refusal_words(outcome.refusal),
        }
        for outcome in outcomes
    ]
    return Response(
        BulkResponseSerializer({"results": results}, context={"request": request}).data, status=status.HTTP_202_ACCEPTED
    )


@extend_schema(
    tags=["courses"],
    summary="Send every student's guide score to the LMS grade book again",
    description=(
        f"{COURSE_WHO} Each student's score (their best lab's points out of the guide's) goes to every LMS "
        "linked to the course that offers a grade book (LTI Assignment and Grade Services). Scores are also "
        "sent on their own whenever a step is completed; a grade book that cannot be reached is logged and "
        "audited, and `sent` does not count it."
    ),
    request=None,
    responses={200: ScoresSentSerializer, **errors(403, 404)},
)
@api_view(["POST"])
def course_guide_scores(request: Request, course_id: int) -> Response:
    sent = guides.course_scores_send(course=_course(request, course_id), actor=request.user)
    detail = f"Scores of {sent} student{'s' if sent != 1 else ''} sent to the LMS."
    return Response(ScoresSentSerializer({"sent": sent, "detail": detail}).data)
