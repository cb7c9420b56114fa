"""REST API of the LTI tool: thin; every write is the service the pages and the admin call."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import api_view
from rest_framework.permissions import BasePermission, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core import roles
from core.api import errors
from lti import selectors, services
from lti.api import serializers as s
from lti.models import CourseLink

User = get_user_model()


class IsAdmin(BasePermission):
    message = services.ADMINS_ONLY

    def has_permission(self, request, view) -> bool:
        return roles.is_admin(request.user)


@extend_schema_view(
    list=extend_schema(
        summary="List registered LMS platforms", responses={200: s.PlatformSerializer(many=True), **errors(403)}
    ),
    create=extend_schema(summary="Register an LMS platform", responses={201: s.PlatformSerializer, **errors(400, 403)}),
    retrieve=extend_schema(summary="Get an LMS platform", responses={200: s.PlatformSerializer, **errors(403, 404)}),
    update=extend_schema(
        summary="Replace an LMS platform's settings", responses={200: s.PlatformSerializer, **errors(400, 403, 404)}
    ),
    partial_update=extend_schema(
        summary="Change some of an LMS platform's settings",
        responses={200: s.PlatformSerializer, **errors(400, 403, 404)},
    ),
    destroy=extend_schema(
        summary="Remove an LMS platform",
        description="Its course links and LMS identities go with it; the accounts stay.",
        responses={204: None, **errors(403, 404)},
    ),
)
@extend_schema(tags=["lti"])
class PlatformViewSet(viewsets.ModelViewSet):
    """LMS platforms (LTI 1.3), admins only."""

    serializer_class = s.PlatformSerializer
    permission_classes = [IsAuthenticated, IsAdmin]
    lookup_value_regex = r"\d+"

    def get_queryset(self):
        return selectors.platform_list()

    def perform_create(self, serializer) -> None:
        serializer.instance = services.platform_create(actor=self.request.user, **serializer.validated_data)

    def perform_update(self, serializer) -> None:
        serializer.instance = services.platform_update(
            platform=serializer.instance, actor=self.request.user, **serializer.validated_data
        )

    def perform_destroy(self, instance) -> None:
        services.platform_delete(platform=instance, actor=self.request.user)


@extend_schema_view(
    list=extend_schema(
        summary="List LMS course links",
        description="Admins: all. Instructors: those of the courses they teach.",
        responses={200: s.CourseLinkSerializer(many=True), **errors(403)},
    ),
    retrieve=extend_schema(summary="Get an LMS course link", responses={200: s.CourseLinkSerializer, **errors(404)}),
    destroy=extend_schema(
        summary="Unlink an LMS course",
        description="Its launches open nothing until an instructor links it again; enrollments stay.",
        responses={204: None, **errors(403, 404)},
    ),
)
@extend_schema(tags=["lti"])
class CourseLinkViewSet(mixins.DestroyModelMixin, viewsets.ReadOnlyModelViewSet):
    """LMS courses linked to Nestlab courses (made by an instructor's launch)."""

    serializer_class = s.CourseLinkSerializer
    lookup_value_regex = r"\d+"

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return CourseLink.objects.none()
        return selectors.course_link_list(user=self.request.user)

    def perform_destroy(self, instance) -> None:
        services.course_link_delete(link=instance, actor=self.request.user)


@extend_schema(
    tags=["lti"],
    summary="Sync a course's roster from the LMS now",
    description="Enrolls the LMS course's active learners and removes the LMS-made enrollments of those who left.",
    request=None,
    responses={200: s.RosterSyncSerializer, **errors(400, 403, 404)},
)
@api_view(["POST"])
def roster_sync(request: Request, link_id: int) -> Response:
    link = selectors.course_link(link_id=link_id, user=request.user)
    result = services.roster_sync(link=link, actor=request.user)
    return Response(
        {
            "enrolled": result.enrolled,
            "removed": result.removed,
            "unchanged": result.unchanged,
            "detail": result.words(),
        }
    )


@extend_schema(
    tags=["lti"],
    summary="Send a student's score to the LMS grade book",
    request=s.ScoreSerializer,
    responses={200: s.ScoreSentSerializer, **errors(400, 403, 404)},
)
@api_view(["POST"])
def score_send(request: Request, link_id: int) -> Response:
    link = selectors.course_link(link_id=link_id, user=request.user)
    serializer = s.ScoreSerializer(data=request.data)
    serializer.is_valid(raise_exception=True)
    data = serializer.validated_data
    student = link.course.enrollments.filter(student_id=data["student"]).select_related("student").first()
    if student is None:
        raise ValidationError({"student": f"No student with id {data['student']} is enrolled in {link.course.code}."})
    column = services.score_send(
        link=link,
        student=student.student,
        score_given=data["score_given"],
        score_maximum=data["score_maximum"],
        comment=data["comment"],
        actor=request.user,
    )
    return Response({"line_item": column})


@extend_schema(tags=["lti"])
class KeyRotateView(APIView):
    permission_classes = [IsAuthenticated, IsAdmin]

    @extend_schema(
        summary="Make a new LTI signing key",
        description="Nestlab signs with the new key; the old ones stay published at /lti/jwks/.",
        request=None,
        responses={201: s.KeyRotatedSerializer, **errors(403)},
    )
    def post(self, request: Request) -> Response:
        return Response({"kid": services.tool_key_rotate(actor=request.user)}, status=status.HTTP_201_CREATED)
