"""Reads of the LTI tool."""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import QuerySet
from django.http import Http404

from core import roles
from courses import permissions as course_permissions
from courses.models import Course
from lti.models import CourseLink, Platform


def platform_list() -> QuerySet[Platform]:
    return Platform.objects.all()


def framing_origins() -> list[str]:
    """The origins that may show Nestlab's pages in a frame: every active platform's."""
    platforms = Platform.objects.filter(is_active=True).only("issuer", "frame_origins")
    return sorted({origin for platform in platforms for origin in platform.origins})


def course_links(*, course: Course) -> QuerySet[CourseLink]:
    return CourseLink.objects.select_related("platform", "course").filter(course=course)


def course_link_list(*, user: AbstractBaseUser) -> QuerySet[CourseLink]:
    """Links a person may see: admins all, instructors those of the courses they teach."""
    links = CourseLink.objects.select_related("platform", "course")
    if roles.is_admin(user):
        return links
    return links.filter(course__instructors=user)


def course_link(*, link_id: int, user: AbstractBaseUser) -> CourseLink:
    """A link of a course the person manages, else 404 (other courses' links do not exist for them)."""
    link = course_link_list(user=user).filter(pk=link_id).first()
    if link is None or not course_permissions.can_manage_course(user, link.course):
        raise Http404("No such LMS course link.")
    return link
