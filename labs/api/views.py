"""REST API of the labs app: thin; the same services and selectors as the pages."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action, api_view, permission_classes
from rest_framework.exceptions import APIException
from rest_framework.permissions import BasePermission, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response

from core.api import ErrorSerializer, errors, not_modified
from core.errors import refusal_status, refusal_words
from core.etags import AnswerCache, fingerprint
from courses import permissions as course_permissions
from courses import selectors as course_selectors
from courses.api.views import BuildsTemplates
from courses.models import Course, LabTemplate, VCenterEndpoint
from labs import console, selectors, services, vsphere
from labs import permissions as lab_permissions
from labs.api.serializers import (
    BulkResponseSerializer,
    BulkSerializer,
    ConsoleOpenedSerializer,
    ConsoleOpenSerializer,
    ConsoleSessionSerializer,
    EndpointLoadSerializer,
    InventoryItemSerializer,
    LabDetailSerializer,
    LabFilterSerializer,
    LabSerializer,
    LabStartSerializer,
    OperationFilterSerializer,
    OperationSerializer,
    PowerSerializer,
    ProvisionResultSerializer,
    ProvisionSerializer,
    RevertSerializer,
    SnapshotCreateSerializer,
    VMInfoSerializer,
)
from labs.models import ConsoleSession, Lab, LabSnapshot, LabVM, Operation

User = get_user_model()


# Polls that changed nothing: the ETag of what the answer is built from (core.api.fingerprint).
CONDITIONAL_READ = (
    "Answers an `ETag`; send it back in `If-None-Match` and, while nothing changed, the answer is "
    "`304 Not Modified` with no body. Clients that watch a lab should use its WebSocket (docs/websocket.md)."
)
_OPERATION_ANSWERS = AnswerCache()
_LAB_ANSWERS = AnswerCache(1024)
NOT_MODIFIED = OpenApiResponse(description="Nothing changed since the `ETag` sent in `If-None-Match`.")

OPERATIONS_SEEN = (
    "Admins see every operation; everyone else those on the labs they may see (a student's own labs; an "
    "instructor's, the labs of the courses they teach) and those on no lab that they started."
)


def _only(allowed, message: str) -> type[BasePermission]:
    """A route reserved to a role answers 403 before it looks anything up, so ids cannot be
    probed (docs/api.md); ``allowed`` is the permission the service asks again."""

    class Only(BasePermission):
        def has_permission(self, request, view) -> bool:
            return allowed(request.user)

    Only.message = message
    return Only


ADMINS_CHECK = _only(course_permissions.can_manage_endpoints, "Only admins can check vCenter connections.")
ADMINS_LOAD = _only(course_permissions.can_manage_endpoints, "Only admins can see the vCenters' load.")
ADMINS_RECONCILE = _only(course_permissions.can_manage_endpoints, "Only admins can reconcile vCenter with Nestlab.")
PICKER = _only(course_permissions.can_create_templates, selectors.PICKER_WORDS)


@extend_schema_view(
    list=extend_schema(
        summary="List operations",
        description=f"{OPERATIONS_SEEN} Newest first; filter with `?lab=`, `?state=`, `?kind=`.",
        parameters=[OperationFilterSerializer],
        responses={200: OperationSerializer(many=True), **errors(400, 403)},
    ),
    retrieve=extend_schema(
        summary="Get an operation: state, progress, step, error, result",
        description=f"{OPERATIONS_SEEN} {CONDITIONAL_READ}",
        responses={200: OperationSerializer, 304: NOT_MODIFIED, **errors(403, 404)},
    ),
)
@extend_schema(tags=["operations"])
class OperationViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Operations on vCenter, as labs.selectors.operation_list lets each person see them."""

    serializer_class = OperationSerializer
    lookup_value_regex = r"\d+"

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # schema generation has no user
            return Operation.objects.none()
        filters = {}
        if self.action == "list":
            query = OperationFilterSerializer(data=self.request.query_params)
            query.is_valid(raise_exception=True)
            filters = query.validated_data
        # The answer names the endpoint by id only: joining its row would be read for nothing
        # by every poll.
        return selectors.operation_list(user=self.request.user, **filters).select_related(None).select_related("actor")

    def retrieve(self, request: Request, *args, **kwargs) -> Response:
        # The poll of every watching client: one compiled query (labs.selectors.operation_for).
        operation = selectors.operation_for(user=request.user, operation_id=int(kwargs["pk"]))
        if operation is None:
            raise Http404("No Operation matches the given query.")
        etag = fingerprint(operation, getattr(operation.actor, "username", None))
        if unchanged := not_modified(request, etag):
            return unchanged
        # A client polling without its ETag gets the answer built when the operation last changed.
        # A lab's student and its staff get different words for the same operation: one answer each.
        detail = operation.lab_id is None or selectors.reads_failure_detail(user=request.user, lab_id=operation.lab_id)
        data = _OPERATION_ANSWERS.get_or_build(
            f"{etag}:{detail}", lambda: OperationSerializer(operation, context={"request": request}).data
        )
        return Response(data, headers={"ETag": etag})

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
        return Response(OperationSerializer(operation, context={"request": request}).data)


@extend_schema(
    responses={200: EndpointLoadSerializer(many=True), **errors(403)},
    summary="Every vCenter's load",
    description=(
        "Admins. Per endpoint: labs building and running, VMs, memory, storage, clone slots in use and "
        "waiting, maintenance and reachability: what placement weighs when it puts a new lab on one."
    ),
    tags=["endpoints"],
)
@api_view(["GET"])
@permission_classes([IsAuthenticated, ADMINS_LOAD])
def endpoint_loads(request: Request) -> Response:
    return Response(EndpointLoadSerializer(selectors.endpoint_load_list(), many=True).data)


@extend_schema(
    request=None,
    responses={202: OperationSerializer, **errors(403, 404)},
    summary="Check a vCenter endpoint's address, login and placement",
    description="Admins. Answers 202 with the queued `endpoint_check` operation; follow it at operations/{id}/.",
    tags=["endpoints"],
)
@api_view(["POST"])
@permission_classes([IsAuthenticated, ADMINS_CHECK])
def endpoint_check(request: Request, endpoint_id: int) -> Response:
    endpoint = get_object_or_404(VCenterEndpoint, pk=endpoint_id)
    operation = services.endpoint_check_start(endpoint=endpoint, actor=request.user)
    return Response(OperationSerializer(operation, context={"request": request}).data, status=status.HTTP_202_ACCEPTED)


@extend_schema(
    request=None,
    responses={202: OperationSerializer, **errors(403, 404, 409)},
    summary="Reconcile a vCenter endpoint with Nestlab",
    description=(
        "Admins. Compares the lab VMs and port groups in vCenter with the database: orphans are recorded "
        "and removed after the grace period, labs whose VMs vanished are marked broken. Answers 202 with the "
        "queued `reconcile` operation (its `result` lists what was found and removed); 409 while one runs."
    ),
    tags=["endpoints"],
)
@api_view(["POST"])
@permission_classes([IsAuthenticated, ADMINS_RECONCILE])
def endpoint_reconcile(request: Request, endpoint_id: int) -> Response:
    endpoint = get_object_or_404(VCenterEndpoint, pk=endpoint_id)
    operation = services.endpoint_reconcile_start(endpoint=endpoint, actor=request.user)
    return Response(OperationSerializer(operation, context={"request": request}).data, status=status.HTTP_202_ACCEPTED)


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
@permission_classes([IsAuthenticated, PICKER])
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
@permission_classes([IsAuthenticated, PICKER])
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
    return Response(OperationSerializer(operation, context={"request": request}).data, status=status.HTTP_202_ACCEPTED)


class PrepareRowSerializer(serializers.Serializer):
    """One source VM: what preparing would change on it, or why Nestlab will not touch it."""

    role = serializers.CharField()
    name = serializers.CharField()
    changes = serializers.ListField(child=serializers.CharField())
    problem = serializers.CharField()


@extend_schema(
    tags=["templates"],
    methods=["GET"],
    summary="What preparing a template's source VMs would change",
    description=(
        "Owners and admins. Read from vCenter now: for each source VM, the `changes` preparing would make "
        "(power off a running VM; turn on nested hardware virtualization where the template VM needs it), "
        "or the `problem` that keeps Nestlab from touching it (gone from vCenter, a lab VM, outside the "
        "endpoint's source folders)."
    ),
    responses={200: PrepareRowSerializer(many=True), **errors(403, 404), **VCENTER_ERRORS},
)
@extend_schema(
    tags=["templates"],
    methods=["POST"],
    summary="Prepare a template's source VMs for publishing",
    description=(
        "Owners and admins. Answers 202 with the `prepare_sources` operation, which powers off running "
        "source VMs (like pulling the plug) and turns on nested hardware virtualization where needed; its "
        "`result.changes` says what it did. 400 for a template without VMs; 409 while it is being "
        "published or prepared."
    ),
    request=None,
    responses={202: OperationSerializer, **errors(400, 403, 404, 409)},
)
@api_view(["GET", "POST"])
@permission_classes([IsAuthenticated, BuildsTemplates])
def template_prepare(request: Request, template_id: int) -> Response:
    try:
        template = course_selectors.template_list(user=request.user).get(pk=template_id)
    except LabTemplate.DoesNotExist:
        raise Http404("No template with that id.") from None
    if request.method == "GET":
        with vcenter_errors():
            plan = selectors.template_prepare_plan(template=template, actor=request.user)
        return Response(PrepareRowSerializer(plan, many=True).data)
    operation = services.template_prepare(template=template, actor=request.user)
    return Response(OperationSerializer(operation, context={"request": request}).data, status=status.HTTP_202_ACCEPTED)


# Student labs


def _lab(request: Request, lab_id: int | str) -> Lab:
    """A lab the caller may see (deleted ones too), else 404: a lab of someone else is not there."""
    try:
        return selectors.lab_list(user=request.user, include_deleted=True).get(pk=lab_id)
    except Lab.DoesNotExist:
        raise Http404("No lab with that id.") from None


def _accepted(request: Request, operation: Operation) -> Response:
    return Response(OperationSerializer(operation, context={"request": request}).data, status=status.HTTP_202_ACCEPTED)


LAB_ERRORS = {
    **errors(400, 404),
    403: OpenApiResponse(
        ErrorSerializer, description="Not allowed, or a quota refuses it: `detail` names the limit and the usage."
    ),
    409: OpenApiResponse(ErrorSerializer, description="The lab is busy: `detail` names the operation running on it."),
}


@extend_schema_view(
    list=extend_schema(
        summary="List labs",
        description=(
            "Students: their own labs; instructors: the labs of the courses they teach; admins: all. Deleted labs "
            "only with `?state=deleted`. Each lab carries the operation keeping it busy, if any."
        ),
        parameters=[LabFilterSerializer],
        responses={200: LabSerializer(many=True), **errors(400, 403)},
    ),
    retrieve=extend_schema(
        summary="Get a lab with its VMs, networks, snapshot tree and running operation",
        description=CONDITIONAL_READ,
        responses={200: LabDetailSerializer, 304: NOT_MODIFIED, **errors(403, 404)},
    ),
    create=extend_schema(
        summary="Start a lab",
        description=(
            "A student starts their own lab in a course they are enrolled in; the course's instructors and admins "
            "start one for an enrolled student by giving `student`. Checked against the course's quota now; "
            "answers 202 with the `provision` operation (its `lab` is the new lab)."
        ),
        request=LabStartSerializer,
        responses={202: OperationSerializer, **LAB_ERRORS},
    ),
    destroy=extend_schema(
        summary="Delete a lab",
        description="Removes its VMs, networks, pool and folder in vCenter; answers 202 with the `delete` operation.",
        responses={202: OperationSerializer, **LAB_ERRORS},
    ),
)
@extend_schema(tags=["labs"])
class LabViewSet(mixins.ListModelMixin, viewsets.GenericViewSet):
    """Student labs. Every action is the service the lab page calls, so permission, busy (409) and
    quota (403) answers are the same words; a lab the caller may not see is a 404."""

    serializer_class = LabSerializer
    lookup_value_regex = r"\d+"

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Lab.objects.none()
        filters = LabFilterSerializer(data=self.request.query_params)
        filters.is_valid(raise_exception=True)
        return selectors.lab_list(user=self.request.user, **filters.validated_data)

    def get_object(self) -> Lab:
        return _lab(self.request, self.kwargs["pk"])

    def list(self, request: Request, *args, **kwargs) -> Response:
        labs = self.paginate_queryset(self.get_queryset())
        context = {**self.get_serializer_context(), "active_operations": selectors.lab_active_operations(labs)}
        return self.get_paginated_response(LabSerializer(labs, many=True, context=context).data)

    def retrieve(self, request: Request, pk: str | None = None) -> Response:
        # The version first (two small queries): unchanged since the client's ETag, a 304; an
        # answer built since it last changed, that answer; the detail is read only otherwise.
        version = selectors.lab_detail_version(lab_id=pk, user=request.user)
        if version is None:
            raise Http404("No lab with that id.")
        if unchanged := not_modified(request, version):
            return unchanged
        # A lab's student and its staff get different words for the same lab: one answer each.
        detail = selectors.reads_failure_detail(user=request.user, lab_id=int(pk))
        if (data := _LAB_ANSWERS.get(f"{version}:{detail}")) is not None:
            return Response(data, headers={"ETag": version})
        try:
            lab = selectors.lab_detail(lab_id=pk, user=request.user)
        except Lab.DoesNotExist:
            raise Http404("No lab with that id.") from None
        # Stored under the detail's own tag: if the lab moved between the two reads, that tag is
        # the new one and the next poll finds it.
        etag = selectors.lab_detail_etag(lab)
        data = _LAB_ANSWERS.get_or_build(
            f"{etag}:{detail}", lambda: LabDetailSerializer(lab, context={"request": request}).data
        )
        return Response(data, headers={"ETag": etag})

    def create(self, request: Request) -> Response:
        serializer = LabStartSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        course = course_selectors.course_list(user=request.user).filter(pk=serializer.validated_data["course"]).first()
        if course is None:
            raise DjangoValidationError({"course": "No course with that id."})
        student = request.user
        if "student" in serializer.validated_data:
            username = serializer.validated_data["student"]
            student = User.objects.filter(username=username).first()
            if student is None:
                raise DjangoValidationError({"student": f"No account is called {username}."})
        return _accepted(request, services.lab_start(course=course, student=student, actor=request.user))

    def destroy(self, request: Request, pk: str | None = None) -> Response:
        return _accepted(request, services.lab_delete(lab=self.get_object(), actor=request.user))

    @extend_schema(
        summary="Take a snapshot of the whole lab",
        description="One snapshot per VM with the same name, taken together. Counts against the snapshot quota.",
        request=SnapshotCreateSerializer,
        responses={202: OperationSerializer, **LAB_ERRORS},
    )
    @action(detail=True, methods=["post"])
    def snapshots(self, request: Request, pk: str | None = None) -> Response:
        lab = self.get_object()
        serializer = SnapshotCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        return _accepted(
            request, services.lab_snapshot_create(lab=lab, actor=request.user, **serializer.validated_data)
        )

    @extend_schema(
        summary="Delete a snapshot of the lab",
        description="The baseline cannot be deleted (400): it is what Reset returns to.",
        parameters=[OpenApiParameter("snapshot_id", int, OpenApiParameter.PATH)],
        request=None,
        responses={202: OperationSerializer, **LAB_ERRORS},
    )
    @action(detail=True, methods=["delete"], url_path=r"snapshots/(?P<snapshot_id>\d+)")
    def snapshot_delete(self, request: Request, pk: str | None = None, snapshot_id: str | None = None) -> Response:
        snapshot = self.get_object().snapshots.filter(pk=snapshot_id).first()
        if snapshot is None:
            raise Http404("No snapshot with that id in this lab.")
        return _accepted(request, services.lab_snapshot_delete(snapshot=snapshot, actor=request.user))

    @extend_schema(
        summary="Revert the whole lab to a snapshot",
        description=(
            "Every VM goes back to the snapshot together; VMs that were on when it was taken are powered on again "
            "(which needs a running slot and lab hours when the lab is off). Give the baseline's id to go back to "
            "how the lab was handed out."
        ),
        request=RevertSerializer,
        responses={202: OperationSerializer, **LAB_ERRORS},
    )
    @action(detail=True, methods=["post"])
    def revert(self, request: Request, pk: str | None = None) -> Response:
        lab = self.get_object()
        serializer = RevertSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        snapshot = LabSnapshot.objects.filter(pk=serializer.validated_data["snapshot"]).first()
        if snapshot is None:
            raise DjangoValidationError({"snapshot": "No snapshot with that id."})
        return _accepted(request, services.lab_revert(lab=lab, actor=request.user, snapshot=snapshot))

    @extend_schema(
        summary="Extend the lab's lease",
        description=(
            "One more lease (the course quota's `lease_hours`) for a running lab, as often as `lease_extensions` "
            "allows. Answers the lab with its new `expires_at`; 403 with the limit's words when no extension is "
            "left; 400 when the lab is not running or the course has no leases."
        ),
        request=None,
        responses={200: LabSerializer, **LAB_ERRORS},
    )
    @action(detail=True, methods=["post"])
    def extend(self, request: Request, pk: str | None = None) -> Response:
        lab = services.lab_extend_lease(lab=self.get_object(), actor=request.user)
        return Response(LabSerializer(lab, context=self.get_serializer_context()).data)

    @extend_schema(
        summary="Reset the lab to its baseline",
        description="Back to how the lab was handed out; rebuilt from the template when the baseline is gone.",
        request=None,
        responses={202: OperationSerializer, **LAB_ERRORS},
    )
    @action(detail=True, methods=["post"])
    def reset(self, request: Request, pk: str | None = None) -> Response:
        return _accepted(request, services.lab_reset(lab=self.get_object(), actor=request.user))

    @extend_schema(
        summary="Clone the lab",
        description=(
            "A new lab for the same student from this lab's current state (counts against labs per student and "
            "the class's totals). Answers the `clone` operation, whose `lab` is the new lab; this lab is busy "
            "until it ends."
        ),
        request=None,
        responses={202: OperationSerializer, **LAB_ERRORS},
    )
    @action(detail=True, methods=["post"])
    def clone(self, request: Request, pk: str | None = None) -> Response:
        return _accepted(request, services.lab_clone(lab=self.get_object(), actor=request.user))

    @extend_schema(
        summary="Power the lab or one of its VMs on, off or reset",
        description=(
            "Without `vm`, the whole lab (on: in boot order). Off shuts the guests down, then powers off. Powering "
            "a lab on needs a running slot and lab hours."
        ),
        request=PowerSerializer,
        responses={202: OperationSerializer, **LAB_ERRORS},
    )
    @action(detail=True, methods=["post"])
    def power(self, request: Request, pk: str | None = None) -> Response:
        lab = self.get_object()
        serializer = PowerSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        vm = None
        if serializer.validated_data.get("vm") is not None:
            vm = LabVM.objects.filter(pk=serializer.validated_data["vm"]).first()
            if vm is None:
                raise DjangoValidationError({"vm": "No VM with that id."})
        return _accepted(
            request, services.lab_power(lab=lab, actor=request.user, action=serializer.validated_data["action"], vm=vm)
        )

    @extend_schema(
        summary="Open a VM's console",
        description=(
            "Opens a console session for one powered-on VM of the lab (docs/console.md): `control` for whoever "
            "may act on the lab, `observe` (read-only) for the course's instructors and admins. Answers 201 "
            "with `websocket_path`: connect there once, within `connect_within_seconds`, from the same origin "
            "with the WebSocket subprotocol `binary`; the portal relays RFB (VNC) between that socket and the "
            "VM's ESXi host. No vCenter ticket or host address is ever returned. 400 in words for a VM that is "
            "off or a lab not ready; 403 past the limits of open consoles."
        ),
        parameters=[OpenApiParameter("vm_id", int, OpenApiParameter.PATH)],
        request=ConsoleOpenSerializer,
        responses={
            201: ConsoleOpenedSerializer,
            **errors(400, 403),
            404: OpenApiResponse(ErrorSerializer, description="No such lab or VM."),
        },
    )
    @action(detail=True, methods=["post"], url_path=r"vms/(?P<vm_id>\d+)/console")
    def console(self, request: Request, pk: str | None = None, vm_id: str | None = None) -> Response:
        lab = self.get_object()
        vm = lab.vms.filter(pk=vm_id).first()
        if vm is None:
            raise Http404("No VM with that id in this lab.")
        serializer = ConsoleOpenSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        session = console.console_open(lab=lab, vm=vm, actor=request.user, mode=serializer.validated_data["mode"])
        return Response(ConsoleOpenedSerializer(session).data, status=status.HTTP_201_CREATED)


@extend_schema_view(
    list=extend_schema(
        summary="Console sessions",
        description="Yours; an instructor's, those on the labs of their courses; admins all.",
        responses={200: ConsoleSessionSerializer(many=True), **errors(403)},
    ),
    retrieve=extend_schema(summary="A console session", responses={200: ConsoleSessionSerializer, **errors(403, 404)}),
)
class ConsoleSessionViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Console sessions, as labs.selectors.console_session_list lets each person see them."""

    serializer_class = ConsoleSessionSerializer
    lookup_value_regex = r"\d+"

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # schema generation has no user
            return ConsoleSession.objects.none()
        return selectors.console_session_list(user=self.request.user)

    @extend_schema(
        summary="Close a console session",
        description=(
            "Its own person, the course's instructors and admins. An open console is closed at once (code 4000, "
            "the reason names who closed it); one that was never connected is closed; a closed one stays so."
        ),
        request=None,
        responses={200: ConsoleSessionSerializer, **errors(403, 404)},
    )
    @action(detail=True, methods=["post"])
    def close(self, request: Request, pk: str | None = None) -> Response:
        session = console.console_close(session=self.get_object(), actor=request.user)
        return Response(ConsoleSessionSerializer(session).data)


# A whole class: provision, and actions on a selection of labs


def _course(request: Request, course_id: int) -> Course:
    """A course the caller may see, else 404 (the services answer 403 to those who may not act)."""
    course = course_selectors.course_list(user=request.user).filter(pk=course_id).first()
    if course is None:
        raise Http404("No course with that id.")
    return course


@extend_schema(
    tags=["courses"],
    summary="Provision the class: start a lab for every student who has none",
    description=(
        "The course's instructors and admins. Each student's lab is started as if they had clicked Start (the "
        "same quota checks); those who get none are listed in `skipped` with the reason in words. Without "
        "`students`, every enrolled student."
    ),
    request=ProvisionSerializer,
    responses={202: ProvisionResultSerializer, **errors(400, 403, 404)},
)
@api_view(["POST"])
def course_provision(request: Request, course_id: int) -> Response:
    course = _course(request, course_id)
    serializer = ProvisionSerializer(data=request.data)
    serializer.is_valid(raise_exception=True)
    names = serializer.validated_data.get("students")
    students = None if names is None else User.objects.filter(username__in=names)
    result = services.course_provision(course=course, actor=request.user, students=students)
    answered = {operation.lab.student.username for operation in result.started} | set(result.skipped)
    for name in names or []:
        if name not in answered:
            result.skipped[name] = f"{name} is not enrolled in {course.code}."
    return Response(
        ProvisionResultSerializer(result, context={"request": request}).data, status=status.HTTP_202_ACCEPTED
    )


@extend_schema(
    tags=["courses"],
    summary="Power off, reset or delete a selection of a course's labs",
    description=(
        "The course's instructors and admins. Each lab goes through its own service, as if its button were "
        "clicked: one busy or refused lab does not stop the others. Answers 202 with one result per lab."
    ),
    request=BulkSerializer,
    responses={202: BulkResponseSerializer, **errors(400, 403, 404)},
)
@api_view(["POST"])
def course_labs_bulk(request: Request, course_id: int) -> Response:
    course = _course(request, course_id)
    if not lab_permissions.can_provision_class(request.user, course):
        raise PermissionDenied("Only this course's instructors can act on its labs together.")
    serializer = BulkSerializer(data=request.data)
    serializer.is_valid(raise_exception=True)
    outcomes = services.class_labs_apply(
        course=course,
        lab_ids=serializer.validated_data["labs"],
        action=serializer.validated_data["action"],
        actor=request.user,
    )
    results = [
        {
            "lab": outcome.lab_id,
            "status": status.HTTP_202_ACCEPTED if outcome.refusal is None else refusal_status(outcome.refusal),
            "operation": outcome.operation,
            "detail": "" if outcome.refusal is None else refusal_words(outcome.refusal),
        }
        for outcome in outcomes
    ]
    return Response(
        BulkResponseSerializer({"results": results}, context={"request": request}).data, status=status.HTTP_202_ACCEPTED
    )
