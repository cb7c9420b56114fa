"""REST API of a template's lab guide (issue 15): its steps, their checks and its variables, at
templates/{template_id}/guide/... Thin: every write is the authoring service the guide editor's
page calls (courses.guides), so permissions, bounds and words are the same.

Only the template's owners and admins read a guide here, not every instructor: its checks
carry their answers and commands. Students get 403 before anything is looked up, as on every
template route.
"""

from __future__ import annotations

from functools import cached_property

from django.core.exceptions import PermissionDenied
from django.http import Http404
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response

from core.api import errors
from courses import guides, permissions, selectors
from courses.api import serializers as s
from courses.api.views import BuildsTemplates
from courses.models import GUIDE_IMAGE_MAX_BYTES, GuideCheck, GuideImage, GuideStep, GuideVariable, LabTemplate

READERS_WORDS = "Only the template's owners and admins can read and edit its guide."
WHO = "The template's owners and admins (its checks carry their answers)."


def _fake(view) -> bool:
    """Schema generation runs views without a user."""
    return getattr(view, "swagger_fake_view", False)


class _GuidePart(viewsets.GenericViewSet):
    """A part of one template's guide. The template is found (404) and its guide's readers
    checked (403) before the request's body is read."""

    permission_classes = [IsAuthenticated, BuildsTemplates]

    def initial(self, request, *args, **kwargs) -> None:
        super().initial(request, *args, **kwargs)
        self.template  # noqa: B018 - 404 or 403 now, before any input is read

    @cached_property
    def template(self) -> LabTemplate:
        template = selectors.template_list(user=self.request.user).filter(pk=self.kwargs["template_id"]).first()
        if template is None:
            raise Http404("No template with that id.")
        if not permissions.can_edit_template(self.request.user, template):
            raise PermissionDenied(READERS_WORDS)
        return template


def _crud_schema(noun: str, serializer, update_serializer=None, *, created: str = "", removed: str = ""):
    update_serializer = update_serializer or serializer
    return extend_schema_view(
        list=extend_schema(
            summary=f"List a template guide's {noun}s",
            description=WHO,
            responses={200: serializer(many=True), **errors(403, 404)},
        ),
        retrieve=extend_schema(
            summary=f"Get a template guide's {noun}", description=WHO, responses={200: serializer, **errors(403, 404)}
        ),
        create=extend_schema(
            summary=f"Add a {noun} to a template's guide",
            description=f"{WHO} {created} A new revision of the draft.".strip(),
            responses={201: serializer, **errors(400, 403, 404)},
        ),
        update=extend_schema(
            summary=f"Replace a template guide's {noun}",
            description=f"{WHO} A new revision of the draft.",
            request=update_serializer,
            responses={200: serializer, **errors(400, 403, 404)},
        ),
        partial_update=extend_schema(
            summary=f"Change some fields of a template guide's {noun}",
            description=f"{WHO} A new revision of the draft.",
            request=update_serializer,
            responses={200: serializer, **errors(400, 403, 404)},
        ),
        destroy=extend_schema(
            summary=f"Remove a {noun} from a template's guide",
            description=f"{WHO} {removed} A new revision of the draft.".strip(),
            responses={204: None, **errors(403, 404)},
        ),
    )


class _Crud(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    mixins.DestroyModelMixin,
    _GuidePart,
):
    """What a row answers after a write: read again through the view's queryset."""

    def _fresh(self, row):
        return self.get_queryset().get(pk=row.pk)


@_crud_schema(
    "step",
    s.GuideStepSerializer,
    s.GuideStepUpdateSerializer,
    created="Added at the end of the guide; `position` moves it afterwards.",
    removed="Its checks go with it; the steps after it move up.",
)
@extend_schema(tags=["templates"])
class GuideStepViewSet(_Crud):
    """A template's guide steps, first first, each with its checks."""

    def get_serializer_class(self):
        if self.action in ("update", "partial_update"):
            return s.GuideStepUpdateSerializer
        return s.GuideStepSerializer

    def get_queryset(self):
        if _fake(self):
            return GuideStep.objects.none()
        return self.template.guide_steps.prefetch_related("checks").order_by("position")

    def perform_create(self, serializer) -> None:
        step = guides.guide_step_add(template=self.template, actor=self.request.user, **serializer.validated_data)
        serializer.instance = self._fresh(step)

    def perform_update(self, serializer) -> None:
        step = guides.guide_step_update(step=serializer.instance, actor=self.request.user, **serializer.validated_data)
        serializer.instance = self._fresh(step)

    def perform_destroy(self, instance: GuideStep) -> None:
        guides.guide_step_remove(step=instance, actor=self.request.user)


@_crud_schema(
    "check",
    s.GuideCheckSerializer,
    created=(
        "A `command` check needs `vm_role` and `command` (it passes on `exit_code` and, if given, "
        "`output_pattern`); a `question` needs `prompt` and `answer` (`answer_mode` exact, set or pattern); "
        "a `vm_state` check needs `vm_role`, `vm_property` and `expected`. Missing fields are a 400 in words."
    ),
)
@extend_schema(tags=["templates"])
class GuideCheckViewSet(_Crud):
    """The checks of one guide step, at templates/{template_id}/guide/steps/{step_id}/checks/."""

    serializer_class = s.GuideCheckSerializer

    @cached_property
    def step(self) -> GuideStep:
        step = self.template.guide_steps.filter(pk=self.kwargs["step_id"]).first()
        if step is None:
            raise Http404("No step with that id in this template's guide.")
        return step

    def initial(self, request, *args, **kwargs) -> None:
        super().initial(request, *args, **kwargs)
        self.step  # noqa: B018 - 404 before any input is read

    def get_queryset(self):
        if _fake(self):
            return GuideCheck.objects.none()
        return self.step.checks.order_by("position", "id")

    def perform_create(self, serializer) -> None:
        check = guides.guide_check_add(step=self.step, actor=self.request.user, **serializer.validated_data)
        serializer.instance = self._fresh(check)

    def perform_update(self, serializer) -> None:
        check = guides.guide_check_update(
            check=serializer.instance, actor=self.request.user, **serializer.validated_data
        )
        serializer.instance = self._fresh(check)

    def perform_destroy(self, instance: GuideCheck) -> None:
        guides.guide_check_remove(check=instance, actor=self.request.user)


@_crud_schema(
    "variable",
    s.GuideVariableSerializer,
    created=(
        "Drawn for each lab when it is made: a `string` of `length` letters and digits, a `number` from "
        "`minimum` to `maximum`, or one of `choices`."
    ),
)
@extend_schema(tags=["templates"])
class GuideVariableViewSet(_Crud):
    """A template's guide variables, by name."""

    serializer_class = s.GuideVariableSerializer

    def get_queryset(self):
        if _fake(self):
            return GuideVariable.objects.none()
        return self.template.guide_variables.order_by("name")

    def perform_create(self, serializer) -> None:
        variable = guides.guide_variable_add(
            template=self.template, actor=self.request.user, **serializer.validated_data
        )
        serializer.instance = self._fresh(variable)

    def perform_update(self, serializer) -> None:
        variable = guides.guide_variable_update(
            variable=serializer.instance, actor=self.request.user, **serializer.validated_data
        )
        serializer.instance = self._fresh(variable)

    def perform_destroy(self, instance: GuideVariable) -> None:
        guides.guide_variable_remove(variable=instance, actor=self.request.user)


@extend_schema_view(
    list=extend_schema(
        summary="List a template's guide and manual images",
        description=WHO,
        responses={200: s.GuideImageSerializer(many=True), **errors(403, 404)},
    ),
    create=extend_schema(
        summary="Upload an image for a template's guide and manual",
        description=(
            f"{WHO} PNG, JPEG, GIF or WebP (checked by its bytes; never SVG), at most 2 MB, 50 per template; "
            "one of the same name is replaced. Markdown shows it by its name: `![Topology](topology.png)`."
        ),
        request={"multipart/form-data": s.GuideImageUploadSerializer},
        responses={201: s.GuideImageSerializer, **errors(400, 403, 404)},
    ),
    destroy=extend_schema(
        summary="Remove an image of a template's guide and manual",
        description=f"{WHO} Refused (400) while a published version shows it.",
        responses={204: None, **errors(400, 403, 404)},
    ),
)
@extend_schema(tags=["templates"])
class GuideImageViewSet(mixins.ListModelMixin, mixins.CreateModelMixin, mixins.DestroyModelMixin, _GuidePart):
    """A template's images, at templates/{template_id}/guide/images/."""

    serializer_class = s.GuideImageSerializer
    parser_classes = [MultiPartParser, FormParser]

    def get_queryset(self):
        if _fake(self):
            return GuideImage.objects.none()
        return self.template.guide_images.defer("data").order_by("name")

    def create(self, request: Request, *args, **kwargs) -> Response:
        upload = s.GuideImageUploadSerializer(data=request.data)
        upload.is_valid(raise_exception=True)
        file = upload.validated_data["file"]
        # One byte past the limit is enough for the service to say the image is too large.
        data = file.read(GUIDE_IMAGE_MAX_BYTES + 1)
        name = upload.validated_data.get("name") or file.name
        image = guides.guide_image_add(template=self.template, actor=request.user, name=name, data=data)
        fresh = self.get_queryset().get(pk=image.pk)
        return Response(s.GuideImageSerializer(fresh).data, status=status.HTTP_201_CREATED)

    def perform_destroy(self, instance: GuideImage) -> None:
        guides.guide_image_remove(image=instance, actor=self.request.user)
