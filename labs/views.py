"""Pages of the labs app: thin; services decide, selectors read.

Every refusal of a service (PermissionDenied, QuotaExceeded, ValidationError, Conflict,
a vCenter error) is shown in words as a message, never as an error page.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable
from urllib.parse import unquote

from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Count, Q
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_POST

from core import roles
from core.errors import Conflict, refusal_words
from core.web import add_errors, forbidden, refusal_message
from courses import permissions as course_permissions
from courses import usage
from courses.models import Course, LabTemplate, VCenterEndpoint
from labs import console, forms, permissions, pools, selectors, services, sessions, vsphere
from labs.models import ConsoleSession, Lab, LabSnapshot, LabVM, Operation, WarmPool

logger = logging.getLogger(__name__)


@login_required
@require_POST
def endpoint_reconcile(request: HttpRequest, endpoint_id: int) -> HttpResponse:
    endpoint = get_object_or_404(VCenterEndpoint, pk=endpoint_id)
    try:
        operation = services.endpoint_reconcile_start(endpoint=endpoint, actor=request.user)
    except (PermissionDenied, Conflict) as refusal:
        messages.error(request, refusal_message(request, refusal))
        return redirect("home")
    messages.success(request, f"Comparing {endpoint.name} with Nestlab's records…")
    return redirect("labs:operation-detail", operation.pk)


@login_required
@require_POST
def endpoint_check(request: HttpRequest, endpoint_id: int) -> HttpResponse:
    endpoint = get_object_or_404(VCenterEndpoint, pk=endpoint_id)
    try:
        operation = services.endpoint_check_start(endpoint=endpoint, actor=request.user)
    except PermissionDenied as refusal:
        messages.error(request, refusal_message(request, refusal))
        return redirect("home")
    messages.success(request, f"Checking {endpoint.name}…")
    return redirect("labs:operation-detail", operation.pk)


@login_required
def operation_detail(request: HttpRequest, operation_id: int) -> HttpResponse:
    operation = get_object_or_404(
        selectors.operation_list(user=request.user).select_related("template_version__template"), pk=operation_id
    )
    # A lab's student reads why it failed without vCenter's details, nor the vCenter's name.
    detail = operation.lab_id is None or permissions.sees_failure_detail(request.user, operation.lab.course)
    return render(request, "labs/operation_detail.html", {"operation": operation, "failure_detail": detail})


@login_required
@require_POST
def template_publish(request: HttpRequest, template_id: int) -> HttpResponse:
    """Freeze the draft into a new version and check it in vCenter; watch it on the operation page."""
    template = get_object_or_404(LabTemplate, pk=template_id)
    try:
        operation = services.template_publish(template=template, actor=request.user)
    except PermissionDenied as refusal:
        messages.error(request, refusal_message(request, refusal))
    except ValidationError as error:
        messages.error(request, "Not published: " + " ".join(error.messages))
    else:
        messages.success(
            request, f"Publishing {template.name} v{operation.template_version.number}: checking its VMs in vCenter…"
        )
        return redirect("labs:operation-detail", operation.pk)
    return redirect("courses:template-detail", template.pk)


@login_required
def template_prepare(request: HttpRequest, template_id: int) -> HttpResponse:
    """GET: what preparing the source VMs would change, read from vCenter, to confirm. POST (with
    ``confirmed``): start it and watch it on the operation page."""
    template = get_object_or_404(LabTemplate, pk=template_id)
    back = redirect("courses:template-detail", template.pk)
    if request.method == "POST" and request.POST.get("confirmed"):
        try:
            operation = services.template_prepare(template=template, actor=request.user)
        except PermissionDenied as refusal:
            messages.error(request, refusal_message(request, refusal))
        except (ValidationError, Conflict) as error:
            messages.error(request, "Not prepared: " + " ".join(_messages_of(error)))
        else:
            messages.success(request, f"Preparing the VMs of {template.name}…")
            return redirect("labs:operation-detail", operation.pk)
        return back
    try:
        plan = selectors.template_prepare_plan(template=template, actor=request.user)
    except PermissionDenied as refusal:
        messages.error(request, refusal_message(request, refusal))
        return back
    except vsphere.VSphereError as error:
        messages.error(request, f"Could not read the VMs from {template.endpoint.name}: {error}")
        return back
    context = {
        "template": template,
        "plan": plan,
        "changes": sum(len(row["changes"]) for row in plan),
        "problems": sum(1 for row in plan if row["problem"]),
    }
    return render(request, "labs/template_prepare.html", context)


def _messages_of(error: Exception) -> list[str]:
    return list(getattr(error, "messages", None) or [str(error)])


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
        return _picker_error(refusal_message(request, refusal), 403)
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
        return _picker_error(refusal_message(request, refusal), 403)
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


# Student labs: the lab page and the buttons on it. Each button posts to a view that calls
# the service and goes back (to ``next`` when it is a page of this site) with a message.

REFUSALS = (PermissionDenied, ValidationError, Conflict, vsphere.VSphereError)
RECENT_OPERATIONS = 6
# Words for the states a lab does not leave (the others show in the badge and the operation).
STATE_WORDS = {
    Lab.State.DELETED: "Deleted: its VMs and networks are gone from vCenter.",
    Lab.State.EXPIRED: "Expired: the course's labs were cleaned up.",
}
FINISHED_STATES = frozenset({Lab.State.DELETING, Lab.State.DELETED, Lab.State.EXPIRED})


def _lab_or_404(request: HttpRequest, lab_id: int) -> Lab:
    """A lab the person may see (with ``active_operation``); other people's labs do not exist for them."""
    try:
        return selectors.lab_detail(lab_id=lab_id, user=request.user)
    except Lab.DoesNotExist as missing:
        raise Http404("No such lab.") from missing


def _lab_url(lab: Lab) -> str:
    return reverse("labs:lab-detail", args=[lab.pk])


def _next_url(request: HttpRequest, fallback: str) -> str:
    """Where the form came from (``next``), when it is this site; else ``fallback``."""
    target = request.POST.get("next", "")
    if target and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return fallback


def _back(request: HttpRequest, fallback: str) -> HttpResponse:
    return redirect(_next_url(request, fallback))


def _ask_first(
    request: HttpRequest, lab: Lab, *, question: str, consequence: str, button: str, fields: dict | None = None
) -> HttpResponse | None:
    """None when this POST was confirmed; otherwise the page that asks, whose button posts again
    with ``confirmed``. The site's script asks in a dialog and sends ``confirmed`` itself
    (templates/labs/_action.html); this page is the question without JavaScript."""
    if request.POST.get("confirmed"):
        return None
    context = {
        "lab": lab,
        "question": question,
        "consequence": consequence,
        "button": button,
        "fields": fields or {},
        "next": _next_url(request, _lab_url(lab)),
    }
    return render(request, "labs/lab_confirm.html", context)


def _lab_context(request: HttpRequest, lab: Lab) -> dict:
    """What the lab page and its live fragments (snapshot tree, history) need."""
    running = lab.active_operation
    is_admin = roles.is_admin(request.user)
    # A student removed from the course still reads their lab, without its buttons.
    read_only = permissions.is_removed_owner(request.user, lab)
    return {
        "lab": lab,
        "console_presence": console.presence_words(console.console_presence(lab)),
        "actionable": lab.state not in FINISHED_STATES and not read_only,
        # Deleted or expired: its VMs are shown as what they were, not with a live power state.
        "gone": lab.state in (Lab.State.DELETED, Lab.State.EXPIRED),
        "read_only": read_only,
        "running": running,
        "busy": running is not None,
        "busy_reason": running.busy_words(lab.pk) if running else "",
        "is_admin": is_admin,
        # Why it failed in vCenter's words for staff; its student reads words without them.
        "failure_detail": permissions.sees_failure_detail(request.user, lab.course),
        # As services.operation_cancel allows; the live layer shows the button by the same rule.
        "can_cancel": running is not None and permissions.can_cancel_operation(request.user, running),
        "snapshot_tree": selectors.snapshot_tree(lab),
        "operations": list(lab.operations.select_related("actor")[:RECENT_OPERATIONS]),
    }


def _lab_page(request: HttpRequest, lab: Lab, *, snapshot_form: forms.SnapshotForm | None = None) -> HttpResponse:
    course = lab.course
    own_labs = (
        Lab.objects.filter(course=course, student=lab.student)
        .exclude(state=Lab.State.DELETED)
        .select_related("course", "student", "source_lab__course", "source_lab__student")
    )
    bars = usage.student_usage_bars(course, lab.student)
    context = {
        **_lab_context(request, lab),
        "course": course,
        "is_own": lab.student_id == request.user.pk,
        "can_manage": course_permissions.can_manage_course(request.user, course),
        # The same rules the services apply, so the page offers only what would be accepted.
        "can_power_on": permissions.can_power_on_lab(request.user, lab),
        "state_words": STATE_WORDS.get(lab.state, ""),
        "vms": list(lab.vms.all()),
        "snapshots_taken": sum(1 for snapshot in lab.snapshots.all() if not snapshot.is_baseline),
        "snapshot_limit": next(bar.limit for bar in bars if bar.name == "snapshots_per_lab"),
        # The same numbers the usage bars show: at the limit, Clone says so instead of failing after the click.
        "labs_bar": next(bar for bar in bars if bar.name == "labs_per_student"),
        "snapshot_form": snapshot_form or forms.SnapshotForm(),
        # The version's copy, rendered once when its draft was saved (docs/security.md, finding 4).
        "manual_html": lab.template_version.manual_markup,
        "bars": bars,
        "own_labs": list(own_labs),
        **guide_context(request, lab),
    }
    return render(request, "labs/lab_detail.html", context)


@login_required
@require_GET
def lab_detail(request: HttpRequest, lab_id: int) -> HttpResponse:
    return _lab_page(request, _lab_or_404(request, lab_id))


LAB_FRAGMENTS = {
    "snapshots": "labs/_snapshot_box.html",
    "history": "labs/_operation_history.html",
    "guide": "labs/_guide_panel.html",
}


@login_required
@require_GET
def lab_fragment(request: HttpRequest, lab_id: int, fragment: str) -> HttpResponse:
    """A part of the lab page, for the live layer to swap in when it changed (static/js/live.js)."""
    if fragment not in LAB_FRAGMENTS:
        raise Http404("No such part of the page.")
    lab = _lab_or_404(request, lab_id)
    if fragment == "guide":
        return render(request, LAB_FRAGMENTS[fragment], guide_context(request, lab))
    return render(request, LAB_FRAGMENTS[fragment], _lab_context(request, lab))


def _shown_step(request: HttpRequest, steps: list) -> int | None:
    """``?step=N``: the step someone other than the lab's student reads (their place is not kept)."""
    try:
        number = int(request.GET.get("step", ""))
    except ValueError:
        return None
    return number if 1 <= number <= len(steps) else None


def guide_context(request: HttpRequest, lab: Lab, **extra) -> dict:
    """What the guide panel needs (templates/labs/_guide_panel.html): the student's view of the
    guide (labs.selectors.lab_guide: never an answer or a command), the step shown, whether this
    person works the lab (answers questions, moves the kept place) and the operation running."""
    if not (lab.template_version.guide or {}).get("steps"):
        return {"lab": lab, "guide": None, **extra}
    guide = selectors.lab_guide(lab)
    is_own = lab.student_id == request.user.pk
    typed = extra.pop("typed_answers", {})
    for item in guide["steps"]:
        for check in item["checks"]:
            # What the question's box shows: what was just typed (kept on a refusal), else the last answer.
            check["value"] = typed.get(check["key"], (check["result"] or {}).get("answer", ""))
    # The step a form just acted on stays in view (its result or refusal is about it).
    step_key = extra.pop("step_key", None)
    acted_on = next((item["number"] for item in guide["steps"] if item["key"] == step_key), None)
    shown = acted_on or (None if is_own else _shown_step(request, guide["steps"])) or guide["position"]
    fragment_url = reverse("labs:lab-fragment", args=[lab.pk, "guide"])
    return {
        "lab": lab,
        "guide": guide,
        "step": guide["steps"][shown - 1],
        "shown": shown,
        "step_count": len(guide["steps"]),
        "guide_is_own": is_own,
        "guide_actionable": lab.state not in FINISHED_STATES and not permissions.is_removed_owner(request.user, lab),
        "guide_fragment_url": fragment_url if is_own else f"{fragment_url}?step={shown}",
        "running": lab.active_operation,
        **extra,
    }


@login_required
@require_POST
def lab_start(request: HttpRequest, course_id: int) -> HttpResponse:
    """A student starts their own lab in a course."""
    course = get_object_or_404(Course, pk=course_id)
    if not course_permissions.can_view_course(request.user, course):
        raise Http404("No such course.")
    try:
        operation = services.lab_start(course=course, student=request.user, actor=request.user)
    except REFUSALS as refusal:
        messages.error(request, f"Your lab did not start. {refusal_message(request, refusal)}")
        return _back(request, reverse("home"))
    messages.success(request, f"Your lab {operation.lab.name} is being built. It is ready when every VM is on.")
    return redirect("labs:lab-detail", operation.lab_id)


def _act(request: HttpRequest, lab: Lab, start: Callable[[], Operation], started: str, refused: str) -> HttpResponse:
    """Call a service; say what started or, in words, why not; go back."""
    try:
        start()
    except REFUSALS as refusal:
        messages.error(request, f"{refused} {refusal_message(request, refusal)}")
    else:
        messages.success(request, started)
    return _back(request, _lab_url(lab))


@login_required
@require_GET
def course_lab(request: HttpRequest, course_id: int) -> HttpResponse:
    """A student's way into a course (an LMS link lands here): their lab in it if they have one,
    else the course page, where its Start button is."""
    lab = selectors.lab_list(user=request.user, course=course_id).filter(student=request.user).order_by("-pk").first()
    if lab is not None:
        return redirect("labs:lab-detail", lab.pk)
    return redirect("courses:course-detail", course_id)


@login_required
@require_POST
def lab_snapshot_create(request: HttpRequest, lab_id: int) -> HttpResponse:
    lab = _lab_or_404(request, lab_id)
    form = forms.SnapshotForm(request.POST)
    if form.is_valid():
        name = form.cleaned_data["name"]
        try:
            services.lab_snapshot_create(lab=lab, actor=request.user, **form.cleaned_data)
        except ValidationError as error:
            add_errors(form, error)
        except REFUSALS as refusal:
            messages.error(request, f"No snapshot was taken. {refusal_message(request, refusal)}")
            return _back(request, _lab_url(lab))
        else:
            messages.success(request, f"Taking snapshot '{name}' of every VM of {lab.name} together.")
            return _back(request, _lab_url(lab))
    messages.error(request, "No snapshot was taken: see the snapshot form below.")
    return _lab_page(request, lab, snapshot_form=form)


def _snapshot_or_404(lab: Lab, snapshot_id: int) -> LabSnapshot:
    return get_object_or_404(LabSnapshot, pk=snapshot_id, lab=lab)


@login_required
@require_POST
def lab_revert(request: HttpRequest, lab_id: int, snapshot_id: int) -> HttpResponse:
    lab = _lab_or_404(request, lab_id)
    snapshot = _snapshot_or_404(lab, snapshot_id)
    return _act(
        request,
        lab,
        lambda: services.lab_revert(lab=lab, actor=request.user, snapshot=snapshot),
        f"Reverting every VM of {lab.name} to '{snapshot.name}'.",
        "Not reverted.",
    )


@login_required
@require_POST
def lab_snapshot_delete(request: HttpRequest, lab_id: int, snapshot_id: int) -> HttpResponse:
    lab = _lab_or_404(request, lab_id)
    snapshot = _snapshot_or_404(lab, snapshot_id)
    return _act(
        request,
        lab,
        lambda: services.lab_snapshot_delete(snapshot=snapshot, actor=request.user),
        f"Deleting snapshot '{snapshot.name}'; the snapshots taken after it stay.",
        "The snapshot was not deleted.",
    )


@login_required
@require_POST
def lab_extend(request: HttpRequest, lab_id: int) -> HttpResponse:
    lab = _lab_or_404(request, lab_id)
    try:
        extended = services.lab_extend_lease(lab=lab, actor=request.user)
    except REFUSALS as refusal:
        messages.error(request, f"The lease was not extended. {refusal_message(request, refusal)}")
    else:
        until = timezone.localtime(extended.expires_at)
        messages.success(request, f"{lab.name} now runs until {until:%H:%M} ({until:%d %b}).")
    return _back(request, _lab_url(lab))


@login_required
@require_POST
def lab_reset(request: HttpRequest, lab_id: int) -> HttpResponse:
    lab = _lab_or_404(request, lab_id)
    asked = _ask_first(
        request,
        lab,
        question=f"Reset {lab.name}?",
        consequence="Every VM goes back to how the lab was handed out. Changes made since are lost "
        "unless they are kept in a snapshot; the snapshots stay.",
        button="Reset the lab",
    )
    return asked or _act(
        request,
        lab,
        lambda: services.lab_reset(lab=lab, actor=request.user),
        f"Resetting {lab.name} to how it was handed out.",
        "Not reset.",
    )


@login_required
@require_POST
def lab_clone(request: HttpRequest, lab_id: int) -> HttpResponse:
    lab = _lab_or_404(request, lab_id)
    return _act(
        request,
        lab,
        lambda: services.lab_clone(lab=lab, actor=request.user),
        f"Copying {lab.name} as it is now into a new lab; it appears under 'Labs in this course'.",
        "Not cloned.",
    )


POWER_WORDS = {"on": "Powering on", "off": "Shutting down", "reset": "Resetting"}


def _power(request: HttpRequest, lab: Lab, vm: LabVM | None) -> HttpResponse:
    form = forms.PowerForm(request.POST)
    if not form.is_valid():
        messages.error(request, " ".join(form.errors["action"]))
        return _back(request, _lab_url(lab))
    action = form.cleaned_data["action"]
    target = vm.role if vm is not None else f"every VM of {lab.name}"
    if action == "reset":
        asked = _ask_first(
            request,
            lab,
            question=f"Reset {target}?",
            consequence="Like pressing the reset button: what is not saved in the guest is lost.",
            button=f"Reset {target}",
            fields={"action": action},
        )
        if asked:
            return asked
    return _act(
        request,
        lab,
        lambda: services.lab_power(lab=lab, actor=request.user, action=action, vm=vm),
        f"{POWER_WORDS[action]} {target}.",
        f"{POWER_WORDS[action]} {target} did not start.",
    )


@login_required
@require_POST
def lab_power(request: HttpRequest, lab_id: int) -> HttpResponse:
    return _power(request, _lab_or_404(request, lab_id), None)


@login_required
@require_POST
def lab_vm_power(request: HttpRequest, lab_id: int, vm_id: int) -> HttpResponse:
    lab = _lab_or_404(request, lab_id)
    return _power(request, lab, get_object_or_404(LabVM, pk=vm_id, lab=lab))


@login_required
@require_POST
def lab_cancel(request: HttpRequest, lab_id: int) -> HttpResponse:
    """Cancel the operation keeping the lab busy (``operation`` names the one the page showed):
    a queued one ends at once, a running one stops after its current step."""
    lab = _lab_or_404(request, lab_id)
    running = lab.active_operation
    if running is None or request.POST.get("operation", str(running.pk)) != str(running.pk):
        messages.info(request, "Nothing to cancel: that operation already ended.")
        return _back(request, _lab_url(lab))
    doing = running.get_kind_display().lower()
    try:
        cancelled = services.operation_cancel(operation=running, actor=request.user)
    except REFUSALS as refusal:
        messages.error(request, f"Not cancelled. {refusal_message(request, refusal)}")
    else:
        if cancelled.state == Operation.State.CANCELLED:
            messages.success(request, f"Cancelled {doing}: it had not started.")
        else:
            messages.success(request, f"Cancelling {doing}: it stops after its current step.")
    return _back(request, _lab_url(lab))


@login_required
@require_POST
def lab_delete(request: HttpRequest, lab_id: int) -> HttpResponse:
    lab = _lab_or_404(request, lab_id)
    asked = _ask_first(
        request,
        lab,
        question=f"Delete {lab.name}?",
        consequence="Its VMs, networks and snapshots are removed from vCenter. This cannot be undone.",
        button="Delete the lab",
    )
    return asked or _act(
        request,
        lab,
        lambda: services.lab_delete(lab=lab, actor=request.user),
        f"Deleting {lab.name}: its VMs, network, pool and folder are removed from vCenter.",
        "Not deleted.",
    )


@login_required
def lab_vm_console(request: HttpRequest, lab_id: int, vm_id: int) -> HttpResponse:
    """The console page of one VM (docs/console.md): the page opens a session through the API
    route (``labs.console.console_open``, the same service) and noVNC connects to the relay.
    ``?mode=observe``: read-only, for the course's instructors and admins."""
    lab = _lab_or_404(request, lab_id)
    vm = get_object_or_404(LabVM, pk=vm_id, lab=lab)
    observe = request.GET.get("mode") == ConsoleSession.Mode.OBSERVE
    may_control = console.may_control(request.user, lab)
    if not (console.may_observe(request.user, lab) if observe else may_control):
        if permissions.is_removed_owner(request.user, lab):
            messages.error(request, f"You are no longer enrolled in {lab.course.code}: its consoles are closed to you.")
            return redirect(_lab_url(lab))
        raise PermissionDenied("Only the course's instructors and admins observe a student's console.")
    return render(
        request,
        "labs/console.html",
        {
            "lab": lab,
            "vm": vm,
            "vms": lab.vms.all(),
            "mode": ConsoleSession.Mode.OBSERVE if observe else ConsoleSession.Mode.CONTROL,
            "may_control": may_control,
            "can_power_on": may_control and permissions.can_power_on_lab(request.user, lab),
            "type_text_limit": TYPE_TEXT_LIMIT,
            "console_presence": console.presence_words(console.console_presence(lab)),
            **guide_context(request, lab),
        },
    )


# Characters "Type text" sends as keystrokes at most (the 4 KB of clipboard).
TYPE_TEXT_LIMIT = 4096


# The instructor's class table: every student's labs, with actions per lab and on a selection.


def _class_course_or_404(request: HttpRequest, course_id: int) -> Course:
    course = get_object_or_404(Course.objects.select_related("template_version__template"), pk=course_id)
    if not course_permissions.can_view_course(request.user, course):
        raise Http404("No such course.")
    if not permissions.can_provision_class(request.user, course):
        raise PermissionDenied("Only this course's instructors and admins see the class's labs.")
    return course


def _class_labs(request: HttpRequest, course: Course):
    return (
        selectors.lab_list(user=request.user, course=course.pk)
        .annotate(vm_count=Count("vms"), vms_on=Count("vms", filter=Q(vms__power_state=LabVM.PowerState.ON)))
        .order_by("student__username", "number")
    )


def _class_rows(request: HttpRequest, course: Course) -> dict:
    """One row per lab, and one for each student without a lab; what the table and its live fragment need."""
    labs = list(_class_labs(request, course))
    running = selectors.lab_active_operations(labs)
    by_student: dict[int, list[Lab]] = defaultdict(list)
    # The first running VM of each lab: the class table's Observe opens its console (read-only).
    first_on: dict[int, LabVM] = {}
    for vm in LabVM.objects.filter(lab__in=labs, power_state=LabVM.POWERED_ON).order_by("boot_order", "role"):
        first_on.setdefault(vm.lab_id, vm)
    for lab in labs:
        lab.running_operation = running.get(lab.pk)
        lab.first_running_vm = first_on.get(lab.pk) if lab.state in console.CONSOLE_LAB_STATES else None
        by_student[lab.student_id].append(lab)
    rows = []
    for enrollment in course.enrollments.select_related("student").order_by("student__username"):
        student_labs = by_student.pop(enrollment.student_id, [])
        rows.extend({"student": enrollment.student, "lab": lab} for lab in student_labs)
        if not student_labs:
            rows.append({"student": enrollment.student, "lab": None})
    for student_labs in by_student.values():  # labs of students no longer enrolled still use vCenter
        rows.extend({"student": lab.student, "lab": lab, "unenrolled": True} for lab in student_labs)
    return {
        "course": course,
        "rows": rows,
        "labs": labs,
        "select_all": request.GET.get("select") == "all",
    }


def pool_context(request: HttpRequest, course: Course, *, form: forms.PoolForm | None = None, said: str = "") -> dict:
    """The class page's warm-pool panel (labs/pool_views.py renders it alone)."""
    pool = WarmPool.objects.filter(course=course).first()
    return {
        "course": course,
        "pool": pools.pool_get(course=course, actor=request.user),
        "pool_form": form or forms.PoolForm(instance=pool or WarmPool(course=course)),
        "pool_said": said,
    }


@login_required
@require_GET
def class_labs(request: HttpRequest, course_id: int) -> HttpResponse:
    try:
        course = _class_course_or_404(request, course_id)
    except PermissionDenied as refusal:
        return forbidden(request, refusal)
    context = _class_rows(request, course)
    rows, labs = context["rows"], context["labs"]
    context.update(
        {
            "lab_count": len(labs),
            "running_count": sum(1 for lab in labs if lab.is_running),
            "busy_count": sum(1 for lab in labs if lab.running_operation is not None),
            "without_lab": sum(1 for row in rows if row["lab"] is None),
            "student_count": len({row["student"].pk for row in rows if not row.get("unenrolled")}),
            "bars": usage.usage_bars(course),
            "actions": forms.CLASS_ACTIONS,
            "preparations": sessions.course_preparations(course=course),
        }
    )
    context.update(pool_context(request, course))
    return render(request, "labs/class_labs.html", context)


@login_required
@require_GET
def class_consoles(request: HttpRequest, course_id: int) -> HttpResponse:
    """Every lab's console of one VM role (``?role=router``), small, read-only and live: the
    instructor watching the class. Each tile is an observe session (docs/console.md)."""
    try:
        course = _class_course_or_404(request, course_id)
    except PermissionDenied as refusal:
        return forbidden(request, refusal)
    vms = (
        # Warm-pool labs are nobody's (and not on the class table): not a tile either.
        LabVM.objects.filter(lab__course=course, lab__state__in=console.CONSOLE_LAB_STATES, lab__student__isnull=False)
        .select_related("lab__student")
        .order_by("lab__student__username", "lab__number")
    )
    roles = sorted({vm.role for vm in vms})
    # Not "role": the page's header shows the person's role under that name.
    vm_role = request.GET.get("role") if request.GET.get("role") in roles else (roles[0] if roles else "")
    tiles = [{"lab": vm.lab, "vm": vm} for vm in vms if vm.role == vm_role]
    context = {"course": course, "roles": roles, "vm_role": vm_role, "tiles": tiles}
    return render(request, "labs/class_consoles.html", context)


@login_required
@require_GET
def class_table(request: HttpRequest, course_id: int) -> HttpResponse:
    """The class table alone, for the live layer to swap in when labs come or go."""
    try:
        course = _class_course_or_404(request, course_id)
    except PermissionDenied as refusal:
        return forbidden(request, refusal)
    return render(request, "labs/_class_table.html", _class_rows(request, course))


def _class_url(course: Course) -> str:
    return reverse("labs:class-labs", args=[course.pk])


def _provision(request: HttpRequest, course: Course, students: list | None) -> None:
    """Start labs and say who got one, and who did not and why (grouped by reason)."""
    try:
        result = services.course_provision(course=course, actor=request.user, students=students)
    except REFUSALS as refusal:
        messages.error(request, f"No lab was started. {refusal_message(request, refusal)}")
        return
    if result.started:
        names = ", ".join(operation.lab.student.username for operation in result.started)
        messages.success(
            request, f"Started {len(result.started)} lab{'s' if len(result.started) != 1 else ''}: {names}."
        )
    by_reason: dict[str, list[str]] = defaultdict(list)
    for username, reason in result.skipped.items():
        by_reason[reason].append(username)
    for reason, usernames in by_reason.items():
        level = messages.info if reason == "already has a lab" else messages.warning
        level(request, f"Skipped {', '.join(usernames)}: {reason.rstrip('.')}.")
    if not result.started and not result.skipped:
        messages.info(request, "Nobody to start a lab for: the class has no students yet.")


@login_required
def class_provision(request: HttpRequest, course_id: int) -> HttpResponse:
    """Provision the class: a lab for every enrolled student who has none. GET (or a POST
    without ``confirmed``) asks first, naming who would get one; the confirmed POST starts them."""
    try:
        course = _class_course_or_404(request, course_id)
    except PermissionDenied as refusal:
        return forbidden(request, refusal)
    if request.method == "POST" and request.POST.get("confirmed"):
        _provision(request, course, None)
        return redirect(_class_url(course))
    with_lab = Lab.objects.filter(course=course, state__in=Lab.ACTIVE_STATES, student__isnull=False).values_list(
        "student_id", flat=True
    )
    waiting = [
        enrollment.student
        for enrollment in course.enrollments.select_related("student").exclude(student_id__in=with_lab)
    ]
    return render(request, "labs/class_provision_confirm.html", {"course": course, "students": waiting})


# How the class table says what an action did, per action of ``services.BULK_ACTIONS``.
BULK_WORDS = {
    "power_off": ("Powering off", "powered off"),
    "reset": ("Resetting", "reset"),
    "delete": ("Deleting", "deleted"),
}


@login_required
@require_POST
def class_action(request: HttpRequest, course_id: int) -> HttpResponse:
    """An action on the selected rows: each lab through its own service, refusals collected in words."""
    try:
        course = _class_course_or_404(request, course_id)
    except PermissionDenied as refusal:
        return forbidden(request, refusal)
    labs = {lab.pk: lab for lab in _class_labs(request, course)}
    student_ids = list(course.enrollments.values_list("student_id", flat=True))
    form = forms.ClassActionForm(request.POST, lab_ids=list(labs), student_ids=student_ids)
    if not form.is_valid():
        for errors in form.errors.values():
            messages.error(request, " ".join(errors))
        return redirect(_class_url(course))
    action = form.cleaned_data["action"]
    selected = [labs[pk] for pk in form.cleaned_data["lab"]]
    if action == "provision":
        User = get_user_model()
        wanted = set(form.cleaned_data["student"]) | {lab.student_id for lab in selected}
        _provision(request, course, list(User.objects.filter(pk__in=wanted)))
        return redirect(_class_url(course))
    if not selected:
        messages.error(request, "Select the labs first: students without a lab can only be provisioned.")
        return redirect(_class_url(course))
    if action in forms.CONFIRMED_ACTIONS and not form.cleaned_data["confirmed"]:
        return render(
            request,
            "labs/class_confirm.html",
            {"course": course, "labs": selected, "action": action, "label": forms.CLASS_ACTIONS[action]},
        )
    doing, done = BULK_WORDS[action]
    started = []
    outcomes = services.class_labs_apply(
        course=course, lab_ids=[lab.pk for lab in selected], action=action, actor=request.user
    )
    for outcome in outcomes:  # the service recorded its refusals: only words here
        if outcome.refusal is not None:
            messages.error(request, f"{outcome.lab.name} was not {done}. {refusal_words(outcome.refusal)}")
        else:
            started.append(outcome.lab.name)
    if started:
        messages.success(
            request, f"{doing} {len(started)} lab{'s' if len(started) != 1 else ''}: {', '.join(started)}."
        )
    return redirect(_class_url(course))
