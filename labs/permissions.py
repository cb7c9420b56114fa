"""Who may see and act on which lab: the one place pages, API and consumers ask."""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser

from core import roles
from courses import permissions as course_permissions
from courses.models import Course
from labs.models import Lab, Operation


def can_view_lab(user: AbstractBaseUser, lab: Lab) -> bool:
    """The student who owns it, the course's instructors, admins.

    The owner keeps seeing their lab after being removed from the course (until staff delete
    it): it holds their work, seeing it only reads (every action, the console included, asks
    ``can_act_on_lab``), and the pages and the API list a student's own labs whatever their
    enrollment (``labs.selectors.lab_list``), so the page, the API and the live channel agree.

    A warm-pool lab (no student yet) is nobody's by its id, as on every page and API route: the
    pool's own routes show it to the course's staff.
    """
    if not user.is_authenticated or lab.student_id is None:
        return False
    return lab.student_id == user.pk or course_permissions.can_manage_course(user, lab.course)


def sees_failure_detail(user: AbstractBaseUser, course: Course) -> bool:
    """Why a lab or its operation failed in vCenter's own words (they may name its host, port,
    datastores): the course's instructors and admins. The lab's student reads
    ``labs.failure_words.for_students`` instead, and no vCenter's id."""
    return course_permissions.can_manage_course(user, course)


def is_removed_owner(user: AbstractBaseUser, lab: Lab) -> bool:
    """The lab is this student's but they are no longer enrolled in its course."""
    return user.is_authenticated and lab.student_id == user.pk and not course_permissions.is_enrolled(user, lab.course)


def can_act_on_lab(user: AbstractBaseUser, lab: Lab) -> bool:
    """Snapshot, revert, reset, power, console, clone, delete, extend: the course's instructors,
    admins, and the student who owns it while they are enrolled in its course."""
    if not user.is_authenticated:
        return False
    if course_permissions.can_manage_course(user, lab.course):
        return True
    return lab.student_id == user.pk and course_permissions.is_enrolled(user, lab.course)


def can_power_on_lab(user: AbstractBaseUser, lab: Lab) -> bool:
    """Power-on, reset and a revert that powers on (on top of ``can_act_on_lab``).

    Once a course has ended its labs stay off for students: the course-end sweep powers them
    off and lab hours would keep counting after the course. Staff may still power a lab on, to
    look at a student's work or grade it."""
    return not lab.course.has_ended or course_permissions.can_manage_course(user, lab.course)


def can_cancel_operation(user: AbstractBaseUser, operation: Operation) -> bool:
    """Admins, and the person who started it while they may still act on its lab (a student
    removed from the course, or an instructor from it, no longer cancels work on its labs)."""
    if not user.is_authenticated:
        return False
    if roles.is_admin(user):
        return True
    if operation.actor_id != user.pk:
        return False
    return operation.lab_id is None or can_act_on_lab(user, operation.lab)


def can_start_own_lab(user: AbstractBaseUser, course: Course) -> bool:
    return roles.is_student(user) and course_permissions.is_enrolled(user, course)


def can_provision_class(user: AbstractBaseUser, course: Course) -> bool:
    return course_permissions.can_manage_course(user, course)


def can_view_course_usage(user: AbstractBaseUser, course: Course) -> bool:
    """A course's usage report (every student's figures): its instructors and admins."""
    return course_permissions.can_manage_course(user, course)


def can_view_all_usage(user: AbstractBaseUser) -> bool:
    """The usage of every course and vCenter: admins."""
    return roles.is_admin(user)
