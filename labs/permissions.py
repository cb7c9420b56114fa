"""Who may see and act on which lab: the one place pages, API and consumers ask."""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser

from courses import permissions as course_permissions
from courses.models import Course
from labs.models import Lab
from portal import roles


def can_view_lab(user: AbstractBaseUser, lab: Lab) -> bool:
    """The student who owns it, the course's instructors, admins."""
    if not user.is_authenticated:
        return False
    return lab.student_id == user.pk or course_permissions.can_manage_course(user, lab.course)


def can_act_on_lab(user: AbstractBaseUser, lab: Lab) -> bool:
    """Snapshot, revert, reset, power, console, clone, delete: the same people who see it."""
    return can_view_lab(user, lab)


def can_start_own_lab(user: AbstractBaseUser, course: Course) -> bool:
    return roles.is_student(user) and course_permissions.is_enrolled(user, course)


def can_provision_class(user: AbstractBaseUser, course: Course) -> bool:
    return course_permissions.can_manage_course(user, course)
