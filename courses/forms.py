"""Forms of the course pages: they parse and check input; services decide and write."""

from __future__ import annotations

import zoneinfo

from django import forms
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator

from courses import selectors
from courses.models import (
    CHECK_COMMAND_MAX_CHARACTERS,
    CHECK_TIMEOUT_MAX_SECONDS,
    GUIDE_POINTS_MAX,
    GUIDE_STEP_MAX_CHARACTERS,
    MANUAL_MAX_CHARACTERS,
    ClassSession,
    Course,
    CourseQuota,
    GuideCheck,
    GuideVariable,
    LabTemplate,
    TemplateVM,
    VCenterEndpoint,
)
from courses.services import ENDPOINT_FIELDS, ROSTER_COLUMNS, ROSTER_MAX_BYTES, SESSION_FIELDS

CLONE_MODES = [
    ("linked", "Linked clones: start in seconds from the baseline snapshot, share its disks"),
    ("full", "Full clones: copy every disk (slower, more storage, independent of the template)"),
]


def _clone_mode(value: str) -> bool:
    return value == "linked"


class EndpointForm(forms.ModelForm):
    """A vCenter endpoint. The password is write-only: never shown, empty keeps the stored one."""

    password = forms.CharField(
        required=False,
        strip=False,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text="Leave empty to keep the stored password.",
    )
    console_password = forms.CharField(
        required=False,
        strip=False,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text="Stored encrypted; leave empty to keep the stored one.",
    )

    class Meta:
        model = VCenterEndpoint
        fields = list(ENDPOINT_FIELDS)
        labels = {
            "url": "Address",
            "username": "User name",
            "verify_tls": "Verify the TLS certificate",
            "compute_path": "Cluster or resource pool",
            "lab_switch": "Switch for lab networks",
            "vlan_min": "First VLAN of the lab range",
            "vlan_max": "Last VLAN of the lab range",
            "concurrency_limit": "Concurrent clone tasks",
            "template_source_folders": "Template source folders",
            "console_username": "Console account",
        }
        help_texts = {
            "username": "A vCenter account with the privileges in docs/deployment.md, e.g. nestlab@vsphere.local.",
            "datastore": "Where lab VMs are stored, e.g. LocalDS_0.",
        }
        widgets = {"template_source_folders": forms.Textarea(attrs={"rows": 3})}

    def __init__(self, *args, creating: bool = False, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if creating:
            self.fields["password"].required = True
            self.fields["password"].help_text = "Stored encrypted; never shown again."

    def clean(self) -> dict:
        cleaned = super().clean()
        # The model's own check (a changed address needs the password again) sees what was typed.
        if cleaned.get("password"):
            self.instance.set_password(cleaned["password"])
        if cleaned.get("console_password"):
            self.instance.set_console_password(cleaned["console_password"])
        return cleaned


class TemplateCreateForm(forms.Form):
    name = forms.CharField(max_length=120)
    endpoint = forms.ModelChoiceField(
        queryset=VCenterEndpoint.objects.none(), label="vCenter", empty_label=None,
        help_text="Where the template's VMs are, and where student labs will run.",
    )  # fmt: skip
    description = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))
    clone_mode = forms.TypedChoiceField(
        choices=CLONE_MODES, coerce=_clone_mode, initial="linked", widget=forms.RadioSelect, label="Student copies"
    )
    networks = forms.CharField(
        label="Lab networks",
        initial="lab",
        max_length=400,
        help_text="Lab networks, separated by commas (e.g. lab, storage). Each student lab gets its own copy.",
    )

    extra_endpoints = forms.ModelMultipleChoiceField(
        queryset=None,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        label="Also publish to",
        help_text="Other vCenters holding a copy of its VMs at the same inventory path (docs/deployment.md).",
    )

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["endpoint"].queryset = selectors.endpoint_list()
        self.fields["extra_endpoints"].queryset = selectors.endpoint_list()

    def clean_networks(self) -> tuple[str, ...]:
        names = [name.strip() for name in self.cleaned_data["networks"].split(",") if name.strip()]
        field = forms.SlugField(max_length=40)
        for name in names:
            try:
                field.clean(name)
            except ValidationError as error:
                raise ValidationError(f"'{name}' is not a network name: use letters, digits, - and _.") from error
        if len(set(names)) != len(names):
            raise ValidationError("A network is named twice.")
        return tuple(names)


class TemplateForm(forms.Form):
    """The draft's details and manual."""

    name = forms.CharField(max_length=120)
    description = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))
    clone_mode = forms.TypedChoiceField(
        choices=CLONE_MODES, coerce=_clone_mode, widget=forms.RadioSelect, label="Student copies"
    )
    manual = forms.CharField(
        required=False,
        max_length=MANUAL_MAX_CHARACTERS,
        widget=forms.Textarea(attrs={"rows": 14, "class": "manual-source"}),
        label="Lab manual (Markdown)",
        help_text="Students read it on their course page. Headings with #, lists with -, code with `backticks`.",
    )
    extra_endpoints = forms.ModelMultipleChoiceField(
        queryset=None,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        label="Also publish to",
        help_text="Other vCenters holding a copy of its VMs at the same inventory path (docs/deployment.md).",
    )

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["extra_endpoints"].queryset = selectors.endpoint_list()

    @classmethod
    def for_template(cls, template: LabTemplate, data=None) -> TemplateForm:
        initial = {
            "name": template.name,
            "description": template.description,
            "clone_mode": "linked" if template.linked_clones else "full",
            "manual": template.manual,
            "extra_endpoints": list(template.extra_endpoints.all()),
        }
        return cls(data, initial=initial)

    def service_fields(self) -> dict:
        data = dict(self.cleaned_data)
        data["linked_clones"] = data.pop("clone_mode")
        return data


class NetworkForm(forms.Form):
    name = forms.SlugField(max_length=40, help_text="Letters, digits, - and _ (e.g. lab, storage, vmotion).")
    description = forms.CharField(max_length=200, required=False)


class TemplateVMForm(forms.Form):
    """A VM's settings, with one network per adapter (posted as repeated ``nic_network`` values)."""

    role = forms.SlugField(max_length=40, help_text="Short name in the lab, e.g. esxi-01, vcsa, router.")
    boot_order = forms.IntegerField(min_value=0, max_value=32767, initial=1, help_text="Lower numbers start first.")
    cpu_override = forms.IntegerField(
        required=False, min_value=1, max_value=128, label="vCPUs", help_text="Empty: as in vCenter."
    )
    memory_mb_override = forms.IntegerField(
        required=False,
        validators=[MinValueValidator(128)],
        max_value=4 * 1024 * 1024,
        label="Memory (MB)",
        help_text="Empty: as in vCenter.",
    )
    nested_hv_required = forms.BooleanField(required=False, label="Needs nested hardware virtualization")

    def __init__(self, *args, template: LabTemplate, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.template = template
        self.network_names = [network.name for network in template.networks.all()]
        self.nic_networks: list[str] = []

    def clean(self) -> dict:
        cleaned = super().clean()
        if self.is_bound:
            self.nic_networks = self.data.getlist("nic_network")
            unknown = [name for name in self.nic_networks if name not in self.network_names]
            if unknown:
                raise ValidationError(f"Pick a template network for every adapter (not {', '.join(unknown)}).")
            cleaned["nic_networks"] = self.nic_networks
        return cleaned


class TemplateVMAddForm(TemplateVMForm):
    """The picker's form: the VM it picked, then its settings."""

    source_moref = forms.CharField(max_length=64, widget=forms.HiddenInput)
    source_name = forms.CharField(max_length=255, widget=forms.HiddenInput)
    source_path = forms.CharField(max_length=1024, required=False, widget=forms.HiddenInput)

    def clean(self) -> dict:
        cleaned = super().clean()
        if self.is_bound and not self.nic_networks:
            raise ValidationError("The VM needs at least one adapter on a template network.")
        return cleaned


def vm_edit_form(vm: TemplateVM, data=None) -> TemplateVMForm:
    initial = {
        "role": vm.role,
        "boot_order": vm.boot_order,
        "cpu_override": vm.cpu_override,
        "memory_mb_override": vm.memory_mb_override,
        "nested_hv_required": vm.nested_hv_required,
    }
    form = TemplateVMForm(data, initial=initial, template=vm.template, auto_id=f"vm{vm.pk}_%s")
    form.nic_networks = [nic.network.name for nic in vm.nics.all()]
    return form


class VersionChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, version) -> str:
        return f"{version.template.name} v{version.number}"


class CourseForm(forms.ModelForm):
    template_version = VersionChoiceField(
        queryset=None,
        required=False,
        label="Lab template",
        empty_label="None yet (the course cannot open without one)",
        help_text="A published version; students' labs are built from it.",
    )
    endpoints = forms.ModelMultipleChoiceField(
        queryset=None,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        label="vCenters",
        help_text="Where its labs may be built; none ticked: every vCenter its template version is published to.",
    )

    class Meta:
        model = Course
        fields = ["title", "code", "starts_on", "ends_on", "template_version", "endpoints", "description"]
        labels = {"starts_on": "Starts on", "ends_on": "Ends on"}
        widgets = {
            "starts_on": forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
            "ends_on": forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
            "description": forms.Textarea(attrs={"rows": 2}),
        }

    def __init__(self, *args, user: AbstractBaseUser, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["template_version"].queryset = selectors.published_versions(user=user).order_by(
            "template__name", "-number"
        )
        self.fields["endpoints"].queryset = selectors.endpoint_list()

    def service_fields(self) -> dict:
        return {name: self.cleaned_data[name] for name in self.Meta.fields}


class StudentAddForm(forms.Form):
    """Enroll one student: an existing account by user name, or a new one."""

    username = forms.CharField(max_length=150)
    email = forms.EmailField(required=False)
    first_name = forms.CharField(max_length=150, required=False)
    last_name = forms.CharField(max_length=150, required=False)
    password = forms.CharField(
        required=False,
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
        help_text="For a new account; empty makes one up and shows it to you once.",
    )


class RosterUploadForm(forms.Form):
    file = forms.FileField(
        label="Roster file (CSV)",
        help_text=f"Columns: {', '.join(ROSTER_COLUMNS)}; up to {ROSTER_MAX_BYTES // 1024} KB.",
    )


class InstructorAddForm(forms.Form):
    username = forms.CharField(max_length=150, label="Instructor's user name")


class JoinForm(forms.Form):
    code = forms.CharField(max_length=16, label="Join code", help_text="The code your instructor gave you.")


def _limit_field(name: str) -> forms.IntegerField:
    model_field = CourseQuota._meta.get_field(name)
    return forms.IntegerField(
        required=False, min_value=0, max_value=2**31 - 1, help_text=model_field.help_text, label=_LIMIT_LABELS[name]
    )


_LIMIT_LABELS = {
    "running_labs": "Labs running at once",
    "labs_per_student": "Labs per student",
    "snapshots_per_lab": "Snapshots per lab",
    "vcpu_total": "Virtual CPUs (total)",
    "memory_gb_total": "Memory, GB (total)",
    "storage_gb_total": "Datastore, GB (total)",
    "lab_hours_per_student": "Lab hours per student",
    "lifetime_days_after_end": "Days labs are kept after the end",
    "lease_hours": "Lease, hours per start",
    "lease_extensions": "Lease extensions per run",
    "idle_minutes": "Idle power-off, minutes",
    "pool_labs": "Warm-pool labs (built ahead)",
}


class QuotaForm(forms.Form):
    """Every limit of a course. Blank: no limit. 0: none allowed."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        for name in CourseQuota.LIMIT_FIELDS:
            self.fields[name] = _limit_field(name)

    @classmethod
    def for_quota(cls, quota: CourseQuota, data=None) -> QuotaForm:
        return cls(data, initial={name: getattr(quota, name) for name in CourseQuota.LIMIT_FIELDS})


class TopUpForm(forms.Form):
    student = forms.ModelChoiceField(queryset=None, empty_label="Choose a student")
    extra_lab_hours = forms.IntegerField(
        required=False, min_value=0, max_value=10000, initial=0, label="Extra lab hours"
    )
    extra_labs = forms.IntegerField(required=False, min_value=0, max_value=100, initial=0, label="Extra labs")
    reason = forms.CharField(max_length=200, required=False)

    def clean_extra_lab_hours(self) -> int:
        return self.cleaned_data["extra_lab_hours"] or 0

    def clean_extra_labs(self) -> int:
        return self.cleaned_data["extra_labs"] or 0

    def __init__(self, *args, course: Course, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["student"].queryset = (
            get_user_model().objects.filter(enrollments__course=course).order_by("username")
        )
        self.fields["student"].label_from_instance = _person


def _person(user: AbstractBaseUser) -> str:
    full = user.get_full_name()
    return f"{full} ({user.username})" if full else user.username


# The template's lab guide (courses.guides decides; these forms only parse).


class GuideStepForm(forms.Form):
    title = forms.CharField(max_length=120)
    points = forms.IntegerField(
        min_value=0, max_value=GUIDE_POINTS_MAX, initial=0, help_text="What passing the step's checks is worth."
    )
    body = forms.CharField(
        required=False,
        max_length=GUIDE_STEP_MAX_CHARACTERS,
        widget=forms.Textarea(attrs={"rows": 8}),
        label="What to do (Markdown)",
        help_text="{{ name }} shows the lab's value of a variable; images by their file name.",
    )


class GuideCheckForm(forms.Form):
    """Every kind's fields; the page shows those of the chosen kind, the model's clean() says
    which are missing."""

    kind = forms.ChoiceField(choices=GuideCheck.Kind.choices)
    label = forms.CharField(max_length=200, help_text="What is checked, as the student reads it.")
    vm_role = forms.ChoiceField(
        required=False, label="VM", help_text="The template VM the command runs in, or whose state is read."
    )
    command = forms.CharField(
        required=False,
        max_length=CHECK_COMMAND_MAX_CHARACTERS,
        widget=forms.Textarea(attrs={"rows": 3, "spellcheck": "false"}),
        help_text="A shell script run in the VM (/bin/sh) with its guest account; {{ name }} is the lab's value.",
    )
    exit_code = forms.IntegerField(min_value=0, max_value=255, initial=0, label="Exit code that passes")
    output_pattern = forms.CharField(
        required=False, max_length=500, help_text="A regular expression the output must contain."
    )
    timeout_seconds = forms.IntegerField(min_value=1, max_value=CHECK_TIMEOUT_MAX_SECONDS, initial=30)
    prompt = forms.CharField(required=False, max_length=500, label="Question")
    answer_mode = forms.ChoiceField(choices=GuideCheck.AnswerMode.choices, initial=GuideCheck.AnswerMode.EXACT)
    answer = forms.CharField(required=False, max_length=500, help_text="Never shown to students.")
    case_sensitive = forms.BooleanField(required=False)
    vm_property = forms.ChoiceField(
        required=False, choices=[("", "—"), *GuideCheck.VMProperty.choices], label="What to read"
    )
    expected = forms.CharField(required=False, max_length=200, help_text="The value that passes (on, 4, a name).")

    def __init__(self, *args, template: LabTemplate, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        roles = list(template.vms.values_list("role", flat=True))
        self.fields["vm_role"].choices = [("", "—"), *((role, role) for role in roles)]


class GuideVariableForm(forms.Form):
    name = forms.CharField(max_length=40, help_text="Used as {{ name }}: lower-case letters, digits and _.")
    kind = forms.ChoiceField(choices=GuideVariable.Kind.choices, initial=GuideVariable.Kind.STRING)
    length = forms.IntegerField(min_value=4, max_value=64, initial=8, help_text="Characters of a random string.")
    minimum = forms.IntegerField(initial=1)
    maximum = forms.IntegerField(initial=100)
    choices = forms.CharField(
        required=False, widget=forms.Textarea(attrs={"rows": 3}), help_text="For a choice: one value a line."
    )

    def clean_choices(self) -> list[str]:
        return [line.strip() for line in self.cleaned_data["choices"].splitlines() if line.strip()]


def guide_variable_form(variable: GuideVariable, data=None) -> GuideVariableForm:
    initial = {name: getattr(variable, name) for name in ("name", "kind", "length", "minimum", "maximum")}
    initial["choices"] = "\n".join(variable.choices or [])
    return GuideVariableForm(data, initial=initial, auto_id=f"var{variable.pk}_%s")


class GuideImageForm(forms.Form):
    """An image for the guide and the manual; courses.guides checks its bytes, name and size."""

    image = forms.FileField(
        label="Image",
        help_text="PNG, JPEG, GIF or WebP, at most 2 MB. Show it in a step or the manual as ![words](its-name.png).",
    )
    name = forms.CharField(
        required=False, max_length=90, label="Name", help_text="Empty: the file's own name (small letters)."
    )


class GuestAccountForm(forms.Form):
    """A VM's guest account for command checks; the password is write-only (never shown again)."""

    guest_username = forms.CharField(
        required=False, max_length=64, label="Guest user name", help_text="Empty forgets the account."
    )
    guest_password = forms.CharField(
        required=False,
        max_length=256,
        label="Guest password",
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text="Empty keeps the stored one.",
    )


def guide_editor_forms(template: LabTemplate, bound_key: str | None = None, bound_form=None) -> dict:
    """Every form of the template page's guide editor, filled from the draft; the one that was
    posted and refused (``bound_key``: "new-step", "step-<id>", "check-<id>", "new-check-<step id>",
    "variable-<id>", "new-variable", "guest-<vm id>") keeps what was typed and its errors."""

    def pick(key: str, make):
        return bound_form if key == bound_key else make()

    steps = []
    for step in template.guide_steps.prefetch_related("checks").order_by("position"):
        checks = [
            {
                "check": check,
                "form": pick(
                    f"check-{check.pk}",
                    lambda check=check: GuideCheckForm(
                        initial={name: getattr(check, name) for name in GuideCheckForm.base_fields},
                        template=template,
                        auto_id=f"check{check.pk}_%s",
                    ),
                ),
            }
            for check in step.checks.all()
        ]
        own_keys = {f"step-{step.pk}", f"new-check-{step.pk}", *(f"check-{entry['check'].pk}" for entry in checks)}
        for entry in checks:
            entry["open"] = bound_key == f"check-{entry['check'].pk}"
        steps.append(
            {
                "step": step,
                # Open where a refused form is, so its errors show.
                "open": bound_key in own_keys,
                "new_check_open": bound_key == f"new-check-{step.pk}",
                "form": pick(
                    f"step-{step.pk}",
                    lambda step=step: GuideStepForm(
                        initial={"title": step.title, "points": step.points, "body": step.body},
                        auto_id=f"step{step.pk}_%s",
                    ),
                ),
                "checks": checks,
                "new_check_form": pick(
                    f"new-check-{step.pk}",
                    lambda step=step: GuideCheckForm(template=template, auto_id=f"newcheck{step.pk}_%s"),
                ),
            }
        )
    variables = [
        {
            "variable": variable,
            "form": pick(f"variable-{variable.pk}", lambda variable=variable: guide_variable_form(variable)),
            "open": bound_key == f"variable-{variable.pk}",
        }
        for variable in template.guide_variables.all()
    ]
    guests = [
        {
            "vm": vm,
            "form": pick(
                f"guest-{vm.pk}",
                lambda vm=vm: GuestAccountForm(
                    initial={"guest_username": vm.guest_username}, auto_id=f"guest{vm.pk}_%s"
                ),
            ),
        }
        for vm in template.vms.all()
    ]
    return {
        "guide_steps": steps,
        "guide_variables": variables,
        "guest_accounts": guests,
        "new_step_form": pick("new-step", lambda: GuideStepForm(auto_id="newstep_%s")),
        "new_variable_form": pick("new-variable", lambda: GuideVariableForm(auto_id="newvar_%s")),
        "guide_images": list(template.guide_images.defer("data")),
        "guide_image_form": pick("new-image", lambda: GuideImageForm(auto_id="newimage_%s")),
        "guide_bound": bound_key,
    }


def _time_zones() -> list[tuple[str, str]]:
    return [(name, name) for name in sorted(zoneinfo.available_timezones())]


class ClassSessionForm(forms.ModelForm):
    """A meeting time of the course. The model's validators and ``clean`` decide, as for the API."""

    weekdays = forms.TypedMultipleChoiceField(
        choices=sorted(ClassSession.WEEKDAYS.items()),
        coerce=int,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        label="Weekdays (weekly)",
    )
    time_zone = forms.ChoiceField(choices=_time_zones, label="Time zone")

    class Meta:
        model = ClassSession
        fields = list(SESSION_FIELDS)
        labels = {
            "first_date": "Date (or first date, weekly)",
            "last_date": "Last date (weekly)",
            "start_time": "Starts at (local time)",
            "duration_minutes": "Minutes",
            "ready_minutes_before": "Labs ready this many minutes before",
        }
        widgets = {
            "first_date": forms.DateInput(attrs={"type": "date"}),
            "last_date": forms.DateInput(attrs={"type": "date"}),
            "start_time": forms.TimeInput(attrs={"type": "time"}),
            "repeat": forms.RadioSelect,
        }

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("initial", {"time_zone": settings.TIME_ZONE})
        super().__init__(*args, **kwargs)

    def service_fields(self) -> dict:
        return {name: self.cleaned_data[name] for name in SESSION_FIELDS if name in self.cleaned_data}
