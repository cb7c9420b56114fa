"""Pages of the labs app: thin; services decide, selectors read."""

from __future__ import annotations

import logging
from urllib.parse import unquote

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_POST

from courses.models import LabTemplate, VCenterEndpoint
from labs import selectors, services, vsphere

logger = logging.getLogger(__name__)


@login_required
@require_POST
def endpoint_check(request: HttpRequest, endpoint_id: int) -> HttpResponse:
    endpoint = get_object_or_404(VCenterEndpoint, pk=endpoint_id)
    try:
        operation = services.endpoint_check_start(endpoint=endpoint, actor=request.user)
    except PermissionDenied as refusal:
        messages.error(request, str(refusal))
        return redirect("home")
    messages.success(request, f"Checking {endpoint.name}…")
    return redirect("labs:operation-detail", operation.pk)


@login_required
def operation_detail(request: HttpRequest, operation_id: int) -> HttpResponse:
    operation = get_object_or_404(
        selectors.operation_list(user=request.user).select_related("template_version__template"), pk=operation_id
    )
    return render(request, "labs/operation_detail.html", {"operation": operation})


@login_required
@require_POST
def template_publish(request: HttpRequest, template_id: int) -> HttpResponse:
    """Freeze the draft into a new version and check it in vCenter; watch it on the operation page."""
    template = get_object_or_404(LabTemplate, pk=template_id)
    try:
        operation = services.template_publish(template=template, actor=request.user)
    except PermissionDenied as refusal:
        messages.error(request, str(refusal))
    except ValidationError as error:
        messages.error(request, "Not published: " + " ".join(error.messages))
    else:
        messages.success(
            request, f"Publishing {template.name} v{operation.template_version.number}: checking its VMs in vCenter…"
        )
        return redirect("labs:operation-detail", operation.pk)
    return redirect("courses:template-detail", template.pk)


# The inventory picker's JSON: what the template page's picker (static/js/picker.js) browses.


def _picker_error(message: str, status: int) -> JsonResponse:
    return JsonResponse({"error": message}, status=status)


def _vsphere_status(error: vsphere.VSphereError) -> int:
    if isinstance(error, vsphere.NotFound):
        return 404
    if isinstance(error, vsphere.InvalidArgument):
        return 400
    if isinstance(error, vsphere.Unreachable):
        return 503
    return 502  # vCenter refused the stored login or failed: the portal's upstream, said in words (as the API)


def _breadcrumbs(root: str, path: str, datacenter: str) -> list[dict[str, str]]:
    crumbs = [{"name": f"{datacenter} (VMs and templates)", "path": root}]
    if path.startswith(root + "/"):
        walked = root
        for part in path[len(root) + 1 :].split("/"):
            walked = f"{walked}/{part}"
            crumbs.append({"name": unquote(part), "path": walked})
    elif path != root:
        crumbs.append({"name": path, "path": path})
    return crumbs


_KIND_ORDER = {vsphere.Kind.FOLDER: 0, vsphere.Kind.VAPP: 1, vsphere.Kind.VM: 2, vsphere.Kind.TEMPLATE: 2}


@login_required
@require_GET
def endpoint_inventory(request: HttpRequest, endpoint_id: int) -> JsonResponse:
    """``?path=`` a folder's children (default the datacenter's VM folder); ``&search=`` VMs by name below it."""
    endpoint = get_object_or_404(VCenterEndpoint, pk=endpoint_id)
    root = f"/{endpoint.datacenter}/vm"
    path = request.GET.get("path", "").strip() or root
    search = request.GET.get("search", "").strip()
    try:
        items = selectors.endpoint_inventory(endpoint=endpoint, user=request.user, path=path, search=search)
    except PermissionDenied as refusal:
        return _picker_error(str(refusal), 403)
    except vsphere.VSphereError as error:
        logger.info("picker: %s: %s", endpoint.name, error)
        return _picker_error(str(error), _vsphere_status(error))
    items = sorted(items, key=lambda item: (_KIND_ORDER.get(item.kind, 3), item.name.lower()))
    return JsonResponse(
        {
            "endpoint": endpoint.name,
            "path": path,
            "search": search,
            "breadcrumbs": _breadcrumbs(root, path, endpoint.datacenter),
            "items": [{"moref": item.moref, "name": item.name, "kind": item.kind, "path": item.path} for item in items],
        }
    )


@login_required
@require_GET
def endpoint_vm(request: HttpRequest, endpoint_id: int, moref: str) -> JsonResponse:
    """One VM's facts for the picker's form: sizes, nested HV and one row per network adapter."""
    endpoint = get_object_or_404(VCenterEndpoint, pk=endpoint_id)
    try:
        info = selectors.endpoint_vm(endpoint=endpoint, user=request.user, vm=moref)
    except PermissionDenied as refusal:
        return _picker_error(str(refusal), 403)
    except vsphere.VSphereError as error:
        logger.info("picker: %s: %s", endpoint.name, error)
        return _picker_error(str(error), _vsphere_status(error))
    return JsonResponse(
        {
            "moref": info.moref,
            "name": info.name,
            "path": info.path,
            "power_state": info.power_state,
            "is_template": info.is_template,
            "num_cpu": info.num_cpu,
            "memory_mb": info.memory_mb,
            "disk_gb": info.disk_gb,
            "nested_hv": info.nested_hv,
            "annotation": info.annotation,
            "nics": [
                {"label": f"Network adapter {index}", "network": nic.network, "mac_address": nic.mac_address}
                for index, nic in enumerate(info.nics, start=1)
            ],
        }
    )
