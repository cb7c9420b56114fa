"""Reads of the courses app shared by pages, API and consumers."""

from __future__ import annotations

import datetime
import heapq
import itertools
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Count, Max, Prefetch, Q, QuerySet
from django.utils import timezone

from core import roles
from courses import permissions
from courses.models import (
    ClassSession,
    Course,
    CourseQuota,
    Enrollment,
    GuideImage,
    LabTemplate,
    TemplateVersion,
    TemplateVM,
    VCenterEndpoint,
    VersionBaseline,
)

# Why a version did not publish, for instructors who may read the template but not edit it
# (``courses.permissions.sees_template_detail``): vCenter's words are for its owners and admins.
HIDDEN_PUBLISH_ERROR = "Publishing failed; the template's owners and admins see why."


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


@dataclass(frozen=True)
class Occurrence:
    """One meeting of a class session: its start and end (aware, UTC) and when its labs are due
    ready. ``local_start`` is the start on the session's own wall clock, for pages."""

    session: ClassSession
    starts_at: datetime.datetime
    ends_at: datetime.datetime

    @property
    def ready_at(self) -> datetime.datetime:
        return self.starts_at - datetime.timedelta(minutes=self.session.ready_minutes_before)

    @property
    def local_start(self) -> datetime.datetime:
        return self.starts_at.astimezone(self.session.zone)


def _session_starts(session: ClassSession, from_day: datetime.date) -> Iterator[datetime.datetime]:
    """The session's starts from ``from_day`` on (its own calendar), in order, as UTC.

    Each start is the local date and time in the session's zone, converted on its own day: a 09:00
    class is 09:00 on the wall clock before and after a daylight-saving change, so its UTC start
    moves by an hour. A local time that does not exist that day (inside a spring-forward gap) is
    read with the offset before the change, an hour later on the wall clock; one that exists twice
    is the first.
    """
    zone = session.zone

    def at(day: datetime.date) -> datetime.datetime:
        return datetime.datetime.combine(day, session.start_time, tzinfo=zone).astimezone(datetime.UTC)

    if session.repeat == ClassSession.Repeat.ONCE:
        if session.first_date >= from_day:
            yield at(session.first_date)
        return
    day, weekdays = max(session.first_date, from_day), set(session.weekdays or [])
    while weekdays and session.last_date is not None and day <= session.last_date:
        if day.isoweekday() in weekdays:
            yield at(day)
        day += datetime.timedelta(days=1)


def session_occurrences(
    *,
    sessions: Iterable[ClassSession],
    after: datetime.datetime,
    until: datetime.datetime | None = None,
    limit: int | None = None,
) -> list[Occurrence]:
    """Meetings of the sessions that end after ``after`` (the one going on included) and start
    by ``until`` (at it included), earliest first, at most ``limit``."""

    def occurrences(session: ClassSession) -> Iterator[Occurrence]:
        # A day early: a meeting that began yesterday (in its zone) may still be going on.
        from_day = after.astimezone(session.zone).date() - datetime.timedelta(days=1)
        length = datetime.timedelta(minutes=session.duration_minutes)
        for start in _session_starts(session, from_day):
            if until is not None and start > until:
                return
            if start + length > after:
                yield Occurrence(session=session, starts_at=start, ends_at=start + length)

    merged = heapq.merge(*(occurrences(session) for session in sessions), key=lambda item: item.starts_at)
    return list(itertools.islice(merged, limit))


def course_sessions(*, course: Course) -> QuerySet[ClassSession]:
    return course.sessions.all()


def course_next_occurrences(
    *, course: Course, now: datetime.datetime | None = None, limit: int = 5
) -> list[Occurrence]:
    """The course's next meetings (the one going on first), for its page and the API."""
    return session_occurrences(sessions=course_sessions(course=course), after=now or timezone.now(), limit=limit)


def guide_image(*, template_id: int, name: str, user: AbstractBaseUser) -> GuideImage:
    """An image of a template's guide or manual, for someone who may read them; for anyone else it
    does not exist (GuideImage.DoesNotExist), as a page of a course they are not in."""
    image = GuideImage.objects.select_related("template").filter(template_id=template_id, name=name).first()
    if image is None or not permissions.can_view_guide_image(user, image):
        raise GuideImage.DoesNotExist("No such image.")
    return image


# What ``course_endpoints`` reads, for querysets of courses shown with their vCenters.
COURSE_ENDPOINTS = ("endpoints", "template_version__baselines__endpoint")


def course_endpoints(course: Course, version: TemplateVersion | None = None) -> list[VCenterEndpoint]:
    """The vCenters a course's new labs may go to: those its version (or the given one) serves,
    narrowed to the course's own choice when it made one (labs.placement picks among them)."""
    version = version or course.template_version
    if version is None:
        return []
    # Python over .all(): the course API prefetches both (COURSE_ENDPOINTS), so a page of courses is not N+1.
    served = sorted(
        (baseline.endpoint for baseline in version.baselines.all() if baseline.state == VersionBaseline.State.READY),
        key=lambda endpoint: endpoint.name,
    )
    chosen = {endpoint.pk for endpoint in course.endpoints.all()}
    return [endpoint for endpoint in served if not chosen or endpoint.pk in chosen]
