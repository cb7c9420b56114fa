"""REST API of the labs app: thin; the same services and selectors as the pages."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from django.http import Http404
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action, api_view, permission_classes
from rest_framework.exceptions import APIException
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response

from courses import selectors as course_selectors
from courses.api.serializers import ErrorSerializer
from courses.api.views import BuildsTemplates, errors
from courses.models import LabTemplate, VCenterEndpoint
from labs import selectors, services, vsphere
from labs.api.serializers import InventoryItemSerializer, OperationSerializer, VMInfoSerializer
from labs.models import Operation


@extend_schema_view(
    list=extend_schema(summary="List operations", description="Admins see every operation; others their own."),
    retrieve=extend_schema(summary="Get an operation: state, progress, step, error, result"),
)
@extend_schema(tags=["operations"])
class OperationViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Operations on vCenter: admins see all, everyone else their own."""

    serializer_class = OperationSerializer

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # schema generation has no user
            return Operation.objects.none()
        return selectors.operation_list(user=self.request.user)

    @extend_schema(
        summary="Cancel an operation",
        description=(
            "The actor or an admin. A queued operation ends cancelled at once; a running one after its "
            "current step. One that already ended answers 400."
        ),
        request=None,
        responses={200: OperationSerializer, **errors(400, 403, 404)},
    )
    @action(detail=True, methods=["post"])
    def cancel(self, request: Request, pk: str | None = None) -> Response:
        operation = services.operation_cancel(operation=self.get_object(), actor=request.user)
        return Response(OperationSerializer(operation).data)


@extend_schema(
    request=None,
    responses={202: OperationSerializer, **errors(403, 404)},
    summary="Check a vCenter endpoint's address, login and placement",
    description="Admins. Answers 202 with the queued `endpoint_check` operation; follow it at operations/{id}/.",
    tags=["endpoints"],
)
@api_view(["POST"])
def endpoint_check(request: Request, endpoint_id: int) -> Response:
    endpoint = get_object_or_404(VCenterEndpoint, pk=endpoint_id)
    operation = services.endpoint_check_start(endpoint=endpoint, actor=request.user)
    return Response(OperationSerializer(operation).data, status=status.HTTP_202_ACCEPTED)


# The picker: live reads of vCenter


class VCenterError(APIException):
    """vCenter could not answer; ``detail`` is the driver's sentence."""

    status_code = status.HTTP_502_BAD_GATEWAY
    default_detail = "vCenter reported an error."
    default_code = "vcenter_error"

    # Most specific first. A wrong stored password is the portal's problem, not the caller's: 502.
    STATUS = (
        (vsphere.NotFound, status.HTTP_404_NOT_FOUND),
        (vsphere.InvalidArgument, status.HTTP_400_BAD_REQUEST),
        (vsphere.Unreachable, status.HTTP_503_SERVICE_UNAVAILABLE),
        (vsphere.AuthenticationFailed, status.HTTP_502_BAD_GATEWAY),
    )

    def __init__(self, error: vsphere.VSphereError) -> None:
        super().__init__(str(error))
        self.status_code = next(
            (code for kind, code in self.STATUS if isinstance(error, kind)), status.HTTP_502_BAD_GATEWAY
        )


@contextmanager
def vcenter_errors() -> Iterator[None]:
    try:
        yield
    except vsphere.VSphereError as error:
        raise VCenterError(error) from error


VCENTER_ERRORS = {
    404: OpenApiResponse(ErrorSerializer, description="No such endpoint, or vCenter has no such folder or VM."),
    502: OpenApiResponse(ErrorSerializer, description="vCenter refused the stored login, or reported an error."),
    503: OpenApiResponse(ErrorSerializer, description="vCenter could not be reached."),
}


@extend_schema(
    tags=["endpoints"],
    summary="Browse or search a vCenter's VMs (the template picker)",
    description=(
        "Instructors and admins. Without `search`: the children of the folder at `path` (default: the "
        "datacenter's VM folder). With `search`: VMs and templates whose name contains it, anywhere below "
        "`path` (at most 200). Not paginated."
    ),
    parameters=[
        OpenApiParameter("path", str, description="Inventory path of a folder, e.g. /DC0/vm/Templates."),
        OpenApiParameter("search", str, description="Part of a VM name."),
    ],
    responses={200: InventoryItemSerializer(many=True), **errors(400, 403), **VCENTER_ERRORS},
)
@api_view(["GET"])
def endpoint_inventory(request: Request, endpoint_id: int) -> Response:
    endpoint = get_object_or_404(VCenterEndpoint, pk=endpoint_id)
    with vcenter_errors():
        items = selectors.endpoint_inventory(
            endpoint=endpoint,
            user=request.user,
            path=request.query_params.get("path") or None,
            search=request.query_params.get("search", "").strip(),
        )
    return Response(InventoryItemSerializer(items, many=True).data)


@extend_schema(
    tags=["endpoints"],
    summary="Get a VM's details from vCenter (CPUs, memory, disks, NICs, nested HV)",
    description="Instructors and admins.",
    responses={200: VMInfoSerializer, **errors(400, 403), **VCENTER_ERRORS},
)
@api_view(["GET"])
def endpoint_vm(request: Request, endpoint_id: int, moref: str) -> Response:
    endpoint = get_object_or_404(VCenterEndpoint, pk=endpoint_id)
    with vcenter_errors():
        info = selectors.endpoint_vm(endpoint=endpoint, user=request.user, vm=moref)
    return Response(VMInfoSerializer(info).data)


# Publishing


@extend_schema(
    tags=["templates"],
    summary="Publish a template's draft as a new version",
    description=(
        "Owners and admins. Freezes the draft into the next version (state `publishing`) and answers 202 "
        "with the `publish` operation, which checks every VM in vCenter and takes their baseline snapshots; "
        "the version ends `published` (with its sizes) or `failed` (with the reason). A draft that cannot "
        "be published (no VMs, an adapter on no network, a publish already running) answers 400."
    ),
    request=None,
    responses={202: OperationSerializer, **errors(400, 403, 404)},
)
@api_view(["POST"])
@permission_classes([IsAuthenticated, BuildsTemplates])
def template_publish(request: Request, template_id: int) -> Response:
    try:
        template = course_selectors.template_list(user=request.user).get(pk=template_id)
    except LabTemplate.DoesNotExist:
        raise Http404("No template with that id.") from None
    operation = services.template_publish(template=template, actor=request.user)
    return Response(OperationSerializer(operation).data, status=status.HTTP_202_ACCEPTED)
