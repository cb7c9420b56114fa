"""Reads of the courses app shared by pages, API and consumers."""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Count, Max, Prefetch, Q, QuerySet

from core import roles
from courses import permissions
from courses.models import (
    Course,
    CourseQuota,
    Enrollment,
    GuideImage,
    LabTemplate,
    TemplateVersion,
    TemplateVM,
    VCenterEndpoint,
)


def endpoint_list() -> QuerySet[VCenterEndpoint]:
    return VCenterEndpoint.objects.all()


def template_list(*, user: AbstractBaseUser) -> QuerySet[LabTemplate]:
    """Templates a user may see: admins and instructors all of them, students none."""
    if not (roles.is_admin(user) or roles.is_instructor(user)):
        return LabTemplate.objects.none()
    return (
        LabTemplate.objects.select_related("endpoint")
        .prefetch_related("owners")
        .annotate(
            vm_count=Count("vms", distinct=True),
            latest_version=Max("versions__number", filter=Q(versions__state=TemplateVersion.State.PUBLISHED)),
        )
    )


def template_detail(*, template_id: int, user: AbstractBaseUser) -> LabTemplate:
    """One template with its networks, VMs (and their NICs) and versions; 404 semantics via DoesNotExist."""
    return (
        template_list(user=user)
        .prefetch_related(
            "networks",
            Prefetch("vms", queryset=TemplateVM.objects.prefetch_related("nics__network")),
            Prefetch("versions", queryset=TemplateVersion.objects.select_related("created_by")),
        )
        .get(pk=template_id)
    )


def template_has_unpublished_changes(template: LabTemplate) -> bool:
    latest = template.versions.order_by("-number").first()
    return latest is None or latest.revision < template.revision


def published_versions(*, user: AbstractBaseUser) -> QuerySet[TemplateVersion]:
    """Versions a course can pin."""
    if not (roles.is_admin(user) or roles.is_instructor(user)):
        return TemplateVersion.objects.none()
    return TemplateVersion.objects.filter(state=TemplateVersion.State.PUBLISHED).select_related("template")


def course_list(*, user: AbstractBaseUser) -> QuerySet[Course]:
    """Admins: every course; instructors: those they teach; students: those they are enrolled in."""
    courses = Course.objects.select_related("template_version__template").annotate(
        student_count=Count("enrollments", distinct=True)
    )
    if roles.is_admin(user):
        return courses
    if roles.is_instructor(user):
        return courses.filter(instructors=user)
    if user.is_authenticated:
        return courses.filter(enrollments__student=user)
    return courses.none()


def course_roster(*, course: Course) -> QuerySet[Enrollment]:
    return course.enrollments.select_related("student").order_by("student__username")


def course_quota(course: Course) -> CourseQuota:
    """The course's quota as it is, or an unsaved one with no limits when none was ever set: pages
    read it without writing (a GET once created the row)."""
    return CourseQuota.objects.filter(course=course).first() or CourseQuota(course=course)


def guide_image(*, template_id: int, name: str, user: AbstractBaseUser) -> GuideImage:
    """An image of a template's guide or manual, for someone who may read them; for anyone else it
    does not exist (GuideImage.DoesNotExist), as a page of a course they are not in."""
    image = GuideImage.objects.select_related("template").filter(template_id=template_id, name=name).first()
    if image is None or not permissions.can_view_guide_images(user, image.template):
        raise GuideImage.DoesNotExist("No such image.")
    return image
