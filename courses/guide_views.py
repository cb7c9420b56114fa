"""The template page's lab guide editor: steps, their checks, variables and the VMs' guest
accounts. Thin: the forms parse, courses.guides (and courses.services for guest accounts) decide
and write. A refused form is the template page again with a 400 and the form as typed, its
errors in words; a PermissionDenied is a message."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django import forms as django_forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404
from django.urls import reverse
from django.views.decorators.http import require_POST

from core.web import add_errors, refusal_message
from courses import forms, guides, services
from courses.models import (
    GUIDE_IMAGE_MAX_BYTES,
    GuideCheck,
    GuideImage,
    GuideStep,
    GuideVariable,
    LabTemplate,
    TemplateVM,
)
from courses.views import _back, _template_or_404, _template_page

GUIDE_ANCHOR = "guide"


def _detail_url(template: LabTemplate) -> str:
    return reverse("courses:template-detail", args=[template.pk])


def _submit(
    request: HttpRequest,
    template: LabTemplate,
    *,
    form: django_forms.Form,
    key: str,
    write: Callable[[dict[str, Any]], Any],
    said: Callable[[Any], str],
    anchor: str = GUIDE_ANCHOR,
) -> HttpResponse:
    """Parse, call the service, say what was done and go back; or show the form again (400)."""
    if form.is_valid():
        try:
            written = write(form.cleaned_data)
        except PermissionDenied as refusal:
            messages.error(request, refusal_message(request, refusal))
            return _back(_detail_url(template), anchor)
        except ValidationError as error:
            add_errors(form, error)
        else:
            messages.success(request, said(written))
            return _back(_detail_url(template), anchor)
    return _template_page(request, _template_or_404(request, template.pk), status=400, guide_bound=(key, form))


def _act(request: HttpRequest, template: LabTemplate, act: Callable[[], Any], said: str, refused: str) -> HttpResponse:
    """A button without a form to fill (move, remove): done, or why not, as a message."""
    try:
        act()
    except (PermissionDenied, ValidationError) as refusal:
        messages.error(request, f"{refused} {refusal_message(request, refusal)}")
    else:
        messages.success(request, said)
    return _back(_detail_url(template), GUIDE_ANCHOR)


def _step(template: LabTemplate, step_id: int) -> GuideStep:
    return get_object_or_404(GuideStep, pk=step_id, template=template)


@dataclass(frozen=True)
class _Part:
    """A kind of guide part (step, check, variable) as its edit and remove buttons need it: the
    three kinds are edited and removed the same way, only their form, services and words differ."""

    key: str  # the service's keyword for the part, and the start of its form's key on the page
    auto_id: str  # the start of its form's field ids
    find: Callable[[LabTemplate, int], Any]  # the template's part by id, else 404
    form: Callable[..., django_forms.Form]  # (data, template=..., auto_id=...)
    update: Callable[..., Any]
    remove: Callable[..., Any]
    saved: Callable[[Any], str]
    removed: Callable[[Any], str]
    not_removed: str


def _edit(request: HttpRequest, template_id: int, part_id: int, part: _Part) -> HttpResponse:
    template = _template_or_404(request, template_id)
    item = part.find(template, part_id)
    return _submit(
        request,
        template,
        form=part.form(request.POST, template=template, auto_id=f"{part.auto_id}{item.pk}_%s"),
        key=f"{part.key}-{item.pk}",
        write=lambda data: part.update(**{part.key: item}, actor=request.user, **data),
        said=part.saved,
    )


def _remove(request: HttpRequest, template_id: int, part_id: int, part: _Part) -> HttpResponse:
    template = _template_or_404(request, template_id)
    item = part.find(template, part_id)
    return _act(
        request,
        template,
        lambda: part.remove(**{part.key: item}, actor=request.user),
        part.removed(item),
        part.not_removed,
    )


# Steps

STEP = _Part(
    key="step",
    auto_id="step",
    find=_step,
    form=lambda data, template, auto_id: forms.GuideStepForm(data, auto_id=auto_id),
    update=guides.guide_step_update,
    remove=guides.guide_step_remove,
    saved=lambda step: f"Step {step.position}, {step.title}, is saved.",
    removed=lambda step: f"Step {step.title} is removed, with its checks.",
    not_removed="The step was not removed.",
)


@login_required
@require_POST
def guide_step_add(request: HttpRequest, template_id: int) -> HttpResponse:
    template = _template_or_404(request, template_id)
    return _submit(
        request,
        template,
        form=forms.GuideStepForm(request.POST, auto_id="newstep_%s"),
        key="new-step",
        write=lambda data: guides.guide_step_add(template=template, actor=request.user, **data),
        said=lambda step: f"Step {step.position}, {step.title}, is added.",
    )


@login_required
@require_POST
def guide_step_edit(request: HttpRequest, template_id: int, step_id: int) -> HttpResponse:
    return _edit(request, template_id, step_id, STEP)


@login_required
@require_POST
def guide_step_move(request: HttpRequest, template_id: int, step_id: int) -> HttpResponse:
    """Up or down one place."""
    template = _template_or_404(request, template_id)
    step = _step(template, step_id)
    position = step.position + (-1 if request.POST.get("direction") == "up" else 1)
    return _act(
        request,
        template,
        lambda: guides.guide_step_update(step=step, actor=request.user, position=position),
        f"{step.title} is now step {position}.",
        f"{step.title} did not move.",
    )


@login_required
@require_POST
def guide_step_remove(request: HttpRequest, template_id: int, step_id: int) -> HttpResponse:
    return _remove(request, template_id, step_id, STEP)


# Checks


def _check(template: LabTemplate, check_id: int) -> GuideCheck:
    return get_object_or_404(GuideCheck.objects.select_related("step__template"), pk=check_id, step__template=template)


CHECK = _Part(
    key="check",
    auto_id="check",
    find=_check,
    form=forms.GuideCheckForm,
    update=guides.guide_check_update,
    remove=guides.guide_check_remove,
    saved=lambda check: f"The check “{check.label}” is saved.",
    removed=lambda check: f"The check “{check.label}” is removed.",
    not_removed="The check was not removed.",
)


@login_required
@require_POST
def guide_check_add(request: HttpRequest, template_id: int, step_id: int) -> HttpResponse:
    template = _template_or_404(request, template_id)
    step = _step(template, step_id)
    return _submit(
        request,
        template,
        form=forms.GuideCheckForm(request.POST, template=template, auto_id=f"newcheck{step.pk}_%s"),
        key=f"new-check-{step.pk}",
        write=lambda data: guides.guide_check_add(step=step, actor=request.user, **data),
        said=lambda check: f"The check “{check.label}” is added to {step.title}.",
    )


@login_required
@require_POST
def guide_check_edit(request: HttpRequest, template_id: int, check_id: int) -> HttpResponse:
    return _edit(request, template_id, check_id, CHECK)


@login_required
@require_POST
def guide_check_remove(request: HttpRequest, template_id: int, check_id: int) -> HttpResponse:
    return _remove(request, template_id, check_id, CHECK)


# Variables


def _variable(template: LabTemplate, variable_id: int) -> GuideVariable:
    return get_object_or_404(GuideVariable, pk=variable_id, template=template)


VARIABLE = _Part(
    key="variable",
    auto_id="var",
    find=_variable,
    form=lambda data, template, auto_id: forms.GuideVariableForm(data, auto_id=auto_id),
    update=guides.guide_variable_update,
    remove=guides.guide_variable_remove,
    saved=lambda variable: f"The variable {variable.name} is saved.",
    removed=lambda variable: f"The variable {variable.name} is removed.",
    not_removed="The variable was not removed.",
)


@login_required
@require_POST
def guide_variable_add(request: HttpRequest, template_id: int) -> HttpResponse:
    template = _template_or_404(request, template_id)
    return _submit(
        request,
        template,
        form=forms.GuideVariableForm(request.POST, auto_id="newvar_%s"),
        key="new-variable",
        write=lambda data: guides.guide_variable_add(template=template, actor=request.user, **data),
        said=lambda variable: f"The variable {variable.name} is added: write {{{{ {variable.name} }}}} to use it.",
    )


@login_required
@require_POST
def guide_variable_edit(request: HttpRequest, template_id: int, variable_id: int) -> HttpResponse:
    return _edit(request, template_id, variable_id, VARIABLE)


@login_required
@require_POST
def guide_variable_remove(request: HttpRequest, template_id: int, variable_id: int) -> HttpResponse:
    return _remove(request, template_id, variable_id, VARIABLE)


# Images (of the guide and the manual)


@login_required
@require_POST
def guide_image_add(request: HttpRequest, template_id: int) -> HttpResponse:
    template = _template_or_404(request, template_id)

    def write(data: dict[str, Any]):
        upload = data["image"]
        if upload.size > GUIDE_IMAGE_MAX_BYTES:  # refused before reading it into memory
            raise ValidationError({"image": f"The image is {upload.size:,} bytes; at most {GUIDE_IMAGE_MAX_BYTES:,}."})
        name = data["name"] or upload.name
        return guides.guide_image_add(template=template, actor=request.user, name=name, data=upload.read())

    return _submit(
        request,
        template,
        form=forms.GuideImageForm(request.POST, request.FILES, auto_id="newimage_%s"),
        key="new-image",
        write=write,
        said=lambda image: f"The image {image.name} is added: write ![words]({image.name}) to show it.",
        anchor="guide-images",
    )


@login_required
@require_POST
def guide_image_remove(request: HttpRequest, template_id: int, image_id: int) -> HttpResponse:
    template = _template_or_404(request, template_id)
    image = get_object_or_404(GuideImage.objects.defer("data"), pk=image_id, template=template)
    return _act(
        request,
        template,
        lambda: guides.guide_image_remove(image=image, actor=request.user),
        f"The image {image.name} is removed.",
        "The image was not removed.",
    )


# Guest accounts (for command checks)


@login_required
@require_POST
def template_vm_guest(request: HttpRequest, template_id: int, vm_id: int) -> HttpResponse:
    """A VM's guest account: the user name, and a password that replaces the stored one when given."""
    template = _template_or_404(request, template_id)
    vm = get_object_or_404(TemplateVM, pk=vm_id, template=template)
    return _submit(
        request,
        template,
        form=forms.GuestAccountForm(request.POST, auto_id=f"guest{vm.pk}_%s"),
        key=f"guest-{vm.pk}",
        write=lambda data: services.template_vm_update(vm=vm, actor=request.user, **data),
        said=lambda vm: (
            f"The guest account of {vm.role} is saved."
            if vm.has_guest_account
            else f"{vm.role} has no guest account now."
        ),
    )
