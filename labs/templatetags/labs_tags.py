"""Lab things for pages of other apps (the courses app never imports labs; its templates
load these tags), and small words shared by the lab pages."""

from __future__ import annotations

from django import template
from django.contrib.auth.models import AbstractBaseUser

from courses.models import Course
from labs import failure_words, services
from labs.models import Lab, LabVM, power_label

register = template.Library()

CAPACITY_WAIT = "Waiting for vCenter capacity"


@register.filter
def failure_for(error: str, detail: bool) -> str:
    """A lab's or an operation's error as this reader may read it: vCenter's words for staff
    (``detail``, from ``labs.permissions.sees_failure_detail``), else words without them."""
    return error if detail else failure_words.for_students(error)


@register.simple_tag
def student_labs(course: Course, student: AbstractBaseUser) -> list[Lab]:
    """A student's labs in a course that still exist (the one they started and their clones)."""
    if not getattr(student, "is_authenticated", False):
        return []
    return list(
        Lab.objects.filter(course=course, student=student)
        .exclude(state=Lab.State.DELETED)
        .select_related("course", "student")
        .order_by("number")
    )


@register.simple_tag
def course_can_start_labs(course: Course) -> str:
    """Empty when students can start labs in the course now; otherwise why not, in words: the
    service's own rule (it once lacked the "course has ended" check and showed a Start button
    the service then refused)."""
    return services.course_start_refusal(course)


@register.filter
def capacity_wait(step: str) -> str:
    """The words after "Waiting for vCenter capacity:" in an operation's step, or ""."""
    if not step or not step.startswith(CAPACITY_WAIT):
        return ""
    return step[len(CAPACITY_WAIT) :].lstrip(": ") or "other clones are running"


@register.filter
def power_words(state: str) -> str:
    return power_label(state)


@register.filter
def health_words(status: str) -> str:
    return LabVM.HEALTH_WORDS.get(status, "Unknown")
