"""Configuration models: what the portal knows about vCenters, templates and courses."""

from __future__ import annotations

import re
import zoneinfo

import regex
from django.conf import settings
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.core.validators import MaxLengthValidator, MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from django.utils import timezone

from core import crypto
from core.markdown import render_markdown, stored_html
from courses import bounds

VLAN_ID_VALIDATORS = [MinValueValidator(1), MaxValueValidator(4094)]
# A lab manual's size: 64 K characters is a long manual (the demo's is 2 K) and renders in well
# under a second even when built to be slow (bench/markdown_worst_case.py).
MANUAL_MAX_CHARACTERS = 65_536

# The VM folder, right below the datacenter's, that holds every lab Nestlab builds.
LABS_FOLDER_NAME = "Nestlab Labs"
TEMPLATE_SOURCE_FOLDERS_MAX = 20
LAB_VM_SOURCE_WORDS = (
    "is a VM of a Nestlab lab (a student's copy), not a template source: pick the VM the lab was built from."
)


def path_under(path: str, folder: str) -> bool:
    """Whether an inventory path is the folder itself or anywhere below it."""
    path, folder = path.rstrip("/"), folder.rstrip("/")
    return path == folder or path.startswith(folder + "/")


class VCenterEndpoint(models.Model):
    """A vCenter that hosts labs, and where on it labs are placed.

    The password is stored encrypted (core.crypto) and is write-only everywhere:
    set it with ``set_password`` and read it only to open a vSphere session.
    """

    name = models.CharField(max_length=100, unique=True)
    url = models.CharField(
        max_length=255,
        help_text="Address of the vCenter, e.g. https://vcenter.example.edu (the /sdk path is implied).",
    )
    username = models.CharField(max_length=150)
    password_ciphertext = models.TextField(editable=False)
    verify_tls = models.BooleanField(
        default=True, help_text="Check the vCenter's TLS certificate (turn off only for labs)."
    )
    datacenter = models.CharField(max_length=100)
    compute_path = models.CharField(
        max_length=255,
        help_text="Inventory path of the cluster or resource pool labs run in, e.g. /DC0/host/DC0_C0.",
    )
    datastore = models.CharField(max_length=100)
    lab_switch = models.CharField(
        max_length=100,
        help_text=(
            "Standard vSwitch name (present on every host of the cluster) or distributed switch name, for lab networks."
        ),
    )
    vlan_min = models.PositiveSmallIntegerField(validators=VLAN_ID_VALIDATORS, default=2000)
    vlan_max = models.PositiveSmallIntegerField(validators=VLAN_ID_VALIDATORS, default=2999)
    console_username = models.CharField(
        max_length=150,
        blank=True,
        help_text=(
            "A vCenter account that may only open consoles of lab VMs (docs/deployment.md). Console links "
            "log the browser in as this account, so it must not be the account above. Empty: no consoles."
        ),
    )
    console_password_ciphertext = models.TextField(blank=True, editable=False)
    template_source_folders = models.TextField(
        blank=True,
        max_length=4000,
        help_text=(
            "Folders instructors may pick template VMs from, one inventory path per line (e.g. /DC0/vm/Templates), "
            "each with everything below it. Empty: any folder of the datacenter except Nestlab's own lab folder."
        ),
    )
    concurrency_limit = models.PositiveSmallIntegerField(
        default=8,
        validators=bounds.upto(bounds.MAX_CONCURRENCY_LIMIT, minimum=1),
        help_text="How many clone-class tasks may run on this vCenter at once.",
    )
    # Several vCenters per course (issue 13): placement (labs.placement) puts each new lab on
    # the endpoint with the most room; these say when an endpoint has none. Blank: no limit.
    in_maintenance = models.BooleanField(
        default=False,
        help_text="In maintenance: takes no new labs (the labs already on it keep running).",
    )
    max_running_vms = models.PositiveIntegerField(
        null=True,
        blank=True,
        validators=bounds.upto(bounds.MAX_ENDPOINT_VMS, minimum=1),
        help_text="At most this many lab VMs on this vCenter at once; empty: no limit.",
    )
    max_memory_gb = models.PositiveIntegerField(
        null=True,
        blank=True,
        validators=bounds.upto(bounds.MAX_MEMORY_GB, minimum=1),
        help_text="At most this much memory configured on its lab VMs, in GB; empty: no limit.",
    )
    max_storage_gb = models.PositiveIntegerField(
        null=True,
        blank=True,
        validators=bounds.upto(bounds.MAX_STORAGE_GB, minimum=1),
        help_text="At most this much disk on its lab VMs, in GB; empty: no limit.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        verbose_name = "vCenter endpoint"

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        errors: dict[str, str] = {}
        if self.vlan_min is not None and self.vlan_max is not None and self.vlan_min > self.vlan_max:
            errors["vlan_max"] = "The VLAN range ends before it starts."
        scheme = self.url.split("://", 1)[0].lower() if "://" in (self.url or "") else ""
        if scheme not in ("https", "http"):
            errors["url"] = "The address must start with https:// (e.g. https://vcenter.example.edu)."
        elif scheme == "http" and self.verify_tls:
            errors["url"] = (
                "http:// sends the password unencrypted: use https://, or turn TLS verification off for a lab vCenter."
            )
        errors.update(self._passwords_follow_the_address())
        if problem := self._source_folders_problem():
            errors["template_source_folders"] = problem
        if errors:
            raise ValidationError(errors)

    def _passwords_follow_the_address(self) -> dict[str, str]:
        """A changed address or TLS check needs the passwords typed again (docs/security.md, finding 3):
        else the stored password would be sent to whatever host the new address names."""
        if self.pk is None:
            return {}
        stored = (
            type(self)
            .objects.filter(pk=self.pk)
            .values("url", "verify_tls", "password_ciphertext", "console_password_ciphertext")
            .first()
        )
        if stored is None or (stored["url"] == self.url and stored["verify_tls"] == self.verify_tls):
            return {}
        what = "address" if stored["url"] != self.url else "TLS verification"
        errors = {}
        # Fernet ciphertexts are salted: a password typed again never equals the stored ciphertext.
        if self.password_ciphertext == stored["password_ciphertext"]:
            errors["password"] = f"The {what} changed: type the password again (it is sent only to this vCenter)."
        if (
            self.console_password_ciphertext
            and self.console_password_ciphertext == stored["console_password_ciphertext"]
        ):
            errors[NON_FIELD_ERRORS] = f"The {what} changed: type the console account's password again too."
        return errors

    @property
    def labs_folder_path(self) -> str:
        """Where Nestlab builds labs on this endpoint (``labs.jobs.lab_build``)."""
        return f"/{self.datacenter}/vm/{LABS_FOLDER_NAME}"

    @property
    def source_folders(self) -> list[str]:
        """``template_source_folders`` as paths, without blanks or trailing slashes."""
        return [line.strip().rstrip("/") for line in self.template_source_folders.splitlines() if line.strip()]

    def source_path_refusal(self, path: str) -> str | None:
        """Why a VM at this inventory path may not be a template source, in words; None if it may.

        Nestlab's own lab folder never is (docs/security.md, finding 2); when an admin named
        source folders, only VMs in them are."""
        if path and path_under(path, self.labs_folder_path):
            return LAB_VM_SOURCE_WORDS
        folders = self.source_folders
        if folders and not any(path_under(path or "", folder) for folder in folders):
            return f"is outside the folders template VMs come from on {self.name}: {', '.join(folders)}."
        return None

    def _source_folders_problem(self) -> str | None:
        folders = self.source_folders
        if len(folders) > TEMPLATE_SOURCE_FOLDERS_MAX:
            return f"At most {TEMPLATE_SOURCE_FOLDERS_MAX} folders."
        vm_root = f"/{self.datacenter}/vm"
        for folder in folders:
            if not path_under(folder, vm_root):
                return f"{folder[:80]} is not a VM folder of the datacenter: each path starts with {vm_root}."
            if path_under(folder, self.labs_folder_path):
                return f"{folder[:80]} holds Nestlab's own labs, which are never template sources."
        return None

    def set_password(self, raw_password: str) -> None:
        self.password_ciphertext = crypto.encrypt(raw_password)

    def get_password(self) -> str:
        return crypto.decrypt(self.password_ciphertext)

    def set_console_password(self, raw_password: str) -> None:
        self.console_password_ciphertext = crypto.encrypt(raw_password)

    def get_console_password(self) -> str:
        return crypto.decrypt(self.console_password_ciphertext)

    @property
    def has_console_account(self) -> bool:
        return bool(self.console_username and self.console_password_ciphertext)


class LabTemplate(models.Model):
    """The editable blueprint of a lab: VMs picked from an endpoint, their networks, a manual.

    The template itself is the draft. Publishing freezes it into a numbered
    ``TemplateVersion``; editing afterwards bumps ``revision`` and so starts a new draft.
    """

    name = models.CharField(max_length=120)
    description = models.TextField(blank=True)
    endpoint = models.ForeignKey(VCenterEndpoint, on_delete=models.PROTECT, related_name="templates")
    extra_endpoints = models.ManyToManyField(
        VCenterEndpoint,
        blank=True,
        related_name="extra_templates",
        help_text=(
            "Other vCenters this template is published to: each holds a copy of its VMs at the same inventory "
            "path under its own datacenter (a subscribed content library, say), and gets a baseline of its own."
        ),
    )
    manual = models.TextField(
        blank=True,
        max_length=MANUAL_MAX_CHARACTERS,
        validators=[MaxLengthValidator(MANUAL_MAX_CHARACTERS)],
        help_text=f"The lab manual, in Markdown (at most {MANUAL_MAX_CHARACTERS:,} characters).",
    )
    manual_html = models.TextField(
        blank=True, editable=False, help_text="The manual rendered and sanitised, once, whenever it is saved."
    )
    linked_clones = models.BooleanField(
        default=True,
        help_text="Linked clones from the baseline snapshot start in seconds; full clones copy every disk.",
    )
    owners = models.ManyToManyField(
        settings.AUTH_USER_MODEL, related_name="owned_templates", help_text="Instructors who may edit it."
    )
    revision = models.PositiveIntegerField(default=1, help_text="Bumped by every edit of the draft.")
    last_publish_failure = models.JSONField(
        default=list,
        blank=True,
        editable=False,
        help_text="Why the last publish failed, one problem per item (a failed publish leaves no version); "
        "empty once a publish succeeds.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name", "id"]

    def __str__(self) -> str:
        return self.name

    def save(self, *args, **kwargs) -> None:
        """Renders the manual when it changed (every path: services, admin): pages show the stored
        HTML and never render a manual per view (docs/security.md, finding 4)."""
        if self._state.adding or self.manual != getattr(self, "_saved_manual", None) or not self.manual_html:
            self.manual_html = link_guide_images(render_markdown(self.manual), self.pk) if self.manual else ""
            update_fields = kwargs.get("update_fields")
            if update_fields is not None and "manual" in update_fields:
                kwargs["update_fields"] = {*update_fields, "manual_html"}
        adding = self._state.adding
        super().save(*args, **kwargs)
        if adding and "<img" in self.manual_html:
            # Its images' addresses name the template, which has an id only now.
            self.manual_html = link_guide_images(self.manual_html, self.pk)
            LabTemplate.objects.filter(pk=self.pk).update(manual_html=self.manual_html)
        self._saved_manual = self.manual

    @classmethod
    def from_db(cls, db, field_names, values):
        template = super().from_db(db, field_names, values)
        template._saved_manual = template.__dict__.get("manual")
        return template

    @property
    def manual_markup(self):
        """The draft's manual as HTML for a page (rendered when saved)."""
        return stored_html(self.manual_html)

    def mark_edited(self) -> None:
        """Any edit of the draft (its fields, VMs, networks, guide): a new revision, so the next
        publish makes a new version. An UPDATE with F(), so concurrent edits each count."""
        LabTemplate.objects.filter(pk=self.pk).update(revision=models.F("revision") + 1, updated_at=timezone.now())
        self.refresh_from_db(fields=["revision", "updated_at"])


class TemplateNetwork(models.Model):
    """A network of the lab (e.g. "lab" or "storage"); every student lab gets its own copy."""

    template = models.ForeignKey(LabTemplate, on_delete=models.CASCADE, related_name="networks")
    name = models.SlugField(max_length=40)
    description = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["template", "name"], name="template_network_name_unique")]

    def __str__(self) -> str:
        return self.name


class TemplateVM(models.Model):
    """One VM of a template: which vCenter VM it is cloned from, its role and its settings."""

    template = models.ForeignKey(LabTemplate, on_delete=models.CASCADE, related_name="vms")
    role = models.SlugField(max_length=40, help_text="Short name in the lab, e.g. esxi-01, vcsa, router.")
    source_moref = models.CharField(max_length=64)
    source_name = models.CharField(max_length=255)
    source_path = models.CharField(max_length=1024, blank=True)
    boot_order = models.PositiveSmallIntegerField(default=1, help_text="Lower numbers power on first.")
    cpu_override = models.PositiveSmallIntegerField(
        null=True, blank=True, validators=[MinValueValidator(1), MaxValueValidator(128)]
    )
    memory_mb_override = models.PositiveIntegerField(
        null=True, blank=True, validators=[MinValueValidator(128), MaxValueValidator(4 * 1024 * 1024)]
    )
    nested_hv_required = models.BooleanField(
        default=False, help_text="Nested ESXi needs hardware virtualization passed through."
    )
    # The guest account that guide checks run commands with (VMware Tools guest operations).
    # The password is stored encrypted and is write-only everywhere, like an endpoint's.
    guest_username = models.CharField(
        max_length=100, blank=True, help_text="An account of the guest operating system, for guide checks."
    )
    guest_password_ciphertext = models.TextField(blank=True, editable=False)

    class Meta:
        ordering = ["boot_order", "role"]
        constraints = [models.UniqueConstraint(fields=["template", "role"], name="template_vm_role_unique")]

    def __str__(self) -> str:
        return self.role

    def set_guest_password(self, raw_password: str) -> None:
        self.guest_password_ciphertext = crypto.encrypt(raw_password) if raw_password else ""

    @property
    def has_guest_account(self) -> bool:
        return bool(self.guest_username and self.guest_password_ciphertext)


class TemplateNIC(models.Model):
    """Which template network a VM's network adapter joins (adapters in the VM's order)."""

    vm = models.ForeignKey(TemplateVM, on_delete=models.CASCADE, related_name="nics")
    index = models.PositiveSmallIntegerField(help_text="0 for the VM's first network adapter.")
    network = models.ForeignKey(TemplateNetwork, on_delete=models.CASCADE, related_name="nics")

    class Meta:
        ordering = ["index"]
        constraints = [models.UniqueConstraint(fields=["vm", "index"], name="template_nic_index_unique")]

    def __str__(self) -> str:
        return f"{self.vm.role} NIC {self.index + 1} on {self.network.name}"


class TemplateVersion(models.Model):
    """A published, immutable copy of a template. Courses pin one.

    ``spec`` holds everything a lab is built from, frozen at publish time: the VMs (role,
    source moref, baseline snapshot, CPUs, memory, disk, nested HV, NIC networks, boot
    order), the networks and the clone mode. The totals feed quota arithmetic.
    """

    class State(models.TextChoices):
        PUBLISHING = "publishing", "Publishing"
        PUBLISHED = "published", "Published"
        FAILED = "failed", "Failed"

    template = models.ForeignKey(LabTemplate, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField()
    revision = models.PositiveIntegerField(help_text="The draft revision this version was made from.")
    state = models.CharField(max_length=16, choices=State.choices, default=State.PUBLISHING)
    spec = models.JSONField(default=dict)
    vcpu_total = models.PositiveIntegerField(default=0)
    memory_mb_total = models.PositiveIntegerField(default=0)
    disk_gb_total = models.FloatField(default=0)
    manual = models.TextField(blank=True, editable=False, help_text="The draft's manual when this version was made.")
    manual_html = models.TextField(
        blank=True, editable=False, help_text="That manual rendered and sanitised: what students of the version read."
    )
    guide = models.JSONField(
        default=dict,
        blank=True,
        editable=False,
        help_text="The draft's guide when this version was made: steps (rendered), checks, variables "
        "(courses.guides.guide_freeze). Holds the checks' answers: never shown to students as is.",
    )
    guest_accounts = models.JSONField(
        default=dict,
        blank=True,
        editable=False,
        help_text="Role -> guest account (username, encrypted password) for checks; never shown.",
    )
    error = models.TextField(blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    published_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["template", "-number"]
        constraints = [models.UniqueConstraint(fields=["template", "number"], name="template_version_number_unique")]

    def __str__(self) -> str:
        return f"{self.template.name} v{self.number}"

    @property
    def manual_markup(self):
        """The version's manual as HTML for a page (rendered when the draft was saved)."""
        return stored_html(self.manual_html)

    @property
    def is_published(self) -> bool:
        return self.state == self.State.PUBLISHED

    @property
    def vm_count(self) -> int:
        return len(self.spec.get("vms", []))

    def ready_endpoint_ids(self) -> list[int]:
        """The endpoints whose baseline of this version exists: the only ones its labs are built on."""
        return list(
            self.baselines.filter(state=VersionBaseline.State.READY)
            .order_by("endpoint_id")
            .values_list("endpoint_id", flat=True)
        )


class VersionBaseline(models.Model):
    """A template version on one endpoint: where each VM role's source is there and its baseline
    snapshot, or why that endpoint could not be given one (in words).

    A version serves an endpoint only where its baseline is ready (labs.placement); the
    template's own endpoint is the first, its extra endpoints follow.
    """

    class State(models.TextChoices):
        READY = "ready", "Ready"
        FAILED = "failed", "Failed"

    version = models.ForeignKey(TemplateVersion, on_delete=models.CASCADE, related_name="baselines")
    endpoint = models.ForeignKey(VCenterEndpoint, on_delete=models.PROTECT, related_name="baselines")
    state = models.CharField(max_length=16, choices=State.choices)
    vms = models.JSONField(
        default=dict,
        blank=True,
        help_text='Role -> {"moref": source VM, "snapshot": baseline snapshot} on this endpoint.',
    )
    error = models.TextField(blank=True, help_text="Why this endpoint has no baseline, in words.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["version", "endpoint__name"]
        constraints = [models.UniqueConstraint(fields=["version", "endpoint"], name="version_baseline_unique")]

    def __str__(self) -> str:
        return f"{self.version} on {self.endpoint}"

    @property
    def is_ready(self) -> bool:
        return self.state == self.State.READY


# Lab guides (issue 15): ordered steps beside the console, with checks Nestlab runs.
GUIDE_STEPS_MAX = 100
GUIDE_STEP_MAX_CHARACTERS = 16_384
GUIDE_CHECKS_PER_STEP_MAX = 10
GUIDE_VARIABLES_MAX = 30
GUIDE_POINTS_MAX = 1_000
CHECK_TIMEOUT_MAX_SECONDS = 300
CHECK_COMMAND_MAX_CHARACTERS = 4_000
# A variable's name is used as {{ name }} in the guide and checks, as guestinfo.nestlab.<name> in
# the VMs and as NESTLAB_<NAME> in a check command's environment.
VARIABLE_NAME_VALIDATOR = RegexValidator(
    r"^[a-z][a-z0-9_]{0,39}$", "Start with a small letter; then small letters, digits and _ (at most 40)."
)


# Images of a template's guide and manual: kept in the database (a few per template; no media
# storage to set up, and classrooms may be offline, so no image is fetched from elsewhere).
GUIDE_IMAGES_MAX = 50
GUIDE_IMAGE_MAX_BYTES = 2 * 1024 * 1024
GUIDE_IMAGE_NAME_VALIDATOR = RegexValidator(
    r"^[a-z0-9][a-z0-9_-]{0,79}\.(png|jpg|jpeg|gif|webp)$",
    "Name it like topology.png: small letters, digits, - and _, then .png, .jpg, .gif or .webp.",
)
# Markdown written as ![Topology](topology.png): a bare file name is one of the template's images.
_BARE_IMAGE_SRC = re.compile(r'(<img\b[^>]*?\bsrc=")([a-z0-9][a-z0-9_-]{0,79}\.(?:png|jpg|jpeg|gif|webp))(")')


def guide_image_url(template_id: int, name: str) -> str:
    """Where an image is served (courses:guide-image; a stored page's HTML keeps this address)."""
    return f"/templates/{template_id}/images/{name}"


def link_guide_images(html: str, template_id: int | None) -> str:
    """Point images named by a bare file name at the template's stored image (rendered HTML in;
    the same HTML with those sources rewritten out)."""
    if not template_id or "<img" not in html:
        return html
    return _BARE_IMAGE_SRC.sub(lambda match: match.group(1) + guide_image_url(template_id, match.group(2)) + '"', html)


def _valid_pattern(value: str) -> None:
    try:
        regex.compile(value)  # the engine checks run with (courses.guides.pattern_found)
    except regex.error as error:
        raise ValidationError(f"That is not a valid regular expression: {error}.") from error


class GuideStep(models.Model):
    """One step of a template's lab guide (the draft): Markdown the student reads beside the
    console, and the points its checks are worth. Published with the version."""

    template = models.ForeignKey(LabTemplate, on_delete=models.CASCADE, related_name="guide_steps")
    position = models.PositiveSmallIntegerField(
        validators=[MinValueValidator(1), MaxValueValidator(GUIDE_STEPS_MAX)], help_text="1 for the first step."
    )
    title = models.CharField(max_length=120)
    body = models.TextField(
        blank=True,
        max_length=GUIDE_STEP_MAX_CHARACTERS,
        validators=[MaxLengthValidator(GUIDE_STEP_MAX_CHARACTERS)],
        help_text=f"What to do, in Markdown (at most {GUIDE_STEP_MAX_CHARACTERS:,} characters). "
        "{{ name }} shows the lab's value of a variable.",
    )
    body_html = models.TextField(blank=True, editable=False, help_text="The body rendered and sanitised when saved.")
    points = models.PositiveSmallIntegerField(
        default=0,
        validators=[MaxValueValidator(GUIDE_POINTS_MAX)],
        help_text="What passing the step's checks is worth.",
    )

    class Meta:
        ordering = ["template", "position"]
        constraints = [
            models.UniqueConstraint(fields=["template", "position"], name="guide_step_position_unique"),
            models.CheckConstraint(condition=models.Q(points__lte=GUIDE_POINTS_MAX), name="guide_step_points_bounded"),
        ]

    def __str__(self) -> str:
        return f"{self.position}. {self.title}"

    def save(self, *args, **kwargs) -> None:
        """Renders the body once per save (as the manual): pages never render Markdown per view."""
        self.body_html = link_guide_images(render_markdown(self.body), self.template_id) if self.body else ""
        update_fields = kwargs.get("update_fields")
        if update_fields is not None and "body" in update_fields:
            kwargs["update_fields"] = {*update_fields, "body_html"}
        super().save(*args, **kwargs)

    @property
    def body_markup(self):
        return stored_html(self.body_html)


class GuideCheck(models.Model):
    """How Nestlab tells whether a step is done: a command run inside a lab VM through VMware
    Tools (no network path into the lab), a question the student answers, or a VM's state read
    from vCenter. ``{{ name }}`` in a command, an answer or an expected value is the lab's value
    of that variable, so answers differ between students."""

    class Kind(models.TextChoices):
        COMMAND = "command", "Command in a VM"
        QUESTION = "question", "Question"
        VM_STATE = "vm_state", "VM state"

    class AnswerMode(models.TextChoices):
        EXACT = "exact", "Exactly this answer"
        SET = "set", "These items, in any order (comma-separated)"
        PATTERN = "pattern", "An answer matching a regular expression"

    class VMProperty(models.TextChoices):
        POWER_STATE = "power_state", "Power state (on or off)"
        SNAPSHOT_EXISTS = "snapshot_exists", "A snapshot of this name exists"
        CPU_COUNT = "cpu_count", "Number of CPUs"
        MEMORY_MB = "memory_mb", "Memory (MB)"
        NESTED_HV = "nested_hv", "Nested virtualization (on or off)"

    step = models.ForeignKey(GuideStep, on_delete=models.CASCADE, related_name="checks")
    position = models.PositiveSmallIntegerField(
        default=1, validators=[MinValueValidator(1), MaxValueValidator(GUIDE_CHECKS_PER_STEP_MAX)]
    )
    kind = models.CharField(max_length=16, choices=Kind.choices)
    label = models.CharField(max_length=200, help_text="What is checked, as the student reads it.")
    vm_role = models.SlugField(max_length=40, blank=True, help_text="The template VM a command or state check reads.")
    command = models.TextField(
        blank=True,
        max_length=CHECK_COMMAND_MAX_CHARACTERS,
        validators=[MaxLengthValidator(CHECK_COMMAND_MAX_CHARACTERS)],
        help_text="A shell script run in the VM (/bin/sh) with its guest account.",
    )
    exit_code = models.SmallIntegerField(
        default=0, validators=[MinValueValidator(0), MaxValueValidator(255)], help_text="The exit code that passes."
    )
    output_pattern = models.CharField(
        max_length=500,
        blank=True,
        validators=[_valid_pattern],
        help_text="A regular expression the command's output must contain (optional).",
    )
    timeout_seconds = models.PositiveSmallIntegerField(
        default=30, validators=[MinValueValidator(1), MaxValueValidator(CHECK_TIMEOUT_MAX_SECONDS)]
    )
    prompt = models.CharField(max_length=500, blank=True, help_text="The question.")
    answer_mode = models.CharField(max_length=16, choices=AnswerMode.choices, default=AnswerMode.EXACT)
    answer = models.CharField(max_length=500, blank=True, help_text="The answer that passes; never shown to students.")
    case_sensitive = models.BooleanField(default=False)
    vm_property = models.CharField(max_length=24, choices=VMProperty.choices, blank=True)
    expected = models.CharField(
        max_length=200, blank=True, help_text="The value that passes (e.g. on, 4, before-upgrade)."
    )

    class Meta:
        ordering = ["step", "position", "id"]

    def __str__(self) -> str:
        return self.label

    def clean(self) -> None:
        """Each kind needs its own fields: refused in words on every path (page, API, admin)."""
        errors: dict[str, str] = {}
        if self.kind in (self.Kind.COMMAND, self.Kind.VM_STATE) and not self.vm_role:
            errors["vm_role"] = "Name the VM (its role in the template) this check reads."
        if self.kind == self.Kind.COMMAND and not self.command.strip():
            errors["command"] = "Give the command to run in the VM."
        if self.kind == self.Kind.QUESTION:
            if not self.prompt.strip():
                errors["prompt"] = "Give the question."
            if not self.answer.strip():
                errors["answer"] = "Give the answer that passes."
            elif self.answer_mode == self.AnswerMode.PATTERN and "{{" not in self.answer:
                try:
                    regex.compile(self.answer)
                except regex.error as error:
                    errors["answer"] = f"That is not a valid regular expression: {error}."
        if self.kind == self.Kind.VM_STATE:
            if not self.vm_property:
                errors["vm_property"] = "Choose what to read from the VM."
            elif not self.expected.strip():
                errors["expected"] = "Give the value that passes."
            elif self.vm_property in (self.VMProperty.POWER_STATE, self.VMProperty.NESTED_HV):
                if self.expected.strip().lower() not in ("on", "off"):
                    errors["expected"] = "Say on or off."
            elif (
                self.vm_property in (self.VMProperty.CPU_COUNT, self.VMProperty.MEMORY_MB)
                and not self.expected.strip().isdigit()
            ):
                errors["expected"] = "Give a whole number."
        if errors:
            raise ValidationError(errors)


class GuideImage(models.Model):
    """An image of a template's guide or manual, written in Markdown by its file name
    (``![Topology](topology.png)``) and served to the people who may read the guide. Checked to be
    the PNG, JPEG, GIF or WebP its name says (never SVG: it could carry script)."""

    class Format(models.TextChoices):
        PNG = "image/png", "PNG"
        JPEG = "image/jpeg", "JPEG"
        GIF = "image/gif", "GIF"
        WEBP = "image/webp", "WebP"

    template = models.ForeignKey(LabTemplate, on_delete=models.CASCADE, related_name="guide_images")
    name = models.CharField(max_length=90, validators=[GUIDE_IMAGE_NAME_VALIDATOR])
    content_type = models.CharField(max_length=16, choices=Format.choices, editable=False)
    data = models.BinaryField(editable=False)
    size = models.PositiveIntegerField(editable=False, validators=[MaxValueValidator(GUIDE_IMAGE_MAX_BYTES)])
    sha256 = models.CharField(max_length=64, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["template", "name"]
        constraints = [models.UniqueConstraint(fields=["template", "name"], name="guide_image_name_unique")]

    def __str__(self) -> str:
        return self.name

    @property
    def url(self) -> str:
        return guide_image_url(self.template_id, self.name)


class GuideVariable(models.Model):
    """A value drawn for each lab when it is made (a random string, a number, a pick from a
    list), written into the lab's VMs as ``guestinfo.nestlab.<name>`` and usable in the guide
    and its checks as ``{{ name }}``."""

    class Kind(models.TextChoices):
        STRING = "string", "Random letters and digits"
        NUMBER = "number", "Random whole number"
        CHOICE = "choice", "One of a list"

    template = models.ForeignKey(LabTemplate, on_delete=models.CASCADE, related_name="guide_variables")
    name = models.CharField(max_length=40, validators=[VARIABLE_NAME_VALIDATOR])
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.STRING)
    length = models.PositiveSmallIntegerField(
        default=8, validators=[MinValueValidator(4), MaxValueValidator(64)], help_text="Characters of a string."
    )
    minimum = models.IntegerField(
        default=1, validators=[MinValueValidator(-1_000_000_000), MaxValueValidator(1_000_000_000)]
    )
    maximum = models.IntegerField(
        default=100, validators=[MinValueValidator(-1_000_000_000), MaxValueValidator(1_000_000_000)]
    )
    choices = models.JSONField(default=list, blank=True, help_text="The values to pick from (a choice).")

    class Meta:
        ordering = ["template", "name"]
        constraints = [models.UniqueConstraint(fields=["template", "name"], name="guide_variable_name_unique")]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        if self.kind == self.Kind.NUMBER and self.minimum > self.maximum:
            raise ValidationError({"maximum": "The largest value is below the smallest."})
        if self.kind == self.Kind.CHOICE:
            values = self.choices
            if (
                not isinstance(values, list)
                or not values
                or len(values) > 100
                or not all(isinstance(value, str) and 0 < len(value.strip()) <= 100 for value in values)
            ):
                raise ValidationError({"choices": "Give 1 to 100 values, each 1 to 100 characters."})


class Course(models.Model):
    """A class offering: who teaches it, which template version its labs are built from, when."""

    class State(models.TextChoices):
        DRAFT = "draft", "Draft"
        OPEN = "open", "Open"
        CLOSED = "closed", "Closed"
        ARCHIVED = "archived", "Archived"

    title = models.CharField(max_length=200)
    code = models.SlugField(
        max_length=40, unique=True, help_text="Short unique code, used in VM and folder names (e.g. vsp8-fall26)."
    )
    description = models.TextField(blank=True)
    instructors = models.ManyToManyField(settings.AUTH_USER_MODEL, related_name="taught_courses")
    template_version = models.ForeignKey(
        TemplateVersion, null=True, blank=True, on_delete=models.PROTECT, related_name="courses"
    )
    starts_on = models.DateField(validators=[bounds.validate_date_in_range])
    ends_on = models.DateField(validators=[bounds.validate_date_in_range])
    state = models.CharField(max_length=16, choices=State.choices, default=State.DRAFT)
    join_code = models.CharField(max_length=16, unique=True, null=True, blank=True)
    endpoints = models.ManyToManyField(
        VCenterEndpoint,
        blank=True,
        related_name="courses",
        help_text="The vCenters its labs may be built on; empty: every one its template version serves.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-starts_on", "code"]

    def __str__(self) -> str:
        return f"{self.code}: {self.title}"

    @property
    def has_ended(self) -> bool:
        """Closed or archived, or past its last day (the course-end sweep runs on the date)."""
        return self.state in (self.State.CLOSED, self.State.ARCHIVED) or self.ends_on < timezone.localdate()

    def clean(self) -> None:
        if self.starts_on and self.ends_on and self.ends_on < self.starts_on:
            raise ValidationError({"ends_on": "The course ends before it starts."})
        if self.template_version_id and self.template_version.state != TemplateVersion.State.PUBLISHED:
            raise ValidationError({"template_version": "Only a published template version can be used."})
        if self.state == self.State.OPEN and not self.template_version_id:
            raise ValidationError({"template_version": "A course needs a published template version to open."})


class Enrollment(models.Model):
    """A student in a course, and how they got there."""

    class Source(models.TextChoices):
        MANUAL = "manual", "Added by an instructor"
        CSV = "csv", "Roster upload"
        JOIN_CODE = "join_code", "Join code"
        IDENTITY = "identity", "School sign-in (a group or claim)"
        LTI = "lti", "LMS (LTI launch or roster)"

    course = models.ForeignKey(Course, on_delete=models.CASCADE, related_name="enrollments")
    student = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="enrollments")
    source = models.CharField(max_length=16, choices=Source.choices, default=Source.MANUAL)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["student__username"]
        constraints = [models.UniqueConstraint(fields=["course", "student"], name="enrollment_course_student_unique")]

    def __str__(self) -> str:
        return f"{self.student} in {self.course.code}"


def _limit(help_text: str, maximum: int) -> models.PositiveIntegerField:
    return models.PositiveIntegerField(
        null=True, blank=True, validators=bounds.upto(maximum), help_text=f"{help_text} At most {maximum:,}."
    )


class QuotaLimits(models.Model):
    """The limits of a quota: blank means no limit, zero means none allowed."""

    running_labs = _limit("Labs powered on at once across the class.", bounds.MAX_LABS)
    labs_per_student = _limit("Labs each student may have (their lab plus its clones).", bounds.MAX_LABS)
    snapshots_per_lab = _limit("Snapshots each lab may keep.", bounds.MAX_SNAPSHOTS_PER_LAB)
    vcpu_total = _limit("Virtual CPUs of all the class's labs together.", bounds.MAX_VCPUS)
    memory_gb_total = _limit("Memory (GB) of all the class's labs together.", bounds.MAX_MEMORY_GB)
    storage_gb_total = _limit("Datastore space (GB) of all the class's labs together.", bounds.MAX_STORAGE_GB)
    lab_hours_per_student = _limit("Hours each student's labs may run.", bounds.MAX_LAB_HOURS)
    lifetime_days_after_end = _limit(
        "Days labs are kept after the course ends, before they are deleted.", bounds.MAX_LIFETIME_DAYS
    )
    lease_hours = _limit(
        "Hours a lab runs after each start before it is powered off (a lease).", bounds.MAX_LEASE_HOURS
    )
    lease_extensions = _limit(
        "Times a student may extend a running lab's lease by one lease, in one click.", bounds.MAX_LEASE_EXTENSIONS
    )
    idle_minutes = _limit(
        "Minutes without portal activity or console use before a running lab is powered off.", bounds.MAX_IDLE_MINUTES
    )

    pool_labs = _limit(
        "Labs built ahead in the class's warm pool, given to no one yet (they count in the other limits too).",
        bounds.MAX_POOL_LABS,
    )

    LIMIT_FIELDS = (
        "running_labs",
        "labs_per_student",
        "snapshots_per_lab",
        "vcpu_total",
        "memory_gb_total",
        "storage_gb_total",
        "lab_hours_per_student",
        "lifetime_days_after_end",
        "lease_hours",
        "lease_extensions",
        "idle_minutes",
        "pool_labs",
    )

    class Meta:
        abstract = True

    @property
    def any_set(self) -> bool:
        return any(getattr(self, name) is not None for name in self.LIMIT_FIELDS)


class CourseQuota(QuotaLimits):
    """Per-course limits, set by admins. Blank means no limit; zero means none allowed. A new
    course starts with the admins' defaults (``QuotaDefaults``).

    Lowering a limit below current usage is allowed: it blocks new work until usage
    drops, and pages explain that.
    """

    course = models.OneToOneField(Course, on_delete=models.CASCADE, related_name="quota")
    updated_at = models.DateTimeField(auto_now=True)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    def __str__(self) -> str:
        return f"Quota of {self.course.code}"


class QuotaDefaults(QuotaLimits):
    """The limits every new course starts with, set by admins in the admin site (one row). Blank
    everywhere: new courses start without limits, and their pages say so until limits are set."""

    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "quota defaults for new courses"
        verbose_name_plural = "quota defaults for new courses"

    def __str__(self) -> str:
        return "Quota defaults for new courses"

    def save(self, *args, **kwargs) -> None:
        self.pk = 1  # one row: the defaults
        super().save(*args, **kwargs)

    @classmethod
    def current(cls) -> QuotaDefaults:
        return cls.objects.filter(pk=1).first() or cls(pk=1)


class QuotaTopUp(models.Model):
    """Extra lab hours or labs for one student of a course (sums with the course quota)."""

    course = models.ForeignKey(Course, on_delete=models.CASCADE, related_name="top_ups")
    student = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="top_ups")
    extra_lab_hours = models.PositiveIntegerField(default=0, validators=bounds.upto(bounds.MAX_LAB_HOURS))
    extra_labs = models.PositiveIntegerField(default=0, validators=bounds.upto(bounds.MAX_LABS))
    reason = models.CharField(max_length=200, blank=True)
    granted_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"Top-up for {self.student} in {self.course.code}"


def validate_time_zone(value: str) -> None:
    """An IANA time zone name that this machine's zone database knows (Europe/Paris, not CET+1)."""
    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ValidationError(
            "%(value)s is not a time zone Nestlab knows: give an IANA name such as Europe/Paris or America/New_York.",
            code="time_zone",
            params={"value": value},
        ) from None


class ClassSession(models.Model):
    """When a course meets: once (a date) or weekly (weekdays from a first to a last date), at a local
    start time in its own time zone, for a duration.

    Times are kept local with their IANA zone, not in UTC, so a weekly 09:00 class stays 09:00 on
    the wall clock across a daylight-saving change (``courses.selectors.session_occurrences``
    expands them). Labs of the enrolled students are made ready ``ready_minutes_before`` the start
    (``labs.sessions``).
    """

    class Repeat(models.TextChoices):
        ONCE = "once", "Once"
        WEEKLY = "weekly", "Weekly"

    # ISO weekdays, as ``date.isoweekday()`` counts them.
    WEEKDAYS = {1: "Monday", 2: "Tuesday", 3: "Wednesday", 4: "Thursday", 5: "Friday", 6: "Saturday", 7: "Sunday"}

    course = models.ForeignKey(Course, on_delete=models.CASCADE, related_name="sessions")
    title = models.CharField(max_length=200, blank=True, help_text="Optional, e.g. Lab 3: vMotion.")
    repeat = models.CharField(max_length=8, choices=Repeat.choices, default=Repeat.ONCE)
    first_date = models.DateField(
        validators=[bounds.validate_date_in_range], help_text="The day it meets (once), or the first day (weekly)."
    )
    last_date = models.DateField(
        null=True,
        blank=True,
        validators=[bounds.validate_date_in_range],
        help_text="Weekly: the last day it may meet. Empty for a session that meets once.",
    )
    weekdays = models.JSONField(
        default=list, blank=True, help_text="Weekly: ISO weekdays it meets on, 1 (Monday) to 7 (Sunday)."
    )
    start_time = models.TimeField(help_text="Local start time, in the session's time zone.")
    duration_minutes = models.PositiveIntegerField(
        validators=bounds.upto(bounds.MAX_SESSION_MINUTES, minimum=1),
        help_text=f"How long it lasts, 1 to {bounds.MAX_SESSION_MINUTES} minutes.",
    )
    time_zone = models.CharField(
        max_length=64, validators=[validate_time_zone], help_text="IANA time zone, e.g. Europe/Paris."
    )
    ready_minutes_before = models.PositiveIntegerField(
        default=bounds.DEFAULT_READY_MINUTES_BEFORE,
        validators=bounds.upto(bounds.MAX_READY_MINUTES_BEFORE),
        help_text=f"Labs are ready this many minutes before the start (0 to {bounds.MAX_READY_MINUTES_BEFORE}).",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["first_date", "start_time", "id"]

    def __str__(self) -> str:
        return f"{self.course.code}: {self.title or self.describe()}"

    def describe(self) -> str:
        """When it meets, in words (for pages and logs)."""
        at = f"{self.start_time:%H:%M} {self.time_zone}, {self.duration_minutes} min"
        if self.repeat == self.Repeat.ONCE:
            return f"{self.first_date:%a %d %b %Y} at {at}"
        days = ", ".join(self.WEEKDAYS[day] for day in sorted(self.weekdays or []) if day in self.WEEKDAYS)
        return f"Every {days} at {at}, {self.first_date:%d %b %Y} to {self.last_date:%d %b %Y}"

    @property
    def zone(self) -> zoneinfo.ZoneInfo:
        return zoneinfo.ZoneInfo(self.time_zone)

    def clean(self) -> None:
        if self.repeat == self.Repeat.WEEKLY:
            days = self.weekdays
            if (
                not isinstance(days, list)
                or not days
                or not all(isinstance(day, int) and not isinstance(day, bool) and 1 <= day <= 7 for day in days)
                or len(set(days)) != len(days)
            ):
                raise ValidationError({"weekdays": "Pick the days it meets: 1 (Monday) to 7 (Sunday), each once."})
            self.weekdays = sorted(days)
            if self.last_date is None:
                raise ValidationError({"last_date": "A weekly session needs its last date."})
            if self.first_date and self.last_date < self.first_date:
                raise ValidationError({"last_date": "The last date is before the first: the session would never meet."})
        else:
            if self.weekdays:
                raise ValidationError({"weekdays": "A session that meets once has no weekdays; pick weekly instead."})
            self.last_date = None
