"""Every write of a lab's guide: "Check my work", a step marked done, the student's place, the
class-wide check, and the results a check operation records (with the score to the LMS).

The checks themselves run in a worker (labs.jobs.guide_check) as an operation of kind ``check``
on the quick queue: progress and result are pushed live like any operation. A lab's progress is
the portal's (``StepResult``, ``CheckResult``), not the VM's, so a revert or a reset keeps it.
Reads (the student's guide, scores, the class grid) are in labs.selectors.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone

from core import audit as portal_audit
from core.errors import Conflict, TooSoon
from courses import permissions as course_permissions
from courses.models import Course, GuideCheck
from labs import realtime, selectors
from labs import services as lab_services
from labs.models import CHECK_OUTPUT_MAX_CHARACTERS, CheckResult, Lab, Operation, StepResult
from lti import services as lti_services
from lti.models import CourseLink

logger = logging.getLogger(__name__)

ANSWER_MAX_CHARACTERS = 500


def guide_step(lab: Lab, step_key: str) -> dict[str, Any]:
    """The step of the lab's version's guide with this key; a 400 in words when there is none."""
    for step in (lab.template_version.guide or {}).get("steps", []):
        if step["key"] == str(step_key):
            return step
    raise ValidationError({"step": "This lab's guide has no such step."})


def _clean_answers(step: dict[str, Any], answers: Any) -> dict[str, str]:
    if answers in (None, ""):
        return {}
    if not isinstance(answers, dict):
        raise ValidationError({"answers": "Give the answers as {check key: answer}."})
    questions = {check["key"] for check in step["checks"] if check["kind"] == GuideCheck.Kind.QUESTION}
    cleaned = {}
    for key, answer in answers.items():
        if str(key) not in questions:
            # Not echoed: a key may hold characters no answer can be written with (a lone surrogate).
            raise ValidationError({"answers": "This step has no such question."})
        if not isinstance(answer, str):
            raise ValidationError({"answers": "An answer is text."})
        if "\x00" in answer:  # PostgreSQL's JSON refuses it: a 400, not a 500
            raise ValidationError({"answers": "An answer cannot contain a NUL character."})
        if not _is_utf8(answer):
            raise ValidationError({"answers": "An answer holds characters that are not text (a lone surrogate)."})
        if len(answer) > ANSWER_MAX_CHARACTERS:
            raise ValidationError({"answers": f"Keep an answer under {ANSWER_MAX_CHARACTERS} characters."})
        cleaned[str(key)] = answer
    return cleaned


def _is_utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _refuse_too_many(lab: Lab) -> None:
    """At most NESTLAB_GUIDE_CHECKS_PER_MINUTE checks a minute by a student in a course, all their
    labs together (a clone holds the same values: a budget per lab would double the guesses):
    guest operations cost the vCenter (and the guest) something, and a script clicking Check in a
    loop must not. Checks the course's staff start (the class-wide check) are not counted: they
    neither use up the student's minute nor wait for it."""
    limit = settings.NESTLAB_GUIDE_CHECKS_PER_MINUTE
    since = timezone.now() - timedelta(minutes=1)
    recent = list(
        Operation.objects.filter(
            kind=Operation.Kind.CHECK,
            lab__course_id=lab.course_id,
            lab__student_id=lab.student_id,
            actor_id=lab.student_id,
            created_at__gte=since,
        )
        .order_by("created_at")
        .values_list("created_at", flat=True)
    )
    if len(recent) >= limit:
        wait = max(1, int((recent[0] + timedelta(minutes=1) - timezone.now()).total_seconds()) + 1)
        raise TooSoon(
            f"Your labs in {lab.course.code} were checked {len(recent)} times in the last minute (at most {limit}): "
            f"try again in {wait} s.",
            retry_after=wait,
        )


def lab_check_start(
    *, lab: Lab, actor: AbstractBaseUser, step_key: str, answers: dict[str, str] | None = None
) -> Operation:
    """ "Check my work": run a step's checks on the lab, as an operation (one at a time per lab,
    rate limited). Questions are answered by the lab's student only; when someone else checks
    (an instructor, the class-wide check) the questions keep their last result."""
    lab_services.require_act(actor, lab)
    step = guide_step(lab, step_key)
    if not step["checks"]:
        raise ValidationError({"step": "This step has no checks: mark it done when you have done it."})
    by_student = actor.pk == lab.student_id
    cleaned = _clean_answers(step, answers) if by_student else {}
    with transaction.atomic():
        locked = lab_services.lock_lab(lab)
        if locked.state != Lab.State.READY:
            raise ValidationError(f"Checks run on a ready lab; {locked.name} is {locked.get_state_display().lower()}.")
        if by_student:
            _refuse_too_many(locked)
        return lab_services.lab_operation(
            locked,
            Operation.Kind.CHECK,
            actor,
            {"step": step["key"], "answers": cleaned, "by_student": by_student},
        )


@transaction.atomic
def lab_step_complete(*, lab: Lab, actor: AbstractBaseUser, step_key: str) -> StepResult:
    """The student says a step without checks is done (a step with checks is done when they pass)."""
    lab_services.require_act(actor, lab)
    step = guide_step(lab, step_key)
    if step["checks"]:
        raise ValidationError({"step": "This step is done when its checks pass: use Check my work."})
    result, _ = StepResult.objects.select_for_update().get_or_create(lab=lab, step_key=step["key"])
    if result.completed_at is None:
        result.completed_at = timezone.now()
        result.save(update_fields=["completed_at"])
        realtime.guide_changed(lab)
    return result


def lab_guide_position_set(*, lab: Lab, actor: AbstractBaseUser, position: Any) -> Lab:
    """The step the student is reading (kept, so the guide opens there next time)."""
    lab_services.require_act(actor, lab)
    steps = (lab.template_version.guide or {}).get("steps", [])
    if not isinstance(position, int) or isinstance(position, bool) or not 1 <= position <= max(1, len(steps)):
        raise ValidationError({"position": f"Give a step number from 1 to {max(1, len(steps))}."})
    Lab.objects.filter(pk=lab.pk).update(guide_position=position)
    lab.guide_position = position
    return lab


@dataclass(frozen=True)
class CheckOutcome:
    """How one check went in a worker: passed or not, why in words, the output or the answer.
    ``skipped`` keeps the check's last result (a question when someone else checks)."""

    check_key: str
    passed: bool = False
    words: str = ""
    output: str = ""
    answer: str = ""
    skipped: bool = False


@dataclass(frozen=True)
class StepChecked:
    result: StepResult
    newly_completed: bool
    passed: int
    total: int


def _storable(text: str) -> str:
    return text.replace("\x00", "\ufffd").encode("utf-8", "replace").decode("utf-8")


def check_results_record(*, lab: Lab, step: dict[str, Any], outcomes: list[CheckOutcome], operation: Operation):
    """Keep what a check operation found (each check's last result) and complete the step when all
    its checks now pass; a newly completed step's points go to the LMS grade book (after commit)."""
    now = timezone.now()
    with transaction.atomic():
        for outcome in outcomes:
            if outcome.skipped:
                continue
            CheckResult.objects.update_or_create(
                lab=lab,
                check_key=outcome.check_key,
                defaults={
                    "step_key": step["key"],
                    "passed": outcome.passed,
                    "words": _storable(outcome.words)[:500],
                    # What a guest printed is the student's to shape: a NUL byte (which PostgreSQL
                    # refuses in text) or a lone surrogate must not turn the check into an error.
                    "output": _storable(outcome.output)[-CHECK_OUTPUT_MAX_CHARACTERS:],
                    "answer": outcome.answer[:ANSWER_MAX_CHARACTERS],
                    "checked_at": now,
                    "operation": operation,
                },
            )
        keys = [check["key"] for check in step["checks"]]
        passed = CheckResult.objects.filter(lab=lab, check_key__in=keys, passed=True).count()
        result, _ = StepResult.objects.select_for_update().get_or_create(lab=lab, step_key=step["key"])
        result.attempts += 1
        result.checked_at = now
        newly = result.completed_at is None and passed == len(keys)
        if newly:
            result.completed_at = now
            result.points = step["points"]
        result.save()
        realtime.guide_changed(lab)
        if newly and step["points"]:
            transaction.on_commit(lambda: scores_send_to_lms(course=lab.course, student=lab.student), robust=True)
    return StepChecked(result=result, newly_completed=newly, passed=passed, total=len(keys))


def scores_send_to_lms(*, course: Course, student: AbstractBaseUser, actor: AbstractBaseUser | None = None) -> int:
    """The student's course score to each linked LMS that offers a grade book; how many took it.
    A grade book that cannot be reached is logged and audited (by lti.services), never fatal:
    the next completed step sends the score again."""
    score, maximum = selectors.course_student_score(course=course, student=student)
    if not maximum:
        return 0
    sent = 0
    for link in CourseLink.objects.filter(course=course).exclude(lineitems_url="").select_related("platform"):
        try:
            lti_services.score_send(
                link=link,
                student=student,
                score_given=score,
                score_maximum=maximum,
                comment="Nestlab lab guide",
                actor=actor,
            )
        except (ValidationError, PermissionDenied) as error:
            logger.warning("The score of %s was not sent to %s: %s", student.get_username(), link.platform.name, error)
        else:
            sent += 1
    return sent


def course_scores_send(*, course: Course, actor: AbstractBaseUser) -> int:
    """Send every enrolled student's score to the LMS again (an instructor's button); how many."""
    if not course_permissions.can_manage_course(actor, course):
        raise PermissionDenied("Only this course's instructors can send its scores.")
    # Warm-pool labs are nobody's: no score to send.
    labs = Lab.objects.filter(course=course, student__isnull=False).select_related("student")
    students = {lab.student for lab in labs}
    return sum(1 for student in students if scores_send_to_lms(course=course, student=student, actor=actor))


def class_check_allowed(*, course: Course, actor: AbstractBaseUser) -> None:
    """Refuse (``PermissionDenied``, in words) anyone but the course's instructors and admins the
    class-wide check: the rule ``class_check_start`` applies, for the API to answer a refusal before
    it reads the request's body."""
    if not course_permissions.can_manage_course(actor, course):
        raise PermissionDenied("Only this course's instructors can check the whole class.")


def class_check_start(
    *, course: Course, actor: AbstractBaseUser, step_key: str, lab_ids: list[int] | None = None
) -> list[lab_services.LabOutcome]:
    """ "Check the whole class": a step's automatic checks on each ready lab of the course, or on
    each of ``lab_ids`` in the order given, each through "Check my work" as if its button were
    clicked (one busy lab does not stop the others). Questions keep the students' own answers.
    Asked by id, a lab that is not ready is refused in its own route's words and one not in the
    course is "not there" (``Lab.DoesNotExist``), as in ``labs.services.class_labs_apply``."""
    class_check_allowed(course=course, actor=actor)
    labs = Lab.objects.filter(course=course, student__isnull=False).select_related(
        "course", "student", "template_version"
    )
    if lab_ids is None:
        chosen = [(lab.pk, lab) for lab in labs.filter(state=Lab.State.READY).order_by("student__username", "number")]
    else:
        found = labs.in_bulk(lab_ids)
        chosen = [(lab_id, found.get(lab_id)) for lab_id in dict.fromkeys(lab_ids)]
    outcomes = []
    for lab_id, lab in chosen:
        if lab is None:
            missing = Lab.DoesNotExist("No lab with that id in this course.")
            outcomes.append(lab_services.LabOutcome(lab_id, None, refusal=missing))
            continue
        try:
            operation = lab_check_start(lab=lab, actor=actor, step_key=step_key)
        except (Conflict, PermissionDenied, ValidationError) as refusal:
            if isinstance(refusal, PermissionDenied):
                portal_audit.service_refused(actor=actor, action="lab.check.class", target=lab, reason=str(refusal))
            outcomes.append(lab_services.LabOutcome(lab.pk, lab, refusal=refusal))
        else:
            outcomes.append(lab_services.LabOutcome(lab.pk, lab, operation=operation))
    return outcomes
