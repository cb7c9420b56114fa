"""Pages of the labs app: thin; services decide, selectors read."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from courses.models import VCenterEndpoint
from labs import selectors, services


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
    operation = get_object_or_404(selectors.operation_list(user=request.user), pk=operation_id)
    return render(request, "labs/operation_detail.html", {"operation": operation})
