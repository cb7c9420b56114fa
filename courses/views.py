"""Pages of the courses app: vCenter endpoints, people, templates, courses and rosters.

Thin: forms parse input, services decide and write, selectors read. A refusal
(PermissionDenied) or a rule (ValidationError) from a service is shown in words,
as a message or on the form, never as an error page.
"""

from __future__ import annotations

import dataclasses

from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST

from core import crypto
from core.markdown import render_markdown
from core.web import add_errors, forbidden, refusal_message
from courses import forms, permissions, selectors, services, usage
from courses.models import (
    MANUAL_MAX_CHARACTERS,
    Course,
    Enrollment,
    GuideImage,
    LabTemplate,
    TemplateNetwork,
    TemplateVM,
    VCenterEndpoint,
)

User = get_user_model()


def _back(url: str, anchor: str = "") -> HttpResponse:
    return redirect(f"{url}#{anchor}" if anchor else url)


# vCenter endpoints (admins)


@login_required
def endpoint_create(request: HttpRequest) -> HttpResponse:
    if not permissions.can_manage_endpoints(request.user):
        return forbidden(request, "Only admins can connect vCenters.")
    form = forms.EndpointForm(request.POST or None, creating=True)
    if request.method == "POST" and form.is_valid():
        try:
            endpoint = services.endpoint_create(actor=request.user, **form.cleaned_data)
        except PermissionDenied as refusal:
            return forbidden(request, refusal)
        except ValidationError as error:
            add_errors(form, error)
        else:
            messages.success(request, f"{endpoint.name} is connected. Check its connection to see that it answers.")
            return redirect("home")
    return render(request, "courses/endpoint_form.html", {"form": form, "endpoint": None})


@login_required
def endpoint_edit(request: HttpRequest, endpoint_id: int) -> HttpResponse:
    if not permissions.can_manage_endpoints(request.user):
        return forbidden(request, "Only admins can change vCenters.")
    endpoint = get_object_or_404(VCenterEndpoint, pk=endpoint_id)
    # The form works on its own copy, so a refused save leaves the page's endpoint as stored.
    form = forms.EndpointForm(request.POST or None, instance=VCenterEndpoint.objects.get(pk=endpoint.pk))
    if request.method == "POST" and form.is_valid():
        try:
            services.endpoint_update(endpoint=endpoint, actor=request.user, **form.cleaned_data)
        except PermissionDenied as refusal:
            return forbidden(request, refusal)
        except ValidationError as error:
            add_errors(form, error)
        else:
            messages.success(request, f"{endpoint.name} is saved.")
            return redirect("home")
    return render(request, "courses/endpoint_form.html", {"form": form, "endpoint": endpoint})


@login_required
@require_POST
def endpoint_delete(request: HttpRequest, endpoint_id: int) -> HttpResponse:
    endpoint = get_object_or_404(VCenterEndpoint, pk=endpoint_id)
    try:
        services.endpoint_delete(endpoint=endpoint, actor=request.user)
    except PermissionDenied as refusal:
        return forbidden(request, refusal)
    except ValidationError as error:
        messages.error(request, refusal_message(request, error))
        return redirect("courses:endpoint-edit", endpoint.pk)
    messages.success(request, f"{endpoint.name} is removed.")
    return redirect("home")


# Templates (instructors)


def _template_or_404(request: HttpRequest, template_id: int) -> LabTemplate:
    try:
        return selectors.template_detail(template_id=template_id, user=request.user)
    except LabTemplate.DoesNotExist as missing:
        raise Http404("No such template.") from missing


@login_required
def template_list(request: HttpRequest) -> HttpResponse:
    if not permissions.can_create_templates(request.user):
        return forbidden(request, "Lab templates are for instructors and admins.")
    templates = selectors.template_list(user=request.user)
    return render(request, "courses/template_list.html", {"templates": templates})


@login_required
def template_create(request: HttpRequest) -> HttpResponse:
    if not permissions.can_create_templates(request.user):
        return forbidden(request, "Only instructors and admins can build templates.")
    form = forms.TemplateCreateForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            template = services.template_create(
                actor=request.user,
                endpoint=data["endpoint"],
                name=data["name"],
                description=data["description"],
                linked_clones=data["clone_mode"],
                networks=data["networks"],
                extra_endpoints=list(data["extra_endpoints"]),
            )
        except PermissionDenied as refusal:
            return forbidden(request, refusal)
        except ValidationError as error:
            add_errors(form, error)
        else:
            messages.success(request, f"{template.name} is created. Now add its VMs from vCenter.")
            return _back(reverse("courses:template-detail", args=[template.pk]), "add-vm")
    return render(request, "courses/template_create.html", {"form": form})


def _template_page(request: HttpRequest, template: LabTemplate, *, status: int = 200, **overrides) -> HttpResponse:
    user = request.user
    vms = list(template.vms.all())
    versions = list(template.versions.prefetch_related("baselines__endpoint"))
    bound_vm_form = overrides.pop("vm_form", None)
    guide_forms = forms.guide_editor_forms(template, *overrides.pop("guide_bound", (None, None)))
    vm_rows = []
    for vm in vms:
        form = bound_vm_form if bound_vm_form is not None and bound_vm_form.vm_id == vm.pk else forms.vm_edit_form(vm)
        vm_rows.append((vm, form))
    context = {
        "template": template,
        "can_edit": permissions.can_edit_template(user, template),
        "hidden_error_words": selectors.HIDDEN_PUBLISH_ERROR,
        "unpublished": selectors.template_has_unpublished_changes(template),
        "latest_published": next((v for v in versions if v.is_published), None),
        "publishing": next((v for v in versions if v.state == v.State.PUBLISHING), None),
        "versions": versions,
        "next_number": max((v.number for v in versions), default=0) + 1,
        "vm_rows": vm_rows,
        "networks": list(template.networks.all()),
        "network_names": [network.name for network in template.networks.all()],
        "picked_morefs": [vm.source_moref for vm in vms],
        "manual_html": template.manual_markup,
        "details_form": forms.TemplateForm.for_template(template),
        "network_form": forms.NetworkForm(),
        "add_vm_form": forms.TemplateVMAddForm(template=template),
        **guide_forms,
        **overrides,
    }
    return render(request, "courses/template_detail.html", context, status=status)


@login_required
def template_detail(request: HttpRequest, template_id: int) -> HttpResponse:
    if not permissions.can_create_templates(request.user):
        return forbidden(request, "Lab templates are for instructors and admins.")
    template = _template_or_404(request, template_id)
    if request.method != "POST":
        return _template_page(request, template)
    form = forms.TemplateForm.for_template(template, request.POST)
    if form.is_valid():
        try:
            services.template_update(template=template, actor=request.user, **form.service_fields())
        except PermissionDenied as refusal:
            messages.error(request, refusal_message(request, refusal))
            return redirect("courses:template-detail", template.pk)
        except ValidationError as error:
            add_errors(form, error)
        else:
            messages.success(request, "Saved. Publish when you want courses to get these changes.")
            return redirect("courses:template-detail", template.pk)
    template = _template_or_404(request, template_id)
    return _template_page(request, template, status=400, details_form=form)


@login_required
@require_POST
def template_network_add(request: HttpRequest, template_id: int) -> HttpResponse:
    template = _template_or_404(request, template_id)
    form = forms.NetworkForm(request.POST)
    if form.is_valid():
        try:
            network = services.template_network_add(template=template, actor=request.user, **form.cleaned_data)
        except PermissionDenied as refusal:
            messages.error(request, refusal_message(request, refusal))
            return redirect("courses:template-detail", template.pk)
        except ValidationError as error:
            add_errors(form, error)
        else:
            messages.success(request, f"Network {network.name} is added.")
            return _back(reverse("courses:template-detail", args=[template.pk]), "networks")
    return _template_page(request, _template_or_404(request, template_id), network_form=form)


@login_required
@require_POST
def template_network_remove(request: HttpRequest, template_id: int, network_id: int) -> HttpResponse:
    template = _template_or_404(request, template_id)
    network = get_object_or_404(TemplateNetwork, pk=network_id, template=template)
    try:
        services.template_network_remove(network=network, actor=request.user)
    except (PermissionDenied, ValidationError) as error:
        messages.error(request, refusal_message(request, error))
    else:
        messages.success(request, f"Network {network.name} is removed.")
    return _back(reverse("courses:template-detail", args=[template.pk]), "networks")


@login_required
@require_POST
def template_vm_add(request: HttpRequest, template_id: int) -> HttpResponse:
    template = _template_or_404(request, template_id)
    form = forms.TemplateVMAddForm(request.POST, template=template)
    if form.is_valid():
        try:
            vm = services.template_vm_add(template=template, actor=request.user, **form.cleaned_data)
        except PermissionDenied as refusal:
            messages.error(request, refusal_message(request, refusal))
            return redirect("courses:template-detail", template.pk)
        except ValidationError as error:
            add_errors(form, error)
        else:
            messages.success(request, f"{vm.source_name} is in the template as {vm.role}.")
            return _back(reverse("courses:template-detail", args=[template.pk]), "add-vm")
    return _template_page(request, _template_or_404(request, template_id), add_vm_form=form)


@login_required
@require_POST
def template_vm_edit(request: HttpRequest, template_id: int, vm_id: int) -> HttpResponse:
    template = _template_or_404(request, template_id)
    vm = get_object_or_404(TemplateVM, pk=vm_id, template=template)
    form = forms.TemplateVMForm(request.POST, template=template, auto_id=f"vm{vm.pk}_%s")
    form.vm_id = vm.pk
    if form.is_valid():
        try:
            services.template_vm_update(vm=vm, actor=request.user, **form.cleaned_data)
        except PermissionDenied as refusal:
            messages.error(request, refusal_message(request, refusal))
            return redirect("courses:template-detail", template.pk)
        except ValidationError as error:
            add_errors(form, error)
        else:
            messages.success(request, f"{form.cleaned_data['role']} is saved.")
            return _back(reverse("courses:template-detail", args=[template.pk]), "vms")
    return _template_page(request, _template_or_404(request, template_id), vm_form=form, open_vm=vm.pk)


@login_required
@require_POST
def template_vm_remove(request: HttpRequest, template_id: int, vm_id: int) -> HttpResponse:
    template = _template_or_404(request, template_id)
    vm = get_object_or_404(TemplateVM, pk=vm_id, template=template)
    try:
        services.template_vm_remove(vm=vm, actor=request.user)
    except PermissionDenied as refusal:
        messages.error(request, refusal_message(request, refusal))
    else:
        messages.success(request, f"{vm.role} is removed from the template.")
    return _back(reverse("courses:template-detail", args=[template.pk]), "vms")


@login_required
@require_POST
def markdown_preview(request: HttpRequest) -> HttpResponse:
    """The manual editor's live preview: the same rendering students will see."""
    if not permissions.can_create_templates(request.user):
        return HttpResponse("Only instructors and admins write manuals.", status=403, content_type="text/plain")
    # "manual": the manual editor's own field, "body": a guide step's, as htmx sends them;
    # "text": a caller naming it so.
    text = next((request.POST[name] for name in ("manual", "body", "text") if name in request.POST), "")
    if len(text) > MANUAL_MAX_CHARACTERS:
        return HttpResponse(
            f"The manual is {len(text):,} characters long; at most {MANUAL_MAX_CHARACTERS:,} are allowed.",
            status=400,
            content_type="text/plain",
        )
    return HttpResponse(render_markdown(text) or '<p class="muted">No manual yet.</p>')


# Courses


def _course_or_404(request: HttpRequest, course_id: int) -> Course:
    """A course the person may see; others' courses do not exist for them."""
    course = get_object_or_404(Course.objects.select_related("template_version__template"), pk=course_id)
    if not permissions.can_view_course(request.user, course):
        raise Http404("No such course.")
    return course


STATE_ACTIONS = {
    Course.State.DRAFT: [(Course.State.OPEN, "Open the course"), (Course.State.ARCHIVED, "Archive")],
    Course.State.OPEN: [(Course.State.CLOSED, "Close the course")],
    Course.State.CLOSED: [(Course.State.OPEN, "Open again"), (Course.State.ARCHIVED, "Archive")],
    Course.State.ARCHIVED: [(Course.State.CLOSED, "Restore (closed)")],
}


def _course_page(request: HttpRequest, course: Course, *, status: int = 200, **overrides) -> HttpResponse:
    user = request.user
    manage = permissions.can_manage_course(user, course)
    template = course.template_version.template if course.template_version else None
    context = {
        "course": course,
        "can_manage": manage,
        "can_set_quota": permissions.can_set_quota(user, course),
        "instructors": course.instructors.order_by("last_name", "username"),
        "manual_html": course.template_version.manual_markup if course.template_version else "",
        "template": template,
        "course_endpoints": [endpoint.name for endpoint in selectors.course_endpoints(course)],
    }
    now = timezone.now()
    context.update(sessions=list(selectors.course_sessions(course=course)), next_meetings=_next_meetings(course, now))
    context["now"] = now
    if manage:
        quota = selectors.course_quota(course)
        context.update(
            session_form=forms.ClassSessionForm(),
            summary=usage.class_summary(course),
            state_actions=STATE_ACTIONS.get(course.state, []),
            roster=list(selectors.course_roster(course=course)),
            top_ups=course.top_ups.select_related("student", "granted_by"),
            bars=usage.usage_bars(course),
            details_form=forms.CourseForm(instance=course, user=user),
            student_form=forms.StudentAddForm(),
            roster_form=forms.RosterUploadForm(),
            instructor_form=forms.InstructorAddForm(),
            top_up_form=forms.TopUpForm(course=course),
            quota=quota,
            quota_is_set=quota.any_set,
            quota_form=forms.QuotaForm.for_quota(quota) if context["can_set_quota"] else None,
            roster_columns=services.ROSTER_COLUMNS,
        )
    else:
        context["bars"] = usage.student_usage_bars(course, user)
    context["over_bars"] = [bar for bar in context["bars"] if bar.over]
    context.update(overrides)
    return render(request, "courses/course_detail.html", context, status=status)


@login_required
def course_list(request: HttpRequest) -> HttpResponse:
    courses = selectors.course_list(user=request.user)
    return render(
        request,
        "courses/course_list.html",
        {"courses": courses, "can_create": permissions.can_create_courses(request.user)},
    )


@login_required
def course_create(request: HttpRequest) -> HttpResponse:
    if not permissions.can_create_courses(request.user):
        return forbidden(request, "Only instructors and admins can create courses.")
    form = forms.CourseForm(request.POST or None, user=request.user)
    if request.method == "POST" and form.is_valid():
        try:
            course = services.course_create(actor=request.user, **form.service_fields())
        except PermissionDenied as refusal:
            return forbidden(request, refusal)
        except ValidationError as error:
            add_errors(form, error)
        else:
            messages.success(request, f"{course.title} is created as a draft. Add students, then open it.")
            return redirect("courses:course-detail", course.pk)
    has_versions = selectors.published_versions(user=request.user).exists()
    return render(request, "courses/course_create.html", {"form": form, "has_versions": has_versions})


@login_required
def course_detail(request: HttpRequest, course_id: int) -> HttpResponse:
    course = _course_or_404(request, course_id)
    return _course_page(request, course, **_roster_outcome_take(request, course))


@login_required
@require_POST
def course_edit(request: HttpRequest, course_id: int) -> HttpResponse:
    course = _course_or_404(request, course_id)
    form = forms.CourseForm(request.POST, instance=Course.objects.get(pk=course.pk), user=request.user)
    if form.is_valid():
        try:
            services.course_update(course=course, actor=request.user, **form.service_fields())
        except PermissionDenied as refusal:
            messages.error(request, refusal_message(request, refusal))
            return redirect("courses:course-detail", course.pk)
        except ValidationError as error:
            add_errors(form, error)
        else:
            messages.success(request, "The course details are saved.")
            return redirect("courses:course-detail", course.pk)
    return _course_page(request, _course_or_404(request, course_id), details_form=form, details_open=True)


@login_required
@require_POST
def course_state(request: HttpRequest, course_id: int) -> HttpResponse:
    course = _course_or_404(request, course_id)
    state = request.POST.get("state", "")
    if state not in Course.State.values:
        messages.error(request, "That is not a course state.")
        return redirect("courses:course-detail", course.pk)
    try:
        services.course_update(course=course, actor=request.user, state=state)
    except (PermissionDenied, ValidationError) as error:
        messages.error(request, refusal_message(request, error))
    else:
        messages.success(request, f"The course is {course.get_state_display().lower()} now.")
    return redirect("courses:course-detail", course.pk)


@login_required
@require_POST
def course_join_code(request: HttpRequest, course_id: int) -> HttpResponse:
    course = _course_or_404(request, course_id)
    enabled = request.POST.get("action") != "disable"
    try:
        course = services.join_code_rotate(course=course, actor=request.user, enabled=enabled)
    except PermissionDenied as refusal:
        messages.error(request, refusal_message(request, refusal))
    else:
        if course.join_code:
            messages.success(request, f"The new join code is {course.join_code}; the old one no longer works.")
        else:
            messages.success(request, "Joining with a code is turned off.")
    return _back(reverse("courses:course-detail", args=[course.pk]), "join-code")


@login_required
@require_POST
def course_instructor_add(request: HttpRequest, course_id: int) -> HttpResponse:
    course = _course_or_404(request, course_id)
    form = forms.InstructorAddForm(request.POST)
    if form.is_valid():
        instructor = User.objects.filter(username=form.cleaned_data["username"]).first()
        if instructor is None:
            form.add_error("username", "No account has that user name.")
        else:
            try:
                services.course_instructor_add(course=course, actor=request.user, instructor=instructor)
            except PermissionDenied as refusal:
                messages.error(request, refusal_message(request, refusal))
                return redirect("courses:course-detail", course.pk)
            except ValidationError as error:
                add_errors(form, error)
            else:
                messages.success(request, f"{instructor.username} teaches this course too now.")
                return _back(reverse("courses:course-detail", args=[course.pk]), "instructors")
    return _course_page(request, course, instructor_form=form)


@login_required
@require_POST
def course_instructor_remove(request: HttpRequest, course_id: int, user_id: int) -> HttpResponse:
    course = _course_or_404(request, course_id)
    instructor = get_object_or_404(course.instructors.all(), pk=user_id)
    try:
        services.course_instructor_remove(course=course, actor=request.user, instructor=instructor)
    except (PermissionDenied, ValidationError) as refusal:
        messages.error(request, refusal_message(request, refusal))  # a PermissionDenied is recorded as it is said
    else:
        messages.success(request, f"{instructor.username} no longer teaches this course.")
    return _back(reverse("courses:course-detail", args=[course.pk]), "instructors")


# A roster change that made accounts redirects to the course page (so a reload does not post
# again) and the page shows the outcome once. The generated passwords wait in the session for
# that one page view, encrypted like the vCenter passwords (core.crypto): never in clear at rest.


def _roster_outcome_key(course: Course) -> str:
    return f"courses.roster_outcome.{course.pk}"


def _roster_outcome_keep(
    request: HttpRequest,
    course: Course,
    *,
    created: list[tuple[str, str]],
    result: services.RosterImport | None = None,
) -> None:
    summary = None
    if result:  # without its passwords: the page only counts the accounts made
        summary = dataclasses.asdict(result) | {"created": [(username, None) for username, _ in result.created]}
    request.session[_roster_outcome_key(course)] = {
        "created": [(username, crypto.encrypt(password)) for username, password in created],
        "result": summary,
    }


def _roster_outcome_take(request: HttpRequest, course: Course) -> dict:
    """The course page's context for the outcome kept by the last roster change, once."""
    kept = request.session.pop(_roster_outcome_key(course), None)
    if not kept:
        return {}
    try:
        created = [(username, crypto.decrypt(password)) for username, password in kept["created"]]
    except crypto.SecretUnreadable:  # the keys changed in between: the accounts exist, the passwords are gone
        created = []
    outcome = {"created_accounts": created}
    if kept["result"]:
        outcome["roster_result"] = services.RosterImport(**kept["result"])
    return outcome


@login_required
@require_POST
def roster_add(request: HttpRequest, course_id: int) -> HttpResponse:
    """Enroll an existing account by user name, or make a new student account and enroll it."""
    course = _course_or_404(request, course_id)
    form = forms.StudentAddForm(request.POST)
    if form.is_valid():
        try:
            added = services.roster_add(course=course, actor=request.user, **form.cleaned_data)
        except PermissionDenied as refusal:
            messages.error(request, refusal_message(request, refusal))
            return redirect("courses:course-detail", course.pk)
        except ValidationError as error:
            add_errors(form, error)
        else:
            student, generated = added.enrollment.student, added.generated_password
            messages.success(request, f"{student.username} is enrolled.")
            if generated:
                _roster_outcome_keep(request, course, created=[(student.username, generated)])
                return _back(reverse("courses:course-detail", args=[course.pk]), "created-accounts")
            return _back(reverse("courses:course-detail", args=[course.pk]), "roster")
    return _course_page(request, course, student_form=form, roster_open=True)


@login_required
@require_POST
def roster_remove(request: HttpRequest, course_id: int, enrollment_id: int) -> HttpResponse:
    course = _course_or_404(request, course_id)
    enrollment = get_object_or_404(Enrollment.objects.select_related("student"), pk=enrollment_id, course=course)
    try:
        services.enrollment_remove(enrollment=enrollment, actor=request.user)
    except PermissionDenied as refusal:
        messages.error(request, refusal_message(request, refusal))
    else:
        messages.success(request, f"{enrollment.student.username} is no longer enrolled.")
    return _back(reverse("courses:course-detail", args=[course.pk]), "roster")


@login_required
@require_POST
def roster_upload(request: HttpRequest, course_id: int) -> HttpResponse:
    course = _course_or_404(request, course_id)
    form = forms.RosterUploadForm(request.POST, request.FILES)
    if not form.is_valid():
        return _course_page(request, course, roster_form=form)
    upload = form.cleaned_data["file"]
    if upload.size > services.ROSTER_MAX_BYTES:
        form.add_error("file", f"The file is larger than {services.ROSTER_MAX_BYTES // 1024} KB.")
        return _course_page(request, course, roster_form=form)
    try:
        result = services.roster_import_csv(course=course, actor=request.user, data=upload.read())
    except PermissionDenied as refusal:
        messages.error(request, refusal_message(request, refusal))
        return redirect("courses:course-detail", course.pk)
    except services.RosterError as error:
        return _course_page(
            request,
            course,
            roster_form=form,
            roster_error=error,
            roster_error_lines=sorted(error.lines.items()),
        )
    _roster_outcome_keep(
        request,
        course,
        created=[(username, password) for username, password in result.created if password],
        result=result,
    )
    return _back(reverse("courses:course-detail", args=[course.pk]), "roster-result")


@login_required
@require_POST
def quota_edit(request: HttpRequest, course_id: int) -> HttpResponse:
    course = _course_or_404(request, course_id)
    form = forms.QuotaForm(request.POST)
    if form.is_valid():
        try:
            services.quota_update(course=course, actor=request.user, **form.cleaned_data)
        except PermissionDenied as refusal:
            messages.error(request, refusal_message(request, refusal))
            return redirect("courses:course-detail", course.pk)
        except ValidationError as error:
            add_errors(form, error)
        else:
            messages.success(request, "The quota is saved.")
            return _back(reverse("courses:course-detail", args=[course.pk]), "quota")
    return _course_page(request, course, quota_form=form, quota_open=True)


@login_required
@require_POST
def top_up_grant(request: HttpRequest, course_id: int) -> HttpResponse:
    course = _course_or_404(request, course_id)
    form = forms.TopUpForm(request.POST, course=course)
    if form.is_valid():
        try:
            top_up = services.top_up_grant(course=course, actor=request.user, **form.cleaned_data)
        except PermissionDenied as refusal:
            messages.error(request, refusal_message(request, refusal))
            return redirect("courses:course-detail", course.pk)
        except ValidationError as error:
            add_errors(form, error)
        else:
            messages.success(request, f"{top_up.student.username} got their top-up.")
            return _back(reverse("courses:course-detail", args=[course.pk]), "top-ups")
    return _course_page(request, course, top_up_form=form)


@login_required
def course_join(request: HttpRequest) -> HttpResponse:
    """A student enrolls with a join code (the form also sits on the student's home page)."""
    form = forms.JoinForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            enrollment = services.course_join(student=request.user, code=form.cleaned_data["code"])
        except PermissionDenied as refusal:
            form.add_error(None, refusal_message(request, refusal))
        except ValidationError as error:
            add_errors(form, error)
        else:
            messages.success(request, f"You are enrolled in {enrollment.course.title}.")
            return redirect("courses:course-detail", enrollment.course_id)
    return render(request, "courses/join.html", {"form": form})


@login_required
def guide_image(request: HttpRequest, template_id: int, name: str) -> HttpResponse:
    """An image of a template's guide or manual, for the people who may read them (others: 404)."""
    try:
        image = selectors.guide_image(template_id=template_id, name=name, user=request.user)
    except GuideImage.DoesNotExist as missing:
        raise Http404("No such image.") from missing
    etag = f'"{image.sha256}"'
    if request.headers.get("If-None-Match") == etag:
        response = HttpResponse(status=304)
    else:
        response = HttpResponse(bytes(image.data), content_type=image.content_type)
    response["ETag"] = etag
    response["Cache-Control"] = "private, max-age=300"
    response["X-Content-Type-Options"] = "nosniff"
    return response


# Class sessions (issue 13): when the course meets; its labs are made ready before each meeting


def _next_meetings(course: Course, now) -> list:
    return selectors.course_next_occurrences(course=course, now=now, limit=5)


@login_required
@require_POST
def class_session_add(request: HttpRequest, course_id: int) -> HttpResponse:
    course = _course_or_404(request, course_id)
    form = forms.ClassSessionForm(request.POST)
    if form.is_valid():
        try:
            session = services.class_session_create(course=course, actor=request.user, **form.service_fields())
        except PermissionDenied as refusal:
            messages.error(request, refusal_message(request, refusal))
            return redirect("courses:course-detail", course.pk)
        except ValidationError as error:
            add_errors(form, error)
        else:
            messages.success(request, f"Session added: {session.describe()}.")
            return _back(reverse("courses:course-detail", args=[course.pk]), "sessions")
    return _course_page(request, course, session_form=form, sessions_open=True)


@login_required
@require_POST
def class_session_remove(request: HttpRequest, course_id: int, session_id: int) -> HttpResponse:
    course = _course_or_404(request, course_id)
    session = get_object_or_404(course.sessions, pk=session_id)
    try:
        services.class_session_delete(session=session, actor=request.user)
    except PermissionDenied as refusal:
        messages.error(request, refusal_message(request, refusal))
    else:
        messages.success(request, f"Session removed: {session.describe()}.")
    return _back(reverse("courses:course-detail", args=[course.pk]), "sessions")
