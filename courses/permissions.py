"""Who may do what to which object: the one place pages, API and consumers ask."""

from __future__ import annotations

import json

from django.contrib.auth.models import AbstractBaseUser

from core import roles
from courses.models import Course, GuideImage, LabTemplate, TemplateVersion


def can_manage_endpoints(user: AbstractBaseUser) -> bool:
    return roles.is_admin(user)


def can_create_templates(user: AbstractBaseUser) -> bool:
    return roles.is_admin(user) or roles.is_instructor(user)


def can_edit_template(user: AbstractBaseUser, template: LabTemplate) -> bool:
    if roles.is_admin(user):
        return True
    return roles.is_instructor(user) and template.owners.filter(pk=user.pk).exists()


def sees_template_detail(user: AbstractBaseUser, template: LabTemplate) -> bool:
    """Why a version did not publish (vCenter's words: its hosts, datastores) and the guest
    accounts' user names: those who may edit the template. Other instructors read the template
    without them (docs/security.md, fourth round)."""
    return can_edit_template(user, template)


def can_view_template(user: AbstractBaseUser, template: LabTemplate) -> bool:
    """Instructors may read (and base courses on) every template; students never browse them."""
    return roles.is_admin(user) or roles.is_instructor(user)


def can_view_guide_image(user: AbstractBaseUser, image: GuideImage) -> bool:
    """An image of a template's guide or manual: whoever may read the template, and the students
    of a course whose version shows it (not an image only a draft uses yet: it may be the next
    step's answer)."""
    if can_view_template(user, image.template):
        return True
    if not user.is_authenticated:
        return False
    versions = TemplateVersion.objects.filter(template_id=image.template_id, courses__enrollments__student=user).only(
        "manual_html", "guide"
    )
    return any(image.url in version.manual_html or image.url in json.dumps(version.guide) for version in versions)


def can_create_courses(user: AbstractBaseUser) -> bool:
    return roles.is_admin(user) or roles.is_instructor(user)


def teaches(user: AbstractBaseUser, course: Course) -> bool:
    return user.is_authenticated and course.instructors.filter(pk=user.pk).exists()


def can_manage_course(user: AbstractBaseUser, course: Course) -> bool:
    """Edit, roster, provision: the course's own instructors and admins."""
    return roles.is_admin(user) or (roles.is_instructor(user) and teaches(user, course))


def is_enrolled(user: AbstractBaseUser, course: Course) -> bool:
    return user.is_authenticated and course.enrollments.filter(student=user).exists()


def can_view_course(user: AbstractBaseUser, course: Course) -> bool:
    return can_manage_course(user, course) or is_enrolled(user, course)


def can_set_quota(user: AbstractBaseUser, course: Course) -> bool:
    return roles.is_admin(user)


def can_grant_top_up(user: AbstractBaseUser, course: Course) -> bool:
    """Per-student top-ups: admins, and the course's instructors (no ticket to staff needed)."""
    return can_manage_course(user, course)
