"""REST API of the courses app: thin; every write is the service the pages call.

Reads go through courses.selectors, so an object a caller may not see is a 404; a
refused write is the service's PermissionDenied (403) or ValidationError (400), in the
same words as on the pages (core.api.exception_handler).
"""

from __future__ import annotations

from functools import cached_property

from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.http import Http404
from drf_spectacular.utils import (
    OpenApiResponse,
    PolymorphicProxySerializer,
    extend_schema,
    extend_schema_view,
)
from rest_framework import generics, mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.permissions import BasePermission, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response

from core.api import errors
from courses import permissions, selectors, services
from courses.api import serializers as s
from courses.models import Course, CourseQuota, Enrollment, LabTemplate, TemplateNetwork, TemplateVersion, TemplateVM
from courses.usage import usage_bars

User = get_user_model()


def _require(allowed: bool, message: str) -> None:
    if not allowed:
        raise PermissionDenied(message)


def _fake(view) -> bool:
    """Schema generation runs views without a user."""
    return getattr(view, "swagger_fake_view", False)


class ManagesEndpoints(BasePermission):
    message = "Only admins can manage vCenters."

    def has_permission(self, request, view) -> bool:
        if view.action == "list" and permissions.can_create_templates(request.user):
            return True  # instructors pick a template's endpoint from the list (names only)
        return permissions.can_manage_endpoints(request.user)


class BuildsTemplates(BasePermission):
    message = "Only instructors and admins can use templates."

    def has_permission(self, request, view) -> bool:
        return permissions.can_create_templates(request.user)


# vCenter endpoints


@extend_schema_view(
    list=extend_schema(
        summary="List vCenter endpoints",
        description="Admins: every field. Instructors: only `id` and `name`, to pick a template's endpoint.",
        responses={
            200: PolymorphicProxySerializer(
                component_name="EndpointListItem",
                serializers=[s.EndpointSerializer, s.EndpointNameSerializer],
                resource_type_field_name=None,
                many=True,
            ),
            **errors(403),
        },
    ),
    create=extend_schema(summary="Connect a vCenter", responses={201: s.EndpointSerializer, **errors(400, 403)}),
    retrieve=extend_schema(summary="Get a vCenter endpoint", responses={200: s.EndpointSerializer, **errors(403, 404)}),
    update=extend_schema(
        summary="Replace a vCenter endpoint's settings",
        description="An empty or missing `password` keeps the stored one.",
        responses={200: s.EndpointSerializer, **errors(400, 403, 404)},
    ),
    partial_update=extend_schema(
        summary="Change some of a vCenter endpoint's settings",
        description="An empty or missing `password` keeps the stored one.",
        responses={200: s.EndpointSerializer, **errors(400, 403, 404)},
    ),
    destroy=extend_schema(
        summary="Remove a vCenter endpoint",
        description="Refused (400) while templates use it.",
        responses={204: None, **errors(400, 403, 404)},
    ),
)
@extend_schema(tags=["endpoints"])
class EndpointViewSet(viewsets.ModelViewSet):
    """vCenter endpoints, admins only. The password is write-only."""

    serializer_class = s.EndpointSerializer
    permission_classes = [IsAuthenticated, ManagesEndpoints]
    lookup_value_regex = r"\d+"

    def get_queryset(self):
        return selectors.endpoint_list()

    def get_serializer_class(self):
        if _fake(self) or permissions.can_manage_endpoints(self.request.user):
            return s.EndpointSerializer
        return s.EndpointNameSerializer

    def perform_create(self, serializer) -> None:
        fields = dict(serializer.validated_data)
        password = fields.pop("password", "")
        serializer.instance = services.endpoint_create(actor=self.request.user, password=password, **fields)

    def perform_update(self, serializer) -> None:
        serializer.instance = services.endpoint_update(
            endpoint=serializer.instance, actor=self.request.user, **serializer.validated_data
        )

    def perform_destroy(self, instance) -> None:
        services.endpoint_delete(endpoint=instance, actor=self.request.user)


# Templates


def _template(request: Request, template_id: int | str, *, detail: bool = False) -> LabTemplate:
    """A template the caller may see (with its networks, VMs and versions when ``detail``), else 404."""
    try:
        if detail:
            return selectors.template_detail(template_id=template_id, user=request.user)
        return selectors.template_list(user=request.user).get(pk=template_id)
    except LabTemplate.DoesNotExist:
        raise Http404("No template with that id.") from None


@extend_schema_view(
    list=extend_schema(summary="List lab templates", responses={200: s.TemplateSerializer(many=True), **errors(403)}),
    retrieve=extend_schema(
        summary="Get a template with its networks and VMs",
        responses={200: s.TemplateDetailSerializer, **errors(403, 404)},
    ),
    create=extend_schema(
        summary="Create a draft template",
        description="The creator becomes its owner. Its networks default to one, `lab`.",
        request=s.TemplateCreateSerializer,
        responses={201: s.TemplateDetailSerializer, **errors(400, 403)},
    ),
    update=extend_schema(
        summary="Edit a template's draft",
        description="Owners and admins. Every edit starts a new revision of the draft.",
        request=s.TemplateUpdateSerializer,
        responses={200: s.TemplateDetailSerializer, **errors(400, 403, 404)},
    ),
    partial_update=extend_schema(
        summary="Edit some fields of a template's draft",
        description="Owners and admins. Every edit starts a new revision of the draft.",
        request=s.TemplateUpdateSerializer,
        responses={200: s.TemplateDetailSerializer, **errors(400, 403, 404)},
    ),
)
@extend_schema(tags=["templates"])
class TemplateViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    viewsets.GenericViewSet,
):
    """Lab templates: instructors and admins read all; owners and admins edit."""

    permission_classes = [IsAuthenticated, BuildsTemplates]
    lookup_value_regex = r"\d+"

    def get_queryset(self):
        if _fake(self):
            return LabTemplate.objects.none()
        return selectors.template_list(user=self.request.user)

    def get_serializer_class(self):
        return {
            "list": s.TemplateSerializer,
            "create": s.TemplateCreateSerializer,
            "update": s.TemplateUpdateSerializer,
            "partial_update": s.TemplateUpdateSerializer,
        }.get(self.action, s.TemplateDetailSerializer)

    def get_object(self) -> LabTemplate:
        return _template(self.request, self.kwargs["pk"], detail=True)

    def _detail(self, template: LabTemplate) -> dict:
        fresh = _template(self.request, template.pk, detail=True)
        return s.TemplateDetailSerializer(fresh, context=self.get_serializer_context()).data

    def create(self, request: Request, *args, **kwargs) -> Response:
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        fields = dict(serializer.validated_data)
        if "networks" in fields:
            fields["networks"] = tuple(fields["networks"])
        template = services.template_create(actor=request.user, **fields)
        return Response(self._detail(template), status=status.HTTP_201_CREATED)

    def update(self, request: Request, *args, partial: bool = False, **kwargs) -> Response:
        template = self.get_object()
        serializer = self.get_serializer(template, data=request.data, partial=partial)
        serializer.is_valid(raise_exception=True)
        services.template_update(template=template, actor=request.user, **serializer.validated_data)
        return Response(self._detail(template))


class _TemplatePart(viewsets.GenericViewSet):
    """A part of one template (its networks, VMs or versions), at templates/{template_id}/..."""

    permission_classes = [IsAuthenticated, BuildsTemplates]

    @cached_property
    def template(self) -> LabTemplate:
        return _template(self.request, self.kwargs["template_id"])


@extend_schema_view(
    list=extend_schema(
        summary="List a template's networks",
        responses={200: s.TemplateNetworkSerializer(many=True), **errors(403, 404)},
    ),
    create=extend_schema(
        summary="Add a network to a template",
        description="Owners and admins.",
        responses={201: s.TemplateNetworkSerializer, **errors(400, 403, 404)},
    ),
    destroy=extend_schema(
        summary="Remove a network from a template",
        description="Owners and admins. Refused (400) while a VM's adapter is on it.",
        responses={204: None, **errors(400, 403, 404)},
    ),
)
@extend_schema(tags=["templates"])
class TemplateNetworkViewSet(mixins.ListModelMixin, mixins.CreateModelMixin, mixins.DestroyModelMixin, _TemplatePart):
    serializer_class = s.TemplateNetworkSerializer

    def get_queryset(self):
        if _fake(self):
            return TemplateNetwork.objects.none()
        return self.template.networks.all()

    def perform_create(self, serializer) -> None:
        serializer.instance = services.template_network_add(
            template=self.template, actor=self.request.user, **serializer.validated_data
        )

    def perform_destroy(self, instance: TemplateNetwork) -> None:
        services.template_network_remove(network=instance, actor=self.request.user)


@extend_schema_view(
    list=extend_schema(
        summary="List a template's VMs", responses={200: s.TemplateVMSerializer(many=True), **errors(403, 404)}
    ),
    retrieve=extend_schema(summary="Get a template VM", responses={200: s.TemplateVMSerializer, **errors(403, 404)}),
    create=extend_schema(
        summary="Add a VM picked from vCenter to a template",
        description=(
            "Owners and admins. Pick the VM with `GET /api/v1/endpoints/{id}/inventory/`; "
            "it is checked in vCenter when the template is published."
        ),
        responses={201: s.TemplateVMSerializer, **errors(400, 403, 404)},
    ),
    update=extend_schema(
        summary="Change a template VM's role, boot order, sizes or networks",
        description="Owners and admins. The source VM cannot change; remove the VM and add another.",
        responses={200: s.TemplateVMSerializer, **errors(400, 403, 404)},
    ),
    partial_update=extend_schema(
        summary="Change some settings of a template VM",
        description="Owners and admins. The source VM cannot change; remove the VM and add another.",
        responses={200: s.TemplateVMSerializer, **errors(400, 403, 404)},
    ),
    destroy=extend_schema(
        summary="Remove a VM from a template",
        description="Owners and admins. The VM in vCenter is not touched.",
        responses={204: None, **errors(403, 404)},
    ),
)
@extend_schema(tags=["templates"])
class TemplateVMViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    mixins.DestroyModelMixin,
    _TemplatePart,
):
    def get_serializer_class(self):
        if self.action in ("update", "partial_update"):
            return s.TemplateVMUpdateSerializer
        return s.TemplateVMSerializer

    def get_queryset(self):
        if _fake(self):
            return TemplateVM.objects.none()
        return self.template.vms.prefetch_related("nics__network")

    def perform_create(self, serializer) -> None:
        vm = services.template_vm_add(template=self.template, actor=self.request.user, **serializer.validated_data)
        serializer.instance = self.get_queryset().get(pk=vm.pk)

    def perform_update(self, serializer) -> None:
        vm = services.template_vm_update(vm=serializer.instance, actor=self.request.user, **serializer.validated_data)
        serializer.instance = self.get_queryset().get(pk=vm.pk)

    def perform_destroy(self, instance: TemplateVM) -> None:
        services.template_vm_remove(vm=instance, actor=self.request.user)


@extend_schema_view(
    list=extend_schema(
        summary="List a template's versions",
        description="Newest first. Publish with `POST /api/v1/templates/{id}/publish/`.",
        responses={200: s.TemplateVersionSerializer(many=True), **errors(403, 404)},
    ),
    retrieve=extend_schema(
        summary="Get a template version with its frozen spec",
        responses={200: s.TemplateVersionSerializer, **errors(403, 404)},
    ),
)
@extend_schema(tags=["templates"])
class TemplateVersionViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, _TemplatePart):
    serializer_class = s.TemplateVersionSerializer

    def get_queryset(self):
        if _fake(self):
            return TemplateVersion.objects.none()
        return self.template.versions.select_related("created_by").order_by("-number")


# Courses


def _course(request: Request, course_id: int | str) -> Course:
    """A course the caller may see (admins all, instructors theirs, students enrolled), else 404."""
    try:
        return selectors.course_list(user=request.user).get(pk=course_id)
    except Course.DoesNotExist:
        raise Http404("No course with that id.") from None


def _managed_course(request: Request, course_id: int | str, message: str) -> Course:
    """A course the caller runs; checked before reading input, so students learn nothing from it."""
    course = _course(request, course_id)
    _require(permissions.can_manage_course(request.user, course), message)
    return course


ROSTER_WORDS = "Only this course's instructors can change its roster."


@extend_schema_view(
    list=extend_schema(
        summary="List courses",
        description="Admins: every course; instructors: those they teach; students: those they are enrolled in.",
        responses={200: s.CourseSerializer(many=True), **errors(403)},
    ),
    retrieve=extend_schema(summary="Get a course", responses={200: s.CourseSerializer, **errors(403, 404)}),
    create=extend_schema(
        summary="Create a course",
        description=(
            "Instructors and admins. It starts as a draft taught by its creator, with no limits and a join code."
        ),
        request=s.CourseCreateSerializer,
        responses={201: s.CourseSerializer, **errors(400, 403)},
    ),
    update=extend_schema(
        summary="Edit a course",
        description="Its instructors and admins. Opening it needs a published template version.",
        responses={200: s.CourseSerializer, **errors(400, 403, 404)},
    ),
    partial_update=extend_schema(
        summary="Edit some fields of a course",
        description="Its instructors and admins. Opening it needs a published template version.",
        responses={200: s.CourseSerializer, **errors(400, 403, 404)},
    ),
)
@extend_schema(tags=["courses"])
class CourseViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    viewsets.GenericViewSet,
):
    """Courses a caller may see; writes by the course's instructors and admins."""

    lookup_value_regex = r"\d+"

    def get_queryset(self):
        if _fake(self):
            return Course.objects.none()
        return selectors.course_list(user=self.request.user).prefetch_related(*selectors.COURSE_ENDPOINTS)

    def get_serializer_class(self):
        return s.CourseCreateSerializer if self.action == "create" else s.CourseSerializer

    def _visible(self, course: Course) -> Course:
        return _course(self.request, course.pk)

    def create(self, request: Request, *args, **kwargs) -> Response:
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        course = self._visible(services.course_create(actor=request.user, **serializer.validated_data))
        return Response(
            s.CourseSerializer(course, context=self.get_serializer_context()).data, status=status.HTTP_201_CREATED
        )

    def perform_update(self, serializer) -> None:
        course = services.course_update(
            course=serializer.instance, actor=self.request.user, **serializer.validated_data
        )
        serializer.instance = self._visible(course)

    @extend_schema(
        summary="Join a course with its join code",
        description="Students. The course must be open.",
        request=s.JoinSerializer,
        responses={200: s.CourseSerializer, **errors(400, 403)},
    )
    @action(detail=False, methods=["post"])
    def join(self, request: Request) -> Response:
        serializer = s.JoinSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        enrollment = services.course_join(student=request.user, code=serializer.validated_data["code"])
        course = self._visible(enrollment.course)
        return Response(s.CourseSerializer(course, context=self.get_serializer_context()).data)

    @extend_schema(
        summary="Usage of a course against its quota",
        description="One bar per limit. Anyone who can see the course.",
        request=None,
        responses={200: s.UsageBarSerializer(many=True), **errors(403, 404)},
    )
    @action(detail=True, methods=["get"], pagination_class=None)
    def usage(self, request: Request, pk: str | None = None) -> Response:
        return Response(s.UsageBarSerializer(usage_bars(self.get_object()), many=True).data)

    @extend_schema(
        summary="Give a student extra lab hours or labs",
        description="The course's instructors and admins. The student must be enrolled.",
        request=s.TopUpSerializer,
        responses={201: s.TopUpSerializer, **errors(400, 403, 404)},
    )
    @action(detail=True, methods=["post"], url_path="top-ups")
    def top_ups(self, request: Request, pk: str | None = None) -> Response:
        course = _managed_course(request, pk, "Only this course's instructors and admins can top up.")
        serializer = s.TopUpSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        top_up = services.top_up_grant(course=course, actor=request.user, **serializer.validated_data)
        return Response(s.TopUpSerializer(top_up).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        summary="Rotate or disable a course's join code",
        description='`{"enabled": true}` (the default) makes a fresh code; the old one stops working.',
        request=s.JoinCodeSerializer,
        responses={200: s.JoinCodeSerializer, **errors(400, 403, 404)},
    )
    @action(detail=True, methods=["post"], url_path="join-code")
    def join_code(self, request: Request, pk: str | None = None) -> Response:
        course = self.get_object()
        serializer = s.JoinCodeSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        course = services.join_code_rotate(
            course=course, actor=request.user, enabled=serializer.validated_data["enabled"]
        )
        return Response({"join_code": course.join_code})

    @extend_schema(
        summary="Enroll a class from a CSV file",
        description=(
            "The course's instructors and admins. All or nothing: a file with any bad row answers 400 "
            'with `errors.lines` (`{"3": "<problem>"}`) and changes nothing. Accounts the file creates '
            "without a password get a generated one, answered once."
        ),
        request={"multipart/form-data": s.RosterUploadSerializer},
        responses={
            200: s.RosterImportSerializer,
            400: OpenApiResponse(s.RosterErrorSerializer, description="Nothing was applied."),
            **errors(403, 404),
        },
    )
    @action(detail=True, methods=["post"], parser_classes=[MultiPartParser, FormParser])
    def roster(self, request: Request, pk: str | None = None) -> Response:
        course = _managed_course(request, pk, ROSTER_WORDS)
        serializer = s.RosterUploadSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        # One byte past the limit is enough for the service to say the file is too large.
        data = serializer.validated_data["file"].read(services.ROSTER_MAX_BYTES + 1)
        try:
            result = services.roster_import_csv(course=course, actor=request.user, data=data)
        except services.RosterError as error:
            return Response(_roster_error(error), status=status.HTTP_400_BAD_REQUEST)
        return Response(s.RosterImportSerializer(result).data)


def _roster_error(error: services.RosterError) -> dict:
    if error.lines:
        lines = {str(line): problem for line, problem in sorted(error.lines.items())}
        listed = "; ".join(f"line {line}: {problem}" for line, problem in lines.items())
        return {
            "detail": f"Nothing from the file was applied. Fix these lines and upload it again: {listed}.",
            "errors": {"lines": lines},
        }
    message = " ".join(error.messages)
    return {"detail": f"{message} Nothing from the file was applied.", "errors": {"file": [message]}}


@extend_schema_view(
    list=extend_schema(
        summary="List a course's students",
        description="The course's instructors and admins.",
        responses={200: s.EnrollmentSerializer(many=True), **errors(403, 404)},
    ),
    create=extend_schema(
        summary="Enroll a student, creating the account if asked",
        description=(
            'The course\'s instructors and admins. `{"username"}` enrolls an existing account; adding any of '
            "`email`, `first_name`, `last_name`, `password` creates a student account first, and without a "
            "password answers a generated one in `generated_password`, once. 201 when enrolled now, 200 when "
            "the student already was."
        ),
        request=s.EnrollmentCreateSerializer,
        responses={
            201: s.EnrollmentCreatedSerializer,
            200: s.EnrollmentCreatedSerializer,
            **errors(400, 403, 404),
        },
    ),
    destroy=extend_schema(
        summary="Remove a student from a course",
        description="The course's instructors and admins. The account stays.",
        responses={204: None, **errors(403, 404)},
    ),
)
@extend_schema(tags=["courses"])
class EnrollmentViewSet(
    mixins.ListModelMixin, mixins.CreateModelMixin, mixins.DestroyModelMixin, viewsets.GenericViewSet
):
    """A course's roster, at courses/{course_id}/enrollments/."""

    serializer_class = s.EnrollmentSerializer

    @cached_property
    def course(self) -> Course:
        return _managed_course(self.request, self.kwargs["course_id"], ROSTER_WORDS)

    def get_queryset(self):
        if _fake(self):
            return Enrollment.objects.none()
        return selectors.course_roster(course=self.course)

    def get_serializer_class(self):
        return s.EnrollmentCreateSerializer if self.action == "create" else s.EnrollmentSerializer

    def create(self, request: Request, *args, **kwargs) -> Response:
        course = self.course
        serializer = s.EnrollmentCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        added = services.roster_add(course=course, actor=request.user, **serializer.validated_data)
        enrollment = added.enrollment
        enrollment.generated_password = added.generated_password
        return Response(
            s.EnrollmentCreatedSerializer(enrollment).data,
            status=status.HTTP_201_CREATED if added.newly_enrolled else status.HTTP_200_OK,
        )

    def perform_destroy(self, instance: Enrollment) -> None:
        services.enrollment_remove(enrollment=instance, actor=self.request.user)


QUOTA_WORDS = "Admins. null: no limit; 0: none allowed. Lowering a limit below usage is allowed: it blocks new work."


@extend_schema_view(
    get=extend_schema(
        summary="Get a course's quota",
        description="Anyone who can see the course. null: no limit; 0: none allowed.",
        responses={200: s.QuotaSerializer, **errors(403, 404)},
    ),
    put=extend_schema(
        summary="Set every limit of a course's quota",
        description=QUOTA_WORDS,
        responses={200: s.QuotaSerializer, **errors(400, 403, 404)},
    ),
    patch=extend_schema(
        summary="Set some limits of a course's quota",
        description=QUOTA_WORDS,
        responses={200: s.QuotaSerializer, **errors(400, 403, 404)},
    ),
)
@extend_schema(tags=["courses"])
class CourseQuotaView(generics.GenericAPIView):
    """A course's limits, at courses/{course_id}/quota/."""

    serializer_class = s.QuotaSerializer

    def _quota(self, course: Course) -> CourseQuota:
        try:
            return course.quota
        except CourseQuota.DoesNotExist:
            return CourseQuota(course=course)  # never set: no limits

    def get_object(self) -> CourseQuota:
        """The quota of a course the caller may see, else 404 (also what OPTIONS describes)."""
        return self._quota(_course(self.request, self.kwargs["course_id"]))

    def get(self, request: Request, course_id: int) -> Response:
        return Response(s.QuotaSerializer(self.get_object()).data)

    def put(self, request: Request, course_id: int) -> Response:
        return self._update(request, partial=False)

    def patch(self, request: Request, course_id: int) -> Response:
        return self._update(request, partial=True)

    def _update(self, request: Request, *, partial: bool) -> Response:
        quota = self.get_object()
        course = quota.course
        _require(permissions.can_set_quota(request.user, course), "Only admins can set quotas.")
        serializer = s.QuotaSerializer(quota, data=request.data, partial=partial)
        serializer.is_valid(raise_exception=True)
        quota = services.quota_update(course=course, actor=request.user, **serializer.validated_data)
        return Response(s.QuotaSerializer(quota).data)
