"""Every write of the courses app. Keyword-only, typed, permission-checked, validated."""

from __future__ import annotations

import csv
import io
import secrets
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.db.models import Max, ProtectedError
from django.utils import timezone

from accounts import services as accounts_services
from core import audit, realtime, roles
from core.validation import save_valid
from courses import guides, permissions
from courses.models import (
    ClassSession,
    Course,
    CourseQuota,
    Enrollment,
    LabTemplate,
    QuotaDefaults,
    QuotaTopUp,
    TemplateNetwork,
    TemplateNIC,
    TemplateVersion,
    TemplateVM,
    VCenterEndpoint,
    VersionBaseline,
)

User = get_user_model()

ENDPOINT_FIELDS = (
    "name",
    "url",
    "username",
    "verify_tls",
    "datacenter",
    "compute_path",
    "datastore",
    "lab_switch",
    "vlan_min",
    "vlan_max",
    "concurrency_limit",
    "template_source_folders",
    "console_username",
    "in_maintenance",
    "max_running_vms",
    "max_memory_gb",
    "max_storage_gb",
)
ROSTER_MAX_BYTES = 1024 * 1024
ROSTER_MAX_ROWS = 5000
ROSTER_COLUMNS = ("username", "email", "first_name", "last_name", "password")
JOIN_CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I


def _require(allowed: bool, message: str) -> None:
    if not allowed:
        raise PermissionDenied(message)


# vCenter endpoints (admins)


@transaction.atomic
def endpoint_create(
    *, actor: AbstractBaseUser, password: str, console_password: str | None = None, **fields: Any
) -> VCenterEndpoint:
    """Add a vCenter. The passwords are encrypted at once and never shown again."""
    _require(permissions.can_manage_endpoints(actor), "Only admins can connect vCenters.")
    if not password:
        raise ValidationError({"password": "A new endpoint needs its password."})
    endpoint = VCenterEndpoint(**{name: value for name, value in fields.items() if name in ENDPOINT_FIELDS})
    endpoint.set_password(password)
    if console_password:
        endpoint.set_console_password(console_password)
    _check_console_account(endpoint)
    save_valid(endpoint)
    return endpoint


@transaction.atomic
def endpoint_update(
    *,
    endpoint: VCenterEndpoint,
    actor: AbstractBaseUser,
    password: str | None = None,
    console_password: str | None = None,
    **fields: Any,
) -> VCenterEndpoint:
    """Change an endpoint; an empty or missing password keeps the stored one."""
    _require(permissions.can_manage_endpoints(actor), "Only admins can change vCenters.")
    for name, value in fields.items():
        if name in ENDPOINT_FIELDS:
            setattr(endpoint, name, value)
    if password:
        endpoint.set_password(password)
    if console_password:
        endpoint.set_console_password(console_password)
    if not endpoint.console_username:
        endpoint.console_password_ciphertext = ""
    _check_console_account(endpoint)
    save_valid(endpoint)
    return endpoint


def _check_console_account(endpoint: VCenterEndpoint) -> None:
    if endpoint.console_username and endpoint.console_username == endpoint.username:
        raise ValidationError(
            {
                "console_username": "Use an account that may only open consoles: console links log the "
                "browser in as this account, and the portal's own account can change all of vCenter."
            }
        )
    if endpoint.console_username and not endpoint.console_password_ciphertext:
        raise ValidationError({"console_password": "The console account needs its password."})


def endpoint_delete(*, endpoint: VCenterEndpoint, actor: AbstractBaseUser) -> None:
    _require(permissions.can_manage_endpoints(actor), "Only admins can remove vCenters.")
    if endpoint.templates.exists():
        raise ValidationError(
            f"{endpoint.name} still hosts {endpoint.templates.count()} template(s); delete or move them first."
        )
    try:
        endpoint.delete()
    except ProtectedError as error:  # e.g. the operations run on it (labs), or versions' baselines on it
        raise ValidationError(
            f"{endpoint.name} cannot be removed: {_counted(error.protected_objects)} "
            f"{'refers' if len(error.protected_objects) == 1 else 'refer'} to it."
        ) from error


def _counted(objects) -> str:
    """'2 version baselines and 1 operation': how many of each kind, in words."""
    counts = Counter(type(obj)._meta for obj in objects)
    parts = [
        f"{n} {meta.verbose_name if n == 1 else meta.verbose_name_plural}"
        for meta, n in sorted(counts.items(), key=lambda item: str(item[0].verbose_name))
    ]
    return parts[0] if len(parts) == 1 else f"{', '.join(parts[:-1])} and {parts[-1]}"


# Templates (instructors)


def _touch(template: LabTemplate) -> None:
    template.mark_edited()


@transaction.atomic
def template_create(
    *,
    actor: AbstractBaseUser,
    endpoint: VCenterEndpoint,
    name: str,
    description: str = "",
    manual: str = "",
    linked_clones: bool = True,
    networks: tuple[str, ...] = ("lab",),
    extra_endpoints: list[VCenterEndpoint] | None = None,
) -> LabTemplate:
    """A new draft template owned by its creator, with its networks (default: one, "lab"), and
    the extra vCenters it is published to besides its own."""
    _require(permissions.can_create_templates(actor), "Only instructors and admins can build templates.")
    template = LabTemplate(
        endpoint=endpoint, name=name, description=description, manual=manual, linked_clones=linked_clones
    )
    save_valid(template)
    template.owners.add(actor)
    for network in networks:
        save_valid(TemplateNetwork(template=template, name=network))
    if extra_endpoints:
        template.extra_endpoints.set([e for e in extra_endpoints if e.pk != endpoint.pk])
    return template


@transaction.atomic
def template_update(*, template: LabTemplate, actor: AbstractBaseUser, **fields: Any) -> LabTemplate:
    _require(permissions.can_edit_template(actor, template), "You cannot edit this template.")
    # Checked before the loop below sets the new endpoint on the instance.
    if "endpoint" in fields and template.vms.exists() and fields["endpoint"].pk != template.endpoint_id:
        raise ValidationError({"endpoint": "Remove the template's VMs before moving it to another vCenter."})
    for name in ("name", "description", "manual", "linked_clones", "endpoint"):
        if name in fields:
            setattr(template, name, fields[name])
    save_valid(template)
    if "extra_endpoints" in fields:
        # The template's own endpoint is always published to; naming it again changes nothing.
        template.extra_endpoints.set([e for e in fields["extra_endpoints"] if e.pk != template.endpoint_id])
    _touch(template)
    return template


@transaction.atomic
def template_network_add(
    *, template: LabTemplate, actor: AbstractBaseUser, name: str, description: str = ""
) -> TemplateNetwork:
    _require(permissions.can_edit_template(actor, template), "You cannot edit this template.")
    if template.networks.filter(name=name).exists():
        raise ValidationError({"name": f"The template already has a network called {name}."})
    network = TemplateNetwork(template=template, name=name, description=description)
    save_valid(network)
    _touch(template)
    return network


@transaction.atomic
def template_network_remove(*, network: TemplateNetwork, actor: AbstractBaseUser) -> None:
    template = network.template
    _require(permissions.can_edit_template(actor, template), "You cannot edit this template.")
    users = sorted({nic.vm.role for nic in network.nics.select_related("vm")})
    if users:
        raise ValidationError(f"Network {network.name} is still used by {', '.join(users)}.")
    network.delete()
    _touch(template)


def _set_nics(vm: TemplateVM, nic_networks: list[str]) -> None:
    networks = {network.name: network for network in vm.template.networks.all()}
    unknown = [name for name in nic_networks if name not in networks]
    if unknown:
        raise ValidationError(
            {"nic_networks": f"No template network called {', '.join(unknown)}; add it to the template first."}
        )
    vm.nics.all().delete()
    for index, name in enumerate(nic_networks):
        TemplateNIC.objects.create(vm=vm, index=index, network=networks[name])


# Checks of a VM picked as a template source: the labs app registers one at start-up
# (labs.template_sources.source_refusal); courses cannot see labs. Each answers words or None.
TemplateSourceCheck = Callable[..., str | None]
_template_source_checks: list[TemplateSourceCheck] = []


def register_template_source_check(check: TemplateSourceCheck) -> None:
    if check not in _template_source_checks:
        _template_source_checks.append(check)


@transaction.atomic
def template_vm_add(
    *,
    template: LabTemplate,
    actor: AbstractBaseUser,
    role: str,
    source_moref: str,
    source_name: str,
    source_path: str = "",
    boot_order: int = 1,
    cpu_override: int | None = None,
    memory_mb_override: int | None = None,
    nested_hv_required: bool = False,
    nic_networks: list[str] | None = None,
) -> TemplateVM:
    """Add a VM picked from the endpoint's inventory. It is checked in vCenter at publish.

    A VM that cannot be a template source (a lab VM; one outside the endpoint's source
    folders, by the path the picker gave) is refused now, by the check the labs app registers
    (``register_template_source_check``)."""
    _require(permissions.can_edit_template(actor, template), "You cannot edit this template.")
    for check in _template_source_checks:
        if refusal := check(template.endpoint, moref=source_moref, path=source_path):
            raise ValidationError({"source_moref": f"{source_name or source_moref} {refusal}"})
    if template.vms.filter(role=role).exists():
        raise ValidationError({"role": f"The template already has a VM with the role {role}."})
    if template.vms.filter(source_moref=source_moref).exists():
        raise ValidationError({"source_moref": f"{source_name} is already in this template."})
    vm = TemplateVM(
        template=template,
        role=role,
        source_moref=source_moref,
        source_name=source_name,
        source_path=source_path,
        boot_order=boot_order,
        cpu_override=cpu_override,
        memory_mb_override=memory_mb_override,
        nested_hv_required=nested_hv_required,
    )
    save_valid(vm)
    _set_nics(vm, nic_networks if nic_networks is not None else [])
    _touch(template)
    return vm


@transaction.atomic
def template_vm_update(*, vm: TemplateVM, actor: AbstractBaseUser, **fields: Any) -> TemplateVM:
    template = vm.template
    _require(permissions.can_edit_template(actor, template), "You cannot edit this template.")
    if "role" in fields and template.vms.exclude(pk=vm.pk).filter(role=fields["role"]).exists():
        raise ValidationError({"role": f"The template already has a VM with the role {fields['role']}."})
    for name in ("role", "boot_order", "cpu_override", "memory_mb_override", "nested_hv_required", "guest_username"):
        if name in fields:
            setattr(vm, name, fields[name])
    # The guest password is write-only: given, it replaces the stored one; an empty username
    # forgets the account.
    if fields.get("guest_password"):
        vm.set_guest_password(fields["guest_password"])
    if "guest_username" in fields and not fields["guest_username"]:
        vm.set_guest_password("")
    if vm.guest_password_ciphertext and not vm.guest_username:
        raise ValidationError({"guest_username": "Give the guest account's user name with its password."})
    save_valid(vm)
    if "nic_networks" in fields:
        _set_nics(vm, fields["nic_networks"])
    _touch(template)
    return vm


@transaction.atomic
def template_vm_remove(*, vm: TemplateVM, actor: AbstractBaseUser) -> None:
    template = vm.template
    _require(permissions.can_edit_template(actor, template), "You cannot edit this template.")
    vm.delete()
    _touch(template)


def template_draft_spec(template: LabTemplate) -> dict[str, Any]:
    """The draft as the plain data a version freezes (before vCenter fills in sizes)."""
    vms = []
    for vm in template.vms.prefetch_related("nics__network"):
        vms.append(
            {
                "role": vm.role,
                "source_moref": vm.source_moref,
                "source_name": vm.source_name,
                "source_path": vm.source_path,
                "boot_order": vm.boot_order,
                "cpu_override": vm.cpu_override,
                "memory_mb_override": vm.memory_mb_override,
                "nested_hv_required": vm.nested_hv_required,
                "nic_networks": [nic.network.name for nic in vm.nics.all()],
            }
        )
    return {
        "template": {"id": template.pk, "name": template.name},
        "endpoint_id": template.endpoint_id,
        "linked_clones": template.linked_clones,
        "networks": [{"name": n.name, "description": n.description} for n in template.networks.all()],
        "vms": vms,
    }


def _draft_problems(template: LabTemplate, spec: dict[str, Any]) -> list[str]:
    problems = []
    if not spec["vms"]:
        problems.append("The template has no VMs yet.")
    if not spec["networks"]:
        problems.append("The template has no network.")
    for vm in spec["vms"]:
        if not vm["nic_networks"]:
            problems.append(f"{vm['role']} has no network adapter on a template network.")
    return problems


@transaction.atomic
def template_version_create(
    *, template: LabTemplate, actor: AbstractBaseUser, unchanged_again: bool = False
) -> TemplateVersion:
    """Freeze the draft into the next version, in state publishing.

    Called by the labs app's publish service, which then checks it in vCenter. Refused
    while another version of the template is publishing, and when the draft is incomplete.
    """
    _require(permissions.can_edit_template(actor, template), "You cannot publish this template.")
    locked = LabTemplate.objects.select_for_update().get(pk=template.pk)
    if locked.versions.filter(state=TemplateVersion.State.PUBLISHING).exists():
        raise ValidationError("This template is being published already; wait for that to finish.")
    latest = locked.versions.filter(state=TemplateVersion.State.PUBLISHED).order_by("-number").first()
    if latest is not None and latest.revision == locked.revision and not unchanged_again:
        raise ValidationError(
            f"Nothing changed since v{latest.number}: it is what courses get already. "
            "Change the draft to publish again."
        )
    spec = template_draft_spec(locked)
    guide = guides.guide_freeze(locked)
    problems = _draft_problems(locked, spec) + guides.guide_problems(locked, guide)
    if problems:
        raise ValidationError(problems)
    number = (locked.versions.aggregate(top=Max("number"))["top"] or 0) + 1
    version = TemplateVersion(
        template=locked,
        number=number,
        revision=locked.revision,
        spec=spec,
        created_by=actor,
        # Rendered when the draft was saved: a version's readers never pay for rendering, and a
        # later edit of the draft changes nothing a course on this version shows.
        manual=locked.manual,
        manual_html=locked.manual_html,
        guide=guide,
        guest_accounts=guides.guest_accounts_freeze(locked),
    )
    save_valid(version)
    return version


def template_version_publish_succeeded(
    *, version: TemplateVersion, spec: dict[str, Any], baselines: list[dict[str, Any]] | None = None
) -> TemplateVersion:
    """Record what vCenter said (sizes, baseline snapshots) and make the version usable.

    ``baselines`` holds one entry per endpoint the version was published to (``endpoint_id``,
    ``state``, ``vms``: role -> moref and snapshot, ``error`` in words); without it the version
    has one baseline, on the spec's endpoint, from the spec's sources and snapshots.
    """
    if baselines is None:
        baselines = [
            {
                "endpoint_id": spec["endpoint_id"],
                "state": VersionBaseline.State.READY,
                "vms": {
                    vm["role"]: {"moref": vm["source_moref"], "snapshot": vm.get("baseline_snapshot")}
                    for vm in spec["vms"]
                },
                "error": "",
            }
        ]
    for baseline in baselines:
        VersionBaseline.objects.update_or_create(
            version=version,
            endpoint_id=baseline["endpoint_id"],
            defaults={"state": baseline["state"], "vms": baseline["vms"], "error": baseline.get("error", "")},
        )
    version.spec = spec
    version.vcpu_total = sum(vm["num_cpu"] for vm in spec["vms"])
    version.memory_mb_total = sum(vm["memory_mb"] for vm in spec["vms"])
    version.disk_gb_total = round(sum(vm["disk_gb"] for vm in spec["vms"]), 1)
    version.state = TemplateVersion.State.PUBLISHED
    version.published_at = timezone.now()
    version.error = ""
    save_valid(version)
    LabTemplate.objects.filter(pk=version.template_id).update(last_publish_failure=[])
    return version


def template_version_publish_failed(
    *, version: TemplateVersion, reason: str, problems: list[str] | None = None
) -> None:
    """A publish that failed leaves no version: the row is removed, so its number is the next
    one's again ("v2" was once the first usable version after a failure). Why it failed is kept on
    the template for its page (one problem per line), with the publish operation, and in the
    audit log."""
    if version.state == TemplateVersion.State.PUBLISHED or version.courses.exists():
        return  # never remove what a course may use (a publish is not retried after success)
    LabTemplate.objects.filter(pk=version.template_id).update(last_publish_failure=problems or [reason])
    version.delete()


# Courses


def _new_join_code() -> str:
    return "".join(secrets.choice(JOIN_CODE_ALPHABET) for _ in range(8))


@transaction.atomic
def course_create(
    *,
    actor: AbstractBaseUser,
    title: str,
    code: str,
    starts_on: date,
    ends_on: date,
    template_version: TemplateVersion | None = None,
    description: str = "",
    endpoints: list[VCenterEndpoint] | None = None,
) -> Course:
    """A draft course taught by its creator, with an empty quota (no limits) and a join code."""
    _require(permissions.can_create_courses(actor), "Only instructors and admins can create courses.")
    course = Course(
        title=title,
        code=code,
        starts_on=starts_on,
        ends_on=ends_on,
        template_version=template_version,
        description=description,
        join_code=_new_join_code(),
    )
    save_valid(course)
    if endpoints:
        course_endpoints_set(course=course, endpoints=endpoints)
    if roles.is_instructor(actor) or roles.is_admin(actor):
        course.instructors.add(actor)
    defaults = QuotaDefaults.current()  # the admins' limits for new courses, if they set any
    CourseQuota.objects.create(
        course=course, updated_by=actor, **{name: getattr(defaults, name) for name in CourseQuota.LIMIT_FIELDS}
    )
    return course


@transaction.atomic
def course_update(*, course: Course, actor: AbstractBaseUser, **fields: Any) -> Course:
    _require(permissions.can_manage_course(actor, course), "Only this course's instructors can change it.")
    for name in ("title", "code", "description", "starts_on", "ends_on", "template_version", "state"):
        if name in fields:
            setattr(course, name, fields[name])
    save_valid(course)
    if "endpoints" in fields:
        course_endpoints_set(course=course, endpoints=fields["endpoints"])
    elif "template_version" in fields:
        # The vCenters it chose must hold a baseline of its new version too.
        course_endpoints_set(course=course, endpoints=list(course.endpoints.all()))
    return course


def course_endpoints_set(*, course: Course, endpoints: list[VCenterEndpoint]) -> None:
    """The vCenters a course's labs may be built on (empty: all its version serves). Each must
    hold a baseline of the course's version, or no lab could ever be built there."""
    version = course.template_version
    if endpoints and version is not None:
        served = set(version.ready_endpoint_ids())
        unserved = sorted(endpoint.name for endpoint in endpoints if endpoint.pk not in served)
        if unserved:
            raise ValidationError(
                {
                    "endpoints": f"{version} is not published to {', '.join(unserved)}: publish the template "
                    "there first (its extra vCenters), or leave them out."
                }
            )
    course.endpoints.set(endpoints)


def course_instructor_add(*, course: Course, actor: AbstractBaseUser, instructor: AbstractBaseUser) -> None:
    _require(permissions.can_manage_course(actor, course), "Only this course's instructors can change it.")
    if not roles.is_instructor(instructor) and not roles.is_admin(instructor):
        raise ValidationError(f"{instructor.username} is not an instructor.")
    course.instructors.add(instructor)


@transaction.atomic
def course_instructor_remove(*, course: Course, actor: AbstractBaseUser, instructor: AbstractBaseUser) -> None:
    """Stop someone teaching a course: they no longer see it or its labs, and their open live
    pages of it are closed (docs/websocket.md). A course keeps at least one instructor."""
    _require(permissions.can_manage_course(actor, course), "Only this course's instructors can change it.")
    teachers = list(Course.objects.select_for_update().get(pk=course.pk).instructors.values_list("pk", flat=True))
    if instructor.pk not in teachers:
        raise ValidationError(f"{instructor.username} does not teach {course.code}.")
    if len(teachers) == 1:
        raise ValidationError(f"{instructor.username} is the only instructor of {course.code}; add another first.")
    course.instructors.remove(instructor)
    realtime.access_changed([instructor.pk])


@transaction.atomic
def join_code_rotate(*, course: Course, actor: AbstractBaseUser, enabled: bool = True) -> Course:
    """A fresh join code (the old one stops working), or none to close self-enrollment."""
    _require(permissions.can_manage_course(actor, course), "Only this course's instructors can change it.")
    course.join_code = _new_join_code() if enabled else None
    course.save(update_fields=["join_code", "updated_at"])
    return course


# Roster


def enrollment_add(
    *,
    course: Course,
    actor: AbstractBaseUser,
    student: AbstractBaseUser,
    source: str = Enrollment.Source.MANUAL,
) -> Enrollment:
    _require(permissions.can_manage_course(actor, course), ROSTER_WORDS)
    with transaction.atomic():
        accounts_services.student_role_ensure(student)
        enrollment, _ = Enrollment.objects.get_or_create(course=course, student=student, defaults={"source": source})
    return enrollment


@transaction.atomic
def enrollment_remove(*, enrollment: Enrollment, actor: AbstractBaseUser) -> None:
    """Take a student off the roster. The account and their labs stay (they can still read their
    labs, not use them); their open live pages check again what they may see (docs/websocket.md)."""
    _require(
        permissions.can_manage_course(actor, enrollment.course),
        "Only this course's instructors can change its roster.",
    )
    enrollment.delete()
    realtime.access_changed([enrollment.student_id])


ROSTER_WORDS = "Only this course's instructors can change its roster."


@dataclass(frozen=True)
class RosterAdded:
    """One student added to a roster: the enrollment, the password Nestlab made up for a new
    account (shown once) or None, and whether they were not enrolled before."""

    enrollment: Enrollment
    generated_password: str | None
    newly_enrolled: bool


@transaction.atomic
def roster_add(
    *,
    course: Course,
    actor: AbstractBaseUser,
    username: str,
    email: str = "",
    first_name: str = "",
    last_name: str = "",
    password: str | None = None,
) -> RosterAdded:
    """Enroll one student, the one rule of the roster's Add and of ``POST enrollments``: the account
    called ``username``; or, when there is none and account details are given (an email, a name
    or a password), a new student account. A username alone that names nobody is refused (a typo
    must not make an account), and so are details for an account that exists (they would be
    ignored). A refused enrollment leaves no new account behind."""
    _require(permissions.can_manage_course(actor, course), ROSTER_WORDS)
    details = {"email": email, "first_name": first_name, "last_name": last_name, "password": password}
    given = any(details.values())
    student = User.objects.filter(username=username).first()
    generated = None
    if student is None:
        if not given:
            raise ValidationError(
                {
                    "username": f"No account is called {username}. "
                    "Give an email or a name as well to create a student account."
                }
            )
        student, generated = accounts_services.student_create(actor=actor, username=username, **details)
    elif given:
        raise ValidationError(
            {"username": f"An account called {username} exists already: leave the other fields empty to enroll it."}
        )
    newly = not course.enrollments.filter(student=student).exists()
    enrollment = enrollment_add(course=course, actor=actor, student=student)
    return RosterAdded(enrollment, generated, newly)


@dataclass
class RosterImport:
    """What a roster upload did: who was enrolled, who already was, which accounts were made."""

    enrolled: list[str] = field(default_factory=list)
    already_enrolled: list[str] = field(default_factory=list)
    created: list[tuple[str, str | None]] = field(default_factory=list)
    """(username, generated password or None when the file gave one)."""


class RosterError(ValidationError):
    """A roster file with problems; ``lines`` maps line numbers to what is wrong there."""

    def __init__(self, lines: dict[int, str] | None = None, message: str | None = None) -> None:
        self.lines = lines or {}
        text = message or "; ".join(f"line {n}: {problem}" for n, problem in sorted(self.lines.items()))
        super().__init__(text)


def _read_roster(data: bytes) -> list[tuple[int, dict[str, str]]]:
    if len(data) > ROSTER_MAX_BYTES:
        raise RosterError(message=f"The file is larger than {ROSTER_MAX_BYTES // 1024} KB.")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise RosterError(message="The file is not UTF-8 text; save it as CSV UTF-8.") from error
    reader = csv.DictReader(io.StringIO(text, newline=""))
    if reader.fieldnames is None:
        raise RosterError(message="The file is empty.")
    columns = [name.strip().lower() for name in reader.fieldnames]
    reader.fieldnames = columns
    unknown = [name for name in columns if name not in ROSTER_COLUMNS]
    if unknown or ("username" not in columns and "email" not in columns):
        raise RosterError(
            message=f"The header must name columns from {', '.join(ROSTER_COLUMNS)} "
            f"(username or email required); found {', '.join(columns) or 'nothing'}."
        )
    rows = []
    try:
        for line, row in _rows_with_lines(reader):
            if line - 1 > ROSTER_MAX_ROWS:
                raise RosterError(message=f"The file has more than {ROSTER_MAX_ROWS} rows.")
            if None in row:
                raise RosterError({line: "more values than columns"})
            cleaned = {key: (value or "").strip() for key, value in row.items()}
            if any(cleaned.values()):
                rows.append((line, cleaned))
    except csv.Error as error:
        # e.g. a value over the csv module's field limit (131,072 characters), or a stray NUL
        raise RosterError({reader.line_num + 1: _csv_problem(error)}) from error
    return rows


def _rows_with_lines(reader: csv.DictReader):
    for row in reader:
        yield reader.line_num, row


def _csv_problem(error: csv.Error) -> str:
    text = str(error)
    if "field larger than field limit" in text:
        return f"a value is longer than {csv.field_size_limit():,} characters"
    return f"not readable as CSV ({text[:80]})"


def roster_import_csv(*, course: Course, actor: AbstractBaseUser, data: bytes) -> RosterImport:
    """Enroll every row of a CSV file, creating student accounts as needed; all or nothing.

    Columns (header row required, any order): username, email, first_name, last_name,
    password. A row needs a username or an email (the username then defaults to the
    part before the @). Every problem is reported with its line number and nothing of
    the file is applied.
    """
    _require(permissions.can_manage_course(actor, course), "Only this course's instructors can change its roster.")
    rows = _read_roster(data)
    problems: dict[int, str] = {}
    seen: dict[str, int] = {}
    planned: list[tuple[int, dict[str, str]]] = []
    for line, row in rows:
        username = row.get("username") or row.get("email", "").split("@")[0]
        email = row.get("email", "")
        if not username:
            problems[line] = "no username or email"
            continue
        if email:
            try:
                validate_email(email)
            except ValidationError:
                problems[line] = f"'{email}' is not an email address"
                continue
        try:
            User.username_validator(username)
        except ValidationError:
            problems[line] = f"'{username}' is not a valid username (letters, digits and @.+-_ only)"
            continue
        if username in seen:
            problems[line] = f"'{username}' is also on line {seen[username]}"
            continue
        seen[username] = line
        existing = User.objects.filter(username=username).first()
        if existing is not None and (roles.is_admin(existing) or roles.is_instructor(existing)):
            problems[line] = f"'{username}' is a staff account, not a student"
            continue
        if existing is None and row.get("password"):
            names = {name: row.get(name, "") for name in ("email", "first_name", "last_name")}
            try:
                validate_password(row["password"], User(username=username, **names))
            except ValidationError as weak:
                problems[line] = f"the password is not accepted: {' '.join(weak.messages)}"
                continue
        planned.append((line, {**row, "username": username}))
    if problems:
        raise RosterError(problems)

    result = RosterImport()
    try:
        with transaction.atomic():
            for _line, row in planned:
                user = User.objects.filter(username=row["username"]).first()
                if user is None:
                    user, generated = accounts_services.student_create(
                        actor=actor,
                        username=row["username"],
                        email=row.get("email", ""),
                        first_name=row.get("first_name", ""),
                        last_name=row.get("last_name", ""),
                        password=row.get("password") or None,
                    )
                    result.created.append((user.username, generated))
                else:
                    accounts_services.student_role_ensure(user)
                _, made = Enrollment.objects.get_or_create(
                    course=course, student=user, defaults={"source": Enrollment.Source.CSV}
                )
                (result.enrolled if made else result.already_enrolled).append(user.username)
    except (ValidationError, IntegrityError) as error:
        raise RosterError(message=f"The roster could not be applied: {error}") from error
    return result


def course_join(*, student: AbstractBaseUser, code: str) -> Enrollment:
    """A student enrolls themself with a course's join code."""
    _require(roles.is_student(student), "Only student accounts can join courses with a code.")
    course = Course.objects.filter(join_code=code.strip().upper()).first()
    if course is None:
        raise ValidationError({"code": "No course has that join code. Check it with your instructor."})
    if course.state != Course.State.OPEN:
        raise ValidationError({"code": f"{course.title} is not open for enrollment."})
    enrollment, _ = Enrollment.objects.get_or_create(
        course=course, student=student, defaults={"source": Enrollment.Source.JOIN_CODE}
    )
    return enrollment


@transaction.atomic
def identity_enrollments_apply(*, user: AbstractBaseUser, course_codes: set[str], source: str) -> list[Enrollment]:
    """Enroll a student in the courses their school sign-in names (a directory group or a claim
    mapped to a course code; accounts.services.sign_in_hooks). Only open or draft courses take
    them; an enrollment is never removed here (instructors and roster syncs do that). Staff
    accounts are never enrolled."""
    if not roles.is_student(user) or not course_codes:
        return []
    added = []
    for course in Course.objects.filter(code__in=course_codes, state__in=[Course.State.OPEN, Course.State.DRAFT]):
        enrollment, created = Enrollment.objects.get_or_create(
            course=course, student=user, defaults={"source": Enrollment.Source.IDENTITY}
        )
        if created:
            added.append(enrollment)
            audit.audit_record(
                category=audit.Category.ACCOUNT,
                action="course.enroll_from_identity",
                result=audit.Result.SUCCEEDED,
                target=audit.describe(course),
                actor_username=user.get_username(),
                detail=f"{user.get_username()} enrolled in {course.code} by their sign-in through the {source}.",
            )
    return added


# Quotas


@transaction.atomic
def quota_update(*, course: Course, actor: AbstractBaseUser, **limits: int | None) -> CourseQuota:
    """Set limits (None: no limit; 0: none allowed). Lowering below usage is allowed."""
    _require(permissions.can_set_quota(actor, course), "Only admins can set quotas.")
    quota, _ = CourseQuota.objects.select_for_update().get_or_create(course=course)
    for name, value in limits.items():
        if name not in CourseQuota.LIMIT_FIELDS:
            raise ValidationError({name: "Not a quota limit."})
        setattr(quota, name, value)
    quota.updated_by = actor
    save_valid(quota)
    return quota


def top_up_grant(
    *,
    course: Course,
    actor: AbstractBaseUser,
    student: AbstractBaseUser,
    extra_lab_hours: int = 0,
    extra_labs: int = 0,
    reason: str = "",
) -> QuotaTopUp:
    _require(permissions.can_grant_top_up(actor, course), "Only this course's instructors and admins can top up.")
    if not course.enrollments.filter(student=student).exists():
        raise ValidationError({"student": f"{student.username} is not enrolled in {course.code}."})
    if extra_lab_hours <= 0 and extra_labs <= 0:
        raise ValidationError("A top-up adds at least one lab hour or one lab.")
    top_up = QuotaTopUp(
        course=course,
        student=student,
        extra_lab_hours=extra_lab_hours,
        extra_labs=extra_labs,
        reason=reason,
        granted_by=actor,
    )
    save_valid(top_up)
    return top_up


# Class sessions

SESSION_FIELDS = (
    "title",
    "repeat",
    "first_date",
    "last_date",
    "weekdays",
    "start_time",
    "duration_minutes",
    "time_zone",
    "ready_minutes_before",
)
SESSIONS_WORDS = "Only this course's instructors and admins can change its sessions."


def _session_fields(fields: dict[str, Any]) -> dict[str, Any]:
    unknown = set(fields) - set(SESSION_FIELDS)
    if unknown:
        raise ValidationError({name: "Not a field of a class session." for name in sorted(unknown)})
    return fields


@transaction.atomic
def class_session_create(*, course: Course, actor: AbstractBaseUser, **fields: Any) -> ClassSession:
    """A meeting time of the course (once or weekly); its labs are made ready before each start
    (labs.sessions). Validated by the model, so the page, the API and the admin refuse alike."""
    _require(permissions.can_manage_course(actor, course), SESSIONS_WORDS)
    session = ClassSession(course=course, **_session_fields(fields))
    save_valid(session)
    return session


@transaction.atomic
def class_session_update(*, session: ClassSession, actor: AbstractBaseUser, **fields: Any) -> ClassSession:
    """Change a meeting time. Occurrences already prepared stay prepared; the new times are
    prepared when they come."""
    _require(permissions.can_manage_course(actor, session.course), SESSIONS_WORDS)
    for name, value in _session_fields(fields).items():
        setattr(session, name, value)
    save_valid(session)
    return session


@transaction.atomic
def class_session_delete(*, session: ClassSession, actor: AbstractBaseUser) -> None:
    """Remove a meeting time; labs already made ready for it stay (their idle rules apply)."""
    _require(permissions.can_manage_course(actor, session.course), SESSIONS_WORDS)
    session.delete()
