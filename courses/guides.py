"""Lab guides: writing a template's guide (steps, checks, variables) and freezing it into a version.

A guide is written on the template's draft (``GuideStep``, ``GuideCheck``, ``GuideVariable``)
and frozen with the rest of the draft when it is published (``guide_freeze``, into
``TemplateVersion.guide``): a course on a version never sees a later edit. Every edit is an edit
of the draft (a new revision). The labs app draws each lab's values (``variables_draw``), runs
the checks (labs.guides) and keeps each lab's progress; the pure helpers it needs to compare
answers and fill in values live here, beside the models they read.
"""

from __future__ import annotations

import hashlib
import html
import json
import re
import secrets
from typing import Any

import regex
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Max

from core.markdown import sanitize_html, stored_html
from core.validation import save_valid
from courses import permissions
from courses.models import (
    GUIDE_CHECKS_PER_STEP_MAX,
    GUIDE_IMAGE_MAX_BYTES,
    GUIDE_IMAGE_NAME_VALIDATOR,
    GUIDE_IMAGES_MAX,
    GUIDE_STEPS_MAX,
    GUIDE_VARIABLES_MAX,
    GuideCheck,
    GuideImage,
    GuideStep,
    GuideVariable,
    LabTemplate,
    TemplateVersion,
)

STEP_FIELDS = ("title", "body", "points")
CHECK_FIELDS = (
    "kind",
    "label",
    "vm_role",
    "command",
    "exit_code",
    "output_pattern",
    "timeout_seconds",
    "prompt",
    "answer_mode",
    "answer",
    "case_sensitive",
    "vm_property",
    "expected",
)
VARIABLE_FIELDS = ("name", "kind", "length", "minimum", "maximum", "choices")
# {{ name }} in a guide's text or a check: the lab's value of variable ``name``.
PLACEHOLDER = re.compile(r"\{\{\s*([a-z][a-z0-9_]{0,39})\s*\}\}")
GUESTINFO_PREFIX = "guestinfo.nestlab."
# Random strings avoid letters that read alike (0/O, 1/l/I) since students type them.
STRING_ALPHABET = "abcdefghijkmnpqrstuvwxyz23456789"


def _require_editor(actor: AbstractBaseUser, template: LabTemplate) -> None:
    if not permissions.can_edit_template(actor, template):
        raise PermissionDenied("Only the template's owners and admins can edit its guide.")


def _touch(template: LabTemplate) -> None:
    """A guide edit is a draft edit: a new revision, so the next publish makes a new version."""
    template.mark_edited()


def _set(instance, fields: dict[str, Any], allowed: tuple[str, ...]) -> None:
    unknown = sorted(set(fields) - set(allowed))
    if unknown:
        raise ValidationError(f"Unknown field(s): {', '.join(unknown)}.")
    for name, value in fields.items():
        setattr(instance, name, value)


# Steps


@transaction.atomic
def guide_step_add(*, template: LabTemplate, actor: AbstractBaseUser, **fields: Any) -> GuideStep:
    """A new step at the end of the guide."""
    _require_editor(actor, template)
    locked = LabTemplate.objects.select_for_update().get(pk=template.pk)
    last = locked.guide_steps.aggregate(top=Max("position"))["top"] or 0
    if last >= GUIDE_STEPS_MAX:
        raise ValidationError(f"A guide has at most {GUIDE_STEPS_MAX} steps.")
    step = GuideStep(template=locked, position=last + 1)
    _set(step, fields, STEP_FIELDS)
    save_valid(step)
    _touch(locked)
    return step


@transaction.atomic
def guide_step_update(*, step: GuideStep, actor: AbstractBaseUser, **fields: Any) -> GuideStep:
    _require_editor(actor, step.template)
    position = fields.pop("position", None)
    _set(step, fields, STEP_FIELDS)
    save_valid(step)
    if position is not None and position != step.position:
        _move(step, position)
    _touch(step.template)
    return step


def _move(step: GuideStep, position: int) -> None:
    """Put a step at ``position`` (1-based), the others keeping their order."""
    steps = list(GuideStep.objects.select_for_update().filter(template_id=step.template_id).order_by("position"))
    if not isinstance(position, int) or not 1 <= position <= len(steps):
        raise ValidationError({"position": f"Give a position from 1 to {len(steps)}."})
    ordered = [other for other in steps if other.pk != step.pk]
    ordered.insert(position - 1, step)
    _renumber(ordered)
    step.position = position


def _renumber(steps: list[GuideStep]) -> None:
    # Two passes: the unique (template, position) constraint holds after each update.
    offset = GUIDE_STEPS_MAX + 1
    for index, item in enumerate(steps):
        GuideStep.objects.filter(pk=item.pk).update(position=offset + index)
    for index, item in enumerate(steps, start=1):
        GuideStep.objects.filter(pk=item.pk).update(position=index)


@transaction.atomic
def guide_step_remove(*, step: GuideStep, actor: AbstractBaseUser) -> None:
    template = step.template
    _require_editor(actor, template)
    step.delete()
    _renumber(list(GuideStep.objects.select_for_update().filter(template=template).order_by("position")))
    _touch(template)


# Checks


@transaction.atomic
def guide_check_add(*, step: GuideStep, actor: AbstractBaseUser, **fields: Any) -> GuideCheck:
    _require_editor(actor, step.template)
    GuideStep.objects.select_for_update().filter(pk=step.pk).first()
    count = step.checks.count()
    if count >= GUIDE_CHECKS_PER_STEP_MAX:
        raise ValidationError(f"A step has at most {GUIDE_CHECKS_PER_STEP_MAX} checks.")
    check = GuideCheck(step=step, position=count + 1)
    _set(check, fields, CHECK_FIELDS)
    _check_vm_role(check)
    save_valid(check)
    _touch(step.template)
    return check


@transaction.atomic
def guide_check_update(*, check: GuideCheck, actor: AbstractBaseUser, **fields: Any) -> GuideCheck:
    _require_editor(actor, check.step.template)
    _set(check, fields, CHECK_FIELDS)
    _check_vm_role(check)
    save_valid(check)
    _touch(check.step.template)
    return check


@transaction.atomic
def guide_check_remove(*, check: GuideCheck, actor: AbstractBaseUser) -> None:
    step = check.step
    _require_editor(actor, step.template)
    check.delete()
    for index, other in enumerate(step.checks.order_by("position", "id"), start=1):
        if other.position != index:
            GuideCheck.objects.filter(pk=other.pk).update(position=index)
    _touch(step.template)


def _check_vm_role(check: GuideCheck) -> None:
    if check.kind == GuideCheck.Kind.QUESTION:
        check.vm_role = ""
        return
    if check.vm_role and not check.step.template.vms.filter(role=check.vm_role).exists():
        roles = ", ".join(check.step.template.vms.values_list("role", flat=True)) or "none yet"
        raise ValidationError({"vm_role": f"The template has no VM called {check.vm_role} (its VMs: {roles})."})


# Variables


@transaction.atomic
def guide_variable_add(*, template: LabTemplate, actor: AbstractBaseUser, **fields: Any) -> GuideVariable:
    _require_editor(actor, template)
    locked = LabTemplate.objects.select_for_update().get(pk=template.pk)
    if locked.guide_variables.count() >= GUIDE_VARIABLES_MAX:
        raise ValidationError(f"A template has at most {GUIDE_VARIABLES_MAX} variables.")
    if locked.guide_variables.filter(name=fields.get("name")).exists():
        raise ValidationError({"name": f"The template already has a variable called {fields.get('name')}."})
    variable = GuideVariable(template=locked)
    _set(variable, fields, VARIABLE_FIELDS)
    save_valid(variable)
    _touch(locked)
    return variable


@transaction.atomic
def guide_variable_update(*, variable: GuideVariable, actor: AbstractBaseUser, **fields: Any) -> GuideVariable:
    _require_editor(actor, variable.template)
    name = fields.get("name")
    if name and variable.template.guide_variables.exclude(pk=variable.pk).filter(name=name).exists():
        raise ValidationError({"name": f"The template already has a variable called {name}."})
    _set(variable, fields, VARIABLE_FIELDS)
    save_valid(variable)
    _touch(variable.template)
    return variable


@transaction.atomic
def guide_variable_remove(*, variable: GuideVariable, actor: AbstractBaseUser) -> None:
    _require_editor(actor, variable.template)
    template = variable.template
    variable.delete()
    _touch(template)


# Images (of the guide and the manual)

# What an image file starts with, by format: the bytes decide, not the name or what the browser said.
_IMAGE_MAGIC = (
    (b"\x89PNG\r\n\x1a\n", GuideImage.Format.PNG),
    (b"\xff\xd8\xff", GuideImage.Format.JPEG),
    (b"GIF87a", GuideImage.Format.GIF),
    (b"GIF89a", GuideImage.Format.GIF),
)
_FORMAT_OF_SUFFIX = {
    "png": GuideImage.Format.PNG,
    "jpg": GuideImage.Format.JPEG,
    "jpeg": GuideImage.Format.JPEG,
    "gif": GuideImage.Format.GIF,
    "webp": GuideImage.Format.WEBP,
}


def _image_format(data: bytes) -> str | None:
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return GuideImage.Format.WEBP
    for magic, image_format in _IMAGE_MAGIC:
        if data.startswith(magic):
            return image_format
    return None


@transaction.atomic
def guide_image_add(*, template: LabTemplate, actor: AbstractBaseUser, name: str, data: bytes) -> GuideImage:
    """Store an image for the template's guide and manual (replacing one of the same name)."""
    _require_editor(actor, template)
    locked = LabTemplate.objects.select_for_update().get(pk=template.pk)
    name = (name or "").strip().lower()
    try:
        GUIDE_IMAGE_NAME_VALIDATOR(name)
    except ValidationError as error:
        raise ValidationError({"name": error.messages}) from error
    if len(data) > GUIDE_IMAGE_MAX_BYTES:
        raise ValidationError({"data": f"The image is {len(data):,} bytes; at most {GUIDE_IMAGE_MAX_BYTES:,}."})
    if not data:
        raise ValidationError({"data": "The file is empty."})
    image_format = _image_format(data)
    if image_format is None:
        raise ValidationError({"data": "That is not a PNG, JPEG, GIF or WebP image."})
    suffix = name.rsplit(".", 1)[-1] if "." in name else ""
    if suffix in _FORMAT_OF_SUFFIX and _FORMAT_OF_SUFFIX[suffix] != image_format:
        label = GuideImage.Format(image_format).label
        wanted = next(ending for ending, known in _FORMAT_OF_SUFFIX.items() if known == image_format)
        raise ValidationError({"name": f"The file is a {label} image: name it .{wanted}."})
    image = locked.guide_images.filter(name=name).first()
    if image is not None and (shown_in := _versions_showing(image)):
        # A published version is frozen: the image it shows must not change under its students.
        raise ValidationError(
            {"name": f"{name} is shown by published version(s) {shown_in}: upload the new one under another name."}
        )
    if image is None:
        if locked.guide_images.count() >= GUIDE_IMAGES_MAX:
            raise ValidationError(f"A template has at most {GUIDE_IMAGES_MAX} images.")
        image = GuideImage(template=locked, name=name)
    image.data, image.content_type, image.size = data, image_format, len(data)
    image.sha256 = hashlib.sha256(data).hexdigest()
    save_valid(image)
    _touch(locked)
    return image


def _versions_showing(image: GuideImage) -> str:
    """The published versions whose guide or manual shows the image, as "v1, v3" ("" for none)."""
    versions = image.template.versions.filter(state=TemplateVersion.State.PUBLISHED).order_by("number")
    return ", ".join(
        f"v{version.number}"
        for version in versions
        if image.url in version.manual_html or image.url in json.dumps(version.guide)
    )


@transaction.atomic
def guide_image_remove(*, image: GuideImage, actor: AbstractBaseUser) -> None:
    """Remove an image, unless a published version shows it (its students would see a hole)."""
    template = image.template
    _require_editor(actor, template)
    if shown_in := _versions_showing(image):
        raise ValidationError(
            f"{image.name} is shown by published version(s) {shown_in}: courses on them still need it."
        )
    image.delete()
    _touch(template)


# Publishing: the draft's guide frozen into the version


def guide_freeze(template: LabTemplate) -> dict[str, Any]:
    """The draft's guide as the plain data a version keeps: steps (their bodies rendered when they
    were saved), checks (answers included: selectors strip them for students), variables. Keys are
    the draft rows' ids, stable while the row exists, so results name the step and check they
    belong to."""
    steps = []
    for step in template.guide_steps.prefetch_related("checks").order_by("position"):
        steps.append(
            {
                "key": str(step.pk),
                "title": step.title,
                "body_html": step.body_html,
                "points": step.points,
                "checks": [
                    {"key": str(check.pk), **{name: getattr(check, name) for name in CHECK_FIELDS}}
                    for check in step.checks.order_by("position", "id")
                ],
            }
        )
    variables = [
        {name: getattr(variable, name) for name in VARIABLE_FIELDS} for variable in template.guide_variables.all()
    ]
    return {"steps": steps, "variables": variables} if steps or variables else {}


def guest_accounts_freeze(template: LabTemplate) -> dict[str, dict[str, str]]:
    """Each VM's guest account as the version keeps it (the password stays encrypted)."""
    return {
        vm.role: {"username": vm.guest_username, "password_ciphertext": vm.guest_password_ciphertext}
        for vm in template.vms.all()
        if vm.has_guest_account
    }


def guide_problems(template: LabTemplate, guide: dict[str, Any]) -> list[str]:
    """What stops a guide from being published, in words (a publish lists them all)."""
    problems = []
    accounts = {vm.role for vm in template.vms.all() if vm.has_guest_account}
    roles = set(template.vms.values_list("role", flat=True))
    names = {variable["name"] for variable in guide.get("variables", [])}
    for number, step in enumerate(guide.get("steps", []), start=1):
        where = f"Guide step {number} ({step['title']})"
        if step["points"] and not step["checks"]:
            problems.append(f"{where} is worth {step['points']} points but has no check to earn them.")
        texts = [step["body_html"]]
        for check in step["checks"]:
            texts += [check["command"], check["answer"], check["expected"], check["prompt"]]
            if check["kind"] != GuideCheck.Kind.QUESTION and check["vm_role"] not in roles:
                problems.append(f"{where}: the check “{check['label']}” reads {check['vm_role']}, not in the template.")
            elif check["kind"] == GuideCheck.Kind.COMMAND and check["vm_role"] not in accounts:
                problems.append(
                    f"{where}: the check “{check['label']}” runs a command in {check['vm_role']}, "
                    "which has no guest account: give one on the VM."
                )
        unknown = sorted({name for text in texts for name in PLACEHOLDER.findall(text or "")} - names)
        if unknown:
            named = ", ".join("{{ " + name + " }}" for name in unknown)
            problems.append(f"{where} uses {named}: no such variable.")
    return problems


# What a lab's guide needs at run time (pure: no database)


def variables_draw(guide: dict[str, Any]) -> dict[str, str]:
    """One lab's values of the guide's variables, drawn with a CSPRNG (students must not guess
    each other's answers)."""
    values = {}
    for variable in guide.get("variables", []):
        kind = variable["kind"]
        if kind == GuideVariable.Kind.NUMBER:
            low, high = variable["minimum"], variable["maximum"]
            values[variable["name"]] = str(low + secrets.randbelow(high - low + 1))
        elif kind == GuideVariable.Kind.CHOICE:
            values[variable["name"]] = secrets.choice(variable["choices"]).strip()
        else:
            values[variable["name"]] = "".join(secrets.choice(STRING_ALPHABET) for _ in range(variable["length"]))
    return values


def fill(text: str, values: dict[str, str]) -> str:
    """``{{ name }}`` replaced by the lab's value (unknown names are left as written)."""
    return PLACEHOLDER.sub(lambda match: values.get(match.group(1), match.group(0)), text or "")


def fill_html(stored: str, values: dict[str, str]):
    """A step's stored (sanitised) HTML with the lab's values, escaped, filled in. Sanitised again
    when a value went in: a value inside an attribute (``<a href="{{ site }}">``) could otherwise
    make a ``javascript:`` link, which escaping does not stop."""
    if not PLACEHOLDER.search(stored or ""):
        return stored_html(stored or "")
    filled = PLACEHOLDER.sub(lambda match: html.escape(values.get(match.group(1), match.group(0))), stored)
    return sanitize_html(filled)


def guestinfo(values: dict[str, str]) -> dict[str, str]:
    """The ExtraConfig keys a lab's VMs carry (readable in the guest: ``vmtoolsd --cmd "info-get
    guestinfo.nestlab.<name>"``)."""
    return {f"{GUESTINFO_PREFIX}{name}": value for name, value in values.items()}


# Patterns (an output pattern, a question's pattern answer) run on text a student shapes: the
# `regex` engine with a time limit, so a pattern prone to catastrophic backtracking, e.g.
# ([a-z0-9]+\.?)+ for a host name, cannot hold a worker for minutes on a crafted answer. It lets
# other threads run meanwhile (concurrent=True): the operation's heartbeat keeps beating.
PATTERN_TIMEOUT_SECONDS = 1.0


class PatternTooSlow(Exception):
    """A check's pattern did not finish on the text within PATTERN_TIMEOUT_SECONDS."""


def pattern_found(pattern: str, text: str, *, ignore_case: bool = False, whole: bool = False) -> bool:
    """Whether ``pattern`` matches all of ``text`` (``whole``) or is found in it (multi-line);
    an invalid pattern matches nothing; one too slow on this text raises PatternTooSlow."""
    flags = (regex.IGNORECASE if ignore_case else 0) | (0 if whole else regex.MULTILINE)
    find = regex.fullmatch if whole else regex.search
    try:
        return find(pattern, text, flags, timeout=PATTERN_TIMEOUT_SECONDS, concurrent=True) is not None
    except regex.error:
        return False
    except TimeoutError as error:
        raise PatternTooSlow(pattern) from error


def answer_matches(check: dict[str, Any], given: str, values: dict[str, str]) -> bool:
    """Whether a student's answer passes a question check (its answer filled with the lab's values)."""
    expected = fill(check["answer"], values).strip()
    given = (given or "").strip()
    folded = (lambda text: text) if check["case_sensitive"] else str.casefold
    mode = check["answer_mode"]
    if mode == GuideCheck.AnswerMode.PATTERN:
        return pattern_found(expected, given, ignore_case=not check["case_sensitive"], whole=True)
    if mode == GuideCheck.AnswerMode.SET:
        items = lambda text: {folded(item.strip()) for item in re.split(r"[,\n;]", text) if item.strip()}  # noqa: E731
        return bool(items(expected)) and items(expected) == items(given)
    return " ".join(folded(given).split()) == " ".join(folded(expected).split())


def student_guide(guide: dict[str, Any], values: dict[str, str]) -> list[dict[str, Any]]:
    """A version's steps as a student may see them: bodies and questions with their lab's values,
    checks by label; never an answer, a command, a pattern or an expected value."""
    steps = []
    for step in guide.get("steps", []):
        steps.append(
            {
                "key": step["key"],
                "title": step["title"],
                "body_html": fill_html(step["body_html"], values),
                "points": step["points"],
                "checks": [
                    {
                        "key": check["key"],
                        "kind": check["kind"],
                        "label": check["label"],
                        "prompt": fill(check["prompt"], values) if check["kind"] == GuideCheck.Kind.QUESTION else "",
                    }
                    for check in step["checks"]
                ],
            }
        )
    return steps


def guide_points(guide: dict[str, Any]) -> int:
    return sum(step["points"] for step in guide.get("steps", []))
