"""REST API of a course's class sessions (issue 13): its meeting times and next meetings.

Thin: the model's validators and ``clean`` (through the services' ``full_clean``) refuse bad input
in words (400), as the course page and the admin do; writes are courses.services'.
"""

from __future__ import annotations

from functools import cached_property

from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from core.api import errors
from courses import bounds, selectors, services
from courses.api.views import _course, _fake, _managed_course
from courses.models import ClassSession, Course

UPCOMING_LIMIT = 5


class ClassSessionSerializer(serializers.ModelSerializer):
    """A meeting time: once on ``first_date``, or weekly on ``weekdays`` from ``first_date`` to
    ``last_date``; at ``start_time`` local to ``time_zone``."""

    weekdays = serializers.ListField(
        child=serializers.IntegerField(),
        required=False,
        max_length=7,
        help_text="Weekly: ISO weekdays, 1 (Monday) to 7 (Sunday). Empty for a session that meets once.",
    )
    description = serializers.CharField(source="describe", read_only=True, help_text="When it meets, in words.")

    class Meta:
        model = ClassSession
        fields = [
            "id",
            "title",
            "repeat",
            "first_date",
            "last_date",
            "weekdays",
            "start_time",
            "duration_minutes",
            "time_zone",
            "ready_minutes_before",
            "description",
        ]
        extra_kwargs = {"ready_minutes_before": {"default": bounds.DEFAULT_READY_MINUTES_BEFORE}}


class OccurrenceSerializer(serializers.Serializer):
    """One meeting: its start and end (UTC), the start on its own wall clock, and when labs are due."""

    session = serializers.IntegerField(source="session.pk")
    title = serializers.CharField(source="session.title")
    starts_at = serializers.DateTimeField()
    ends_at = serializers.DateTimeField()
    local_start = serializers.SerializerMethodField(help_text="The start in the session's time zone, ISO 8601.")
    time_zone = serializers.CharField(source="session.time_zone")
    labs_ready_at = serializers.DateTimeField(
        source="ready_at", help_text="When the enrolled students' labs are due ready and running."
    )

    def get_local_start(self, occurrence: selectors.Occurrence) -> str:
        return occurrence.local_start.isoformat()


SESSIONS_WRITE_WORDS = "The course's instructors and admins. Times are local to `time_zone` (an IANA name)."


@extend_schema_view(
    list=extend_schema(
        summary="List a course's class sessions",
        description="Anyone who can see the course.",
        responses={200: ClassSessionSerializer(many=True), **errors(403, 404)},
    ),
    retrieve=extend_schema(summary="Get a class session", responses={200: ClassSessionSerializer, **errors(403, 404)}),
    create=extend_schema(
        summary="Add a class session",
        description=SESSIONS_WRITE_WORDS
        + " Before each meeting the students' labs are built or powered on, to be ready "
        "`ready_minutes_before` it starts.",
        responses={201: ClassSessionSerializer, **errors(400, 403, 404)},
    ),
    update=extend_schema(
        summary="Change a class session",
        description=SESSIONS_WRITE_WORDS,
        responses={200: ClassSessionSerializer, **errors(400, 403, 404)},
    ),
    partial_update=extend_schema(
        summary="Change some fields of a class session",
        description=SESSIONS_WRITE_WORDS,
        responses={200: ClassSessionSerializer, **errors(400, 403, 404)},
    ),
    destroy=extend_schema(
        summary="Remove a class session",
        description="The course's instructors and admins. Labs already made ready stay.",
        responses={204: None, **errors(403, 404)},
    ),
)
@extend_schema(tags=["courses"])
class ClassSessionViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    """A course's meeting times, at courses/{course_id}/sessions/."""

    serializer_class = ClassSessionSerializer

    @cached_property
    def course(self) -> Course:
        if self.action in ("list", "retrieve", "upcoming"):
            return _course(self.request, self.kwargs["course_id"])
        # Checked before reading input, so students learn nothing from it.
        return _managed_course(self.request, self.kwargs["course_id"], services.SESSIONS_WORDS)

    def get_queryset(self):
        if _fake(self):
            return ClassSession.objects.none()
        return selectors.course_sessions(course=self.course)

    def create(self, request: Request, *args, **kwargs) -> Response:
        course = self.course
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        session = services.class_session_create(course=course, actor=request.user, **serializer.validated_data)
        return Response(self.get_serializer(session).data, status=status.HTTP_201_CREATED)

    def perform_update(self, serializer) -> None:
        serializer.instance = services.class_session_update(
            session=serializer.instance, actor=self.request.user, **serializer.validated_data
        )

    def perform_destroy(self, instance: ClassSession) -> None:
        services.class_session_delete(session=instance, actor=self.request.user)

    @extend_schema(
        summary="A course's next meetings",
        description=(
            f"The next {UPCOMING_LIMIT} meetings of all its sessions (the one going on first), with when "
            "the students' labs are due ready. Anyone who can see the course."
        ),
        responses={200: OccurrenceSerializer(many=True), **errors(403, 404)},
    )
    @action(detail=False, methods=["get"], pagination_class=None)
    def upcoming(self, request: Request, *args, **kwargs) -> Response:
        occurrences = selectors.course_next_occurrences(course=self.course, limit=UPCOMING_LIMIT)
        return Response(OccurrenceSerializer(occurrences, many=True).data)
