"""Runtime models. The Operation row is the truth about every action on vCenter."""

from __future__ import annotations

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone

from courses import bounds

# Custom attribute Nestlab writes on every VM it builds (labs.jobs.lab_build): how Reconcile finds
# its VMs, and how a lab VM is told from a template source (labs.template_sources).
LAB_ATTRIBUTE = "nestlab.lab_id"


class Lab(models.Model):
    """One student's private copy of a course's template version, on its own networks.

    ``number`` counts a student's labs in a course (1 is the lab they started, higher
    numbers are clones). A lab without a student is a warm-pool lab (``labs.pools``): built
    ahead for the course and given to no one yet; a Start hands it over (``given_at``).
    Hours are metered while any VM is powered on: ``hours_used``
    holds the closed periods and ``running_since`` the open one.
    """

    class State(models.TextChoices):
        PROVISIONING = "provisioning", "Provisioning"
        READY = "ready", "Ready"
        BUSY = "busy", "Busy"
        ERROR = "error", "Error"
        DELETING = "deleting", "Deleting"
        DELETED = "deleted", "Deleted"
        EXPIRED = "expired", "Expired"

    # States in which a lab holds vCenter resources and counts against quotas.
    ACTIVE_STATES = frozenset({State.PROVISIONING, State.READY, State.BUSY, State.ERROR, State.DELETING})

    course = models.ForeignKey("courses.Course", on_delete=models.PROTECT, related_name="labs")
    student = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="labs",
        help_text="Whose lab it is; empty while it waits in the course's warm pool.",
    )
    number = models.PositiveSmallIntegerField(default=1)
    template_version = models.ForeignKey("courses.TemplateVersion", on_delete=models.PROTECT, related_name="labs")
    endpoint = models.ForeignKey("courses.VCenterEndpoint", on_delete=models.PROTECT, related_name="labs")
    source_lab = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="clones", help_text="Cloned from."
    )
    state = models.CharField(max_length=16, choices=State.choices, default=State.PROVISIONING)
    error = models.TextField(blank=True, help_text="Why the lab is in error, in words.")
    folder_moref = models.CharField(max_length=64, blank=True)
    pool_moref = models.CharField(max_length=64, blank=True)
    # Resources reserved at the click for quota arithmetic (from the template version).
    vcpu = models.PositiveIntegerField(default=0)
    memory_mb = models.PositiveIntegerField(default=0)
    disk_gb = models.FloatField(default=0)
    current_snapshot = models.ForeignKey(
        "LabSnapshot",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="The snapshot the lab was last taken at or reverted to (the tree's 'you are here').",
    )
    hours_used = models.FloatField(default=0)
    running_since = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True, help_text="Lease end: powered off then.")
    lease_extensions_used = models.PositiveSmallIntegerField(default=0)
    last_activity_at = models.DateTimeField(
        null=True, blank=True, help_text="The student's last action or console use on this lab (idle shutdown)."
    )
    deletion_notice_at = models.DateTimeField(null=True, blank=True, help_text="When the student was warned.")
    variables = models.JSONField(
        default=dict,
        blank=True,
        editable=False,
        help_text="This lab's values of the guide's variables (drawn when the lab was made; in its VMs' guestinfo).",
    )
    guide_position = models.PositiveSmallIntegerField(
        default=1, validators=[MaxValueValidator(1000)], help_text="The guide step the student is on (1 first)."
    )
    seq = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)
    ready_at = models.DateTimeField(null=True, blank=True)
    deleted_at = models.DateTimeField(null=True, blank=True)
    given_at = models.DateTimeField(
        null=True, blank=True, help_text="When this lab, built ahead in the warm pool, was handed to its student."
    )

    class Meta:
        ordering = ["course", "student__username", "number"]
        constraints = [
            models.UniqueConstraint(fields=["course", "student", "number"], name="lab_number_unique_per_student")
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def name(self) -> str:
        """Readable and unique in vCenter: course code, student, lab number (a pool lab: course
        code and its id, until a Start renames it)."""
        student = self.student  # no query when there is none
        if student is None:
            return f"{self.course.code}-pool-{self.pk}"
        return f"{self.course.code}-{student.username}-{self.number}"

    @property
    def in_pool(self) -> bool:
        """Built ahead and given to no one yet (``labs.pools``)."""
        return self.student_id is None

    @property
    def is_active(self) -> bool:
        return self.state in self.ACTIVE_STATES

    @property
    def is_running(self) -> bool:
        return self.running_since is not None

    # How many of a lab's VMs are on, as the page's main buttons and state words need it.
    ALL_ON, SOME_ON, ALL_OFF = "all_on", "some_on", "all_off"

    @property
    def power_summary(self) -> str:
        """``all_on``, ``some_on`` or ``all_off`` (also for a lab without VMs). From the
        ``vm_count``/``vms_on`` annotations where a list has them, else ``self.vms.all()``."""
        if hasattr(self, "vm_count") and hasattr(self, "vms_on"):  # annotated (the class table)
            total, on = self.vm_count, self.vms_on
        else:
            states = [vm.power_state for vm in self.vms.all()]
            total, on = len(states), sum(1 for state in states if state == LabVM.POWERED_ON)
        if total and on == total:
            return self.ALL_ON
        return self.SOME_ON if on else self.ALL_OFF

    @property
    def state_label(self) -> str:
        """The state in words that say what the student can do next: a ready lab is "Running",
        "Partly running" or "Ready · powered off", not "Ready" for all three (issue 10)."""
        if self.state != self.State.READY:
            return self.get_state_display()
        return {
            self.ALL_ON: "Running",
            self.SOME_ON: "Partly running",
            self.ALL_OFF: "Ready · powered off",
        }[self.power_summary]

    def hours_now(self) -> float:
        """Hours used including the period running now."""
        if self.running_since is None:
            return self.hours_used
        return self.hours_used + (timezone.now() - self.running_since).total_seconds() / 3600


class LabRun(models.Model):
    """A closed period during which a lab ran (any VM powered on): the ledger usage reports read.

    ``lab_power_changed`` writes one when a lab stops, in the same transaction that adds the
    period to ``Lab.hours_used``; the period running now is ``Lab.running_since``. Rows outlive
    the lab's VMs (a deleted lab keeps its row), so past usage stays reportable. Hours metered
    before this ledger existed are in ``hours_used`` only: they count in totals, not per day.
    """

    lab = models.ForeignKey(Lab, on_delete=models.CASCADE, related_name="runs")
    started_at = models.DateTimeField()
    ended_at = models.DateTimeField()

    class Meta:
        ordering = ["started_at", "id"]
        indexes = [models.Index(fields=["ended_at", "started_at"])]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(ended_at__gte=models.F("started_at")), name="lab_run_ends_after_start"
            )
        ]

    def __str__(self) -> str:
        return f"{self.lab_id}: {self.started_at:%Y-%m-%d %H:%M} to {self.ended_at:%Y-%m-%d %H:%M}"

    @property
    def hours(self) -> float:
        return (self.ended_at - self.started_at).total_seconds() / 3600


class LabNetwork(models.Model):
    """A lab's copy of a template network: an isolated port group on its own VLAN."""

    lab = models.ForeignKey(Lab, on_delete=models.CASCADE, related_name="networks")
    endpoint = models.ForeignKey("courses.VCenterEndpoint", on_delete=models.PROTECT, related_name="+")
    name = models.SlugField(max_length=40, help_text="The template network's name.")
    vlan_id = models.PositiveSmallIntegerField(validators=[MinValueValidator(1), MaxValueValidator(4094)])
    port_group = models.CharField(max_length=80)
    released = models.BooleanField(default=False, help_text="The VLAN went back to the endpoint's range.")

    class Meta:
        ordering = ["name"]
        constraints = [
            # A VLAN belongs to one lab network at a time on an endpoint.
            models.UniqueConstraint(
                fields=["endpoint", "vlan_id"],
                condition=models.Q(released=False),
                name="lab_network_vlan_in_use_unique",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.port_group} (VLAN {self.vlan_id})"


class LabVM(models.Model):
    """A VM of a lab, as last seen in vCenter."""

    class PowerState(models.TextChoices):
        """vSphere's VirtualMachinePowerState as the driver reports it, and Nestlab's own
        "missing": the VM is no longer in vCenter (the reconciler or a job found it gone)."""

        ON = "poweredOn", "On"
        OFF = "poweredOff", "Off"
        SUSPENDED = "suspended", "Suspended"
        MISSING = "missing", "Missing"

    POWERED_ON = PowerState.ON

    # vSphere's ManagedEntityStatus (``overall_status``) in words; empty or unknown: "Unknown".
    HEALTH_WORDS = {"green": "OK", "yellow": "Warning", "red": "Alert", "gray": "Unknown"}

    lab = models.ForeignKey(Lab, on_delete=models.CASCADE, related_name="vms")
    role = models.SlugField(max_length=40)
    name = models.CharField(max_length=255)
    moref = models.CharField(max_length=64, blank=True)
    boot_order = models.PositiveSmallIntegerField(default=1)
    power_state = models.CharField(max_length=16, choices=PowerState.choices, default=PowerState.OFF)
    guest_ip = models.CharField(max_length=64, blank=True)
    overall_status = models.CharField(max_length=16, blank=True)
    num_cpu = models.PositiveSmallIntegerField(default=1)
    memory_mb = models.PositiveIntegerField(default=0)
    seq = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["boot_order", "role"]
        constraints = [models.UniqueConstraint(fields=["lab", "role"], name="lab_vm_role_unique")]

    def __str__(self) -> str:
        return self.name

    @property
    def is_on(self) -> bool:
        return self.power_state == self.PowerState.ON

    @property
    def power_label(self) -> str:
        """The power state in words, as every page and live message says it."""
        return power_label(self.power_state)

    @property
    def health_label(self) -> str:
        return self.HEALTH_WORDS.get(self.overall_status, "Unknown") if self.overall_status else ""


def power_label(state: str) -> str:
    """A VM power state in words ("On"); one Nestlab does not know is shown as it is."""
    return LabVM.PowerState(state).label if state in LabVM.PowerState.values else (state or "Unknown")


class LabSnapshot(models.Model):
    """A snapshot of a whole lab: one vCenter snapshot per VM, taken together.

    ``vm_snapshots`` maps each LabVM id to its vCenter snapshot moref; ``power_states``
    records which VMs were on, so a revert can power them on again.
    """

    lab = models.ForeignKey(Lab, on_delete=models.CASCADE, related_name="snapshots")
    name = models.CharField(max_length=80)
    description = models.CharField(max_length=500, blank=True)
    parent = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="children")
    is_baseline = models.BooleanField(default=False)
    vm_snapshots = models.JSONField(default=dict)
    power_states = models.JSONField(default=dict)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"{self.lab.name}: {self.name}"


class Operation(models.Model):
    """One action on vCenter: who asked, what it is doing now, and how it ended.

    A service creates the row inside the caller's transaction and hands its id to a
    Celery task on commit; the task (labs.jobs) moves it from queued to running to a
    final state, recording progress, the current step in words, a heartbeat, and the
    error in words when it fails. The queue message only says "go".
    """

    class Kind(models.TextChoices):
        ENDPOINT_CHECK = "endpoint_check", "Check vCenter connection"
        PUBLISH = "publish", "Publish template"
        PROVISION = "provision", "Provision lab"
        SNAPSHOT = "snapshot", "Take snapshot"
        DELETE_SNAPSHOT = "delete_snapshot", "Delete snapshot"
        REVERT = "revert", "Revert to snapshot"
        RESET = "reset", "Reset lab"
        CLONE = "clone", "Clone lab"
        POWER = "power", "Power"
        DELETE = "delete", "Delete lab"
        RECONCILE = "reconcile", "Reconcile with vCenter"
        PREPARE_SOURCES = "prepare_sources", "Prepare template VMs"
        CHECK = "check", "Check my work"
        HAND_OVER = "hand_over", "Hand over a pool lab"

    class State(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"
        CANCELLED = "cancelled", "Cancelled"

    FINAL_STATES = frozenset({State.SUCCEEDED, State.FAILED, State.CANCELLED})
    ACTIVE_STATES = frozenset({State.QUEUED, State.RUNNING})
    # How an ended operation went, after the message of the click that started it.
    OUTCOME_WORDS = {State.SUCCEEDED: "Done.", State.FAILED: "It failed.", State.CANCELLED: "It was cancelled."}

    kind = models.CharField(max_length=32, choices=Kind.choices)
    state = models.CharField(max_length=16, choices=State.choices, default=State.QUEUED)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="operations",
        help_text="Who asked for it; empty for the system's own work (reaper, schedules).",
    )
    endpoint = models.ForeignKey("courses.VCenterEndpoint", on_delete=models.PROTECT, related_name="operations")
    lab = models.ForeignKey(Lab, null=True, blank=True, on_delete=models.SET_NULL, related_name="operations")
    template_version = models.ForeignKey(
        "courses.TemplateVersion",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="operations",
        help_text="The version a publish operation checks and snapshots.",
    )
    params = models.JSONField(default=dict, blank=True, help_text="The request, as given.")
    result = models.JSONField(default=dict, blank=True, help_text="What the steps produced.")
    progress = models.PositiveSmallIntegerField(default=0, validators=[MaxValueValidator(100)])
    step = models.CharField(max_length=255, blank=True, help_text="What it is doing, in words.")
    error = models.TextField(blank=True, help_text="Why it failed, in words.")
    cancel_requested = models.BooleanField(default=False)
    attempts = models.PositiveSmallIntegerField(
        default=0, help_text="How many times a worker started it (more than one: a worker died)."
    )
    celery_task_id = models.CharField(max_length=64, blank=True, db_index=True)
    # Bumped on every change pushed to browsers, so a client can detect a gap.
    seq = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["state", "heartbeat_at"]), models.Index(fields=["lab", "state"])]
        constraints = [
            models.CheckConstraint(condition=models.Q(progress__lte=100), name="operation_progress_at_most_100"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} #{self.pk} ({self.state})"

    @property
    def step_label(self) -> str:
        """What it is doing, or why it ended, in words: the step; a failure's error; else a default."""
        active = self.state in self.ACTIVE_STATES
        if not active and self.state != self.State.SUCCEEDED and self.error:
            return self.error
        if self.step:
            return self.step
        if self.state == self.State.QUEUED:
            return "Queued: waiting for a free worker."
        if self.state == self.State.RUNNING:
            return "Starting."
        return self.get_state_display()

    def busy_words(self, lab_id: int) -> str:
        """Why lab ``lab_id``'s buttons are off while this runs: its own operation, or a clone
        copying it (the lab being copied is busy too); empty once it ended."""
        if self.state not in self.ACTIVE_STATES:
            return ""
        if self.lab_id != lab_id:
            return f"Busy: this lab is being copied into {self.lab.name}. The buttons come back when that is done."
        doing = self.get_kind_display().lower()
        if self.state == self.State.QUEUED:
            return f"Busy: {doing} is queued for a worker. The buttons come back when it is done."
        return f"Busy: {doing} is running. The buttons come back when it is done."

    @property
    def outcome_label(self) -> str:
        return self.OUTCOME_WORDS.get(self.state, "")

    @property
    def is_final(self) -> bool:
        return self.state in self.FINAL_STATES

    @property
    def duration_seconds(self) -> float | None:
        if self.started_at is None:
            return None
        end = self.finished_at or timezone.now()
        return (end - self.started_at).total_seconds()


class Orphan(models.Model):
    """Something in vCenter that looks like Nestlab's but belongs to no live lab.

    The reconciler records it when first seen and removes it only after a grace period
    (a lab being built or deleted right now must not lose its VMs to a race); the row
    stays as the audit trail of what was removed, when, and by which operation.
    """

    class Kind(models.TextChoices):
        VM = "vm", "VM"
        PORT_GROUP = "port_group", "Port group"
        FOLDER = "folder", "Folder"
        POOL = "pool", "Resource pool"

    endpoint = models.ForeignKey("courses.VCenterEndpoint", on_delete=models.CASCADE, related_name="orphans")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    moref = models.CharField(max_length=255)
    name = models.CharField(max_length=255)
    reason = models.CharField(max_length=255)
    first_seen = models.DateTimeField(default=timezone.now)
    last_seen = models.DateTimeField(default=timezone.now)
    removed_at = models.DateTimeField(null=True, blank=True)
    removed_by = models.ForeignKey(
        Operation, null=True, blank=True, on_delete=models.SET_NULL, related_name="orphans_removed"
    )
    error = models.TextField(blank=True, help_text="Why removing it failed, in words.")

    class Meta:
        ordering = ["-first_seen"]
        constraints = [
            models.UniqueConstraint(
                fields=["endpoint", "kind", "moref"],
                condition=models.Q(removed_at__isnull=True),
                name="orphan_unique_while_present",
            )
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.name} on {self.endpoint}"


class ConsoleSession(models.Model):
    """One person's console of one lab VM, relayed by the portal (labs/console.py, docs/console.md).

    Opening one (page or API) makes a row in PENDING with a random ``key``; the browser then
    connects to ``ws/console/<key>/`` within ``NESTLAB_CONSOLE_CONNECT_SECONDS``, once: the
    relay asks vCenter for a fresh ticket, connects to the ESXi host and relays the bytes. The
    row stays as the record of who looked at which VM, when, for how long, how much went each
    way, and why it ended.
    """

    class Mode(models.TextChoices):
        CONTROL = "control", "Control"  # keyboard and mouse reach the VM
        OBSERVE = "observe", "Observe"  # read-only: the relay drops keyboard and mouse input

    class State(models.TextChoices):
        PENDING = "pending", "Waiting for the browser"
        OPEN = "open", "Open"
        CLOSED = "closed", "Closed"

    key = models.CharField(max_length=64, unique=True, editable=False)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="console_sessions")
    lab = models.ForeignKey(Lab, on_delete=models.CASCADE, related_name="console_sessions")
    vm = models.ForeignKey(LabVM, null=True, on_delete=models.SET_NULL, related_name="console_sessions")
    vm_name = models.CharField(max_length=255, help_text="The VM's name when the console opened.")
    mode = models.CharField(max_length=16, choices=Mode.choices, default=Mode.CONTROL)
    state = models.CharField(max_length=16, choices=State.choices, default=State.PENDING)
    created_at = models.DateTimeField(default=timezone.now)
    connected_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    last_input_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(
        null=True, blank=True, help_text="The relay's last sign of life; an open session without one is over."
    )
    bytes_to_vm = models.PositiveBigIntegerField(default=0)
    bytes_from_vm = models.PositiveBigIntegerField(default=0)
    close_reason = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["state", "user"]), models.Index(fields=["state", "lab"])]

    def __str__(self) -> str:
        return f"Console of {self.vm_name} for {self.user} ({self.state})"

    @property
    def is_live(self) -> bool:
        return self.state != self.State.CLOSED


CHECK_OUTPUT_MAX_CHARACTERS = 4_000


class StepResult(models.Model):
    """A lab's progress on one step of its guide: the portal's, not the VM's, so it survives a
    revert or a reset. A step is done once all its checks passed together (or, without checks,
    when the student marked it done); its points count from then on."""

    lab = models.ForeignKey(Lab, on_delete=models.CASCADE, related_name="step_results")
    step_key = models.CharField(max_length=32, help_text="The step's key in the version's guide.")
    completed_at = models.DateTimeField(null=True, blank=True)
    points = models.PositiveSmallIntegerField(default=0, help_text="Points earned (the step's, once completed).")
    attempts = models.PositiveIntegerField(default=0, help_text="How many times the step was checked.")
    checked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["lab", "id"]
        constraints = [models.UniqueConstraint(fields=["lab", "step_key"], name="step_result_unique_per_lab")]

    def __str__(self) -> str:
        return f"{self.lab_id}: step {self.step_key}"

    @property
    def is_completed(self) -> bool:
        return self.completed_at is not None


class CheckResult(models.Model):
    """How one check of a lab's guide went the last time it ran: passed or not, why in words, the
    command's output (trimmed) or the student's answer, and when."""

    lab = models.ForeignKey(Lab, on_delete=models.CASCADE, related_name="check_results")
    step_key = models.CharField(max_length=32)
    check_key = models.CharField(max_length=32)
    passed = models.BooleanField(default=False)
    words = models.CharField(max_length=500, blank=True, help_text="Why it passed or failed, for the student.")
    output = models.TextField(
        blank=True, help_text=f"The command's output (the last {CHECK_OUTPUT_MAX_CHARACTERS:,} characters)."
    )
    answer = models.CharField(max_length=500, blank=True, help_text="The student's answer to a question.")
    checked_at = models.DateTimeField(default=timezone.now)
    operation = models.ForeignKey(Operation, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")

    class Meta:
        ordering = ["lab", "step_key", "id"]
        constraints = [models.UniqueConstraint(fields=["lab", "check_key"], name="check_result_unique_per_lab")]

    def __str__(self) -> str:
        return f"{self.lab_id}: check {self.check_key} {'passed' if self.passed else 'failed'}"


class SessionPreparation(models.Model):
    """One occurrence of a class session that the portal made its labs ready for (``labs.sessions``).

    The row is the idempotence: the every-minute tick takes an occurrence once (unique on the
    session and the occurrence's start), starts or powers on the labs of the enrolled students,
    and sets ``prepared_at`` when every student is handled; a tick that died half-way leaves it
    empty, and the next one goes on (starting a lab where there is none and powering on one that is
    off are both harmless to repeat). ``labs`` are the labs it started or powered on: their idle
    clock waits for the start, and those nobody used are powered off after the end
    (``closed_at``).
    """

    session = models.ForeignKey("courses.ClassSession", on_delete=models.CASCADE, related_name="preparations")
    occurrence_start = models.DateTimeField()
    occurrence_end = models.DateTimeField()
    build_minutes = models.PositiveIntegerField(help_text="The build time it allowed for (measured, or the default).")
    started_at = models.DateTimeField(default=timezone.now, help_text="When the builds and power-ons began.")
    prepared_at = models.DateTimeField(null=True, blank=True, help_text="When every student was handled.")
    closed_at = models.DateTimeField(null=True, blank=True, help_text="When unused labs were powered off.")
    labs = models.ManyToManyField(Lab, blank=True, related_name="session_preparations")
    outcome = models.JSONField(
        default=dict, blank=True, help_text="Per student (username): what was done, or why nothing was, in words."
    )

    class Meta:
        ordering = ["-occurrence_start", "id"]
        constraints = [
            models.UniqueConstraint(fields=["session", "occurrence_start"], name="session_preparation_once"),
        ]
        indexes = [models.Index(fields=["occurrence_end"])]

    def __str__(self) -> str:
        return f"Session {self.session_id} at {self.occurrence_start:%Y-%m-%d %H:%M}"

    # The outcome words of labs.sessions that count as done for the student; anything else is why not.
    DONE_WORDS = ("lab started", "powered on", "already running", "being built already", "already has a lab")

    @property
    def counts(self) -> dict[str, int]:
        """How many students each outcome had, for the class page."""
        counts: dict[str, int] = {}
        for words in self.outcome.values():
            key = words if words in self.DONE_WORDS else "not made ready"
            counts[key] = counts.get(key, 0) + 1
        return counts

    @property
    def refusals(self) -> list[tuple[str, str]]:
        """(username, why) of the students whose lab was not made ready."""
        return sorted((name, words) for name, words in self.outcome.items() if words not in self.DONE_WORDS)


class WarmPool(models.Model):
    """A course's warm pool (``labs.pools``): labs of its current template version built ahead
    and given to no one, so that a Start hands one over in a second instead of cloning.

    ``size`` is how many the instructor wants ready at all times; with ``from_schedule`` the pool
    also holds one for every enrolled student without a lab while a class session is near or on
    (``labs.pools.target``). The course's quota caps it (``CourseQuota.pool_labs`` and the
    class's vCPU, memory and storage); a pool lab holds no student's place.
    """

    class Sizing(models.TextChoices):
        FIXED = "fixed", "A fixed number"
        SCHEDULE = "schedule", "From the class schedule, plus the fixed number"

    course = models.OneToOneField("courses.Course", on_delete=models.CASCADE, related_name="warm_pool")
    size = models.PositiveIntegerField(
        default=0,
        validators=[MaxValueValidator(bounds.MAX_POOL_LABS)],
        help_text="Labs kept ready for students who have none yet (0: no pool).",
    )
    sizing = models.CharField(max_length=16, choices=Sizing.choices, default=Sizing.FIXED)
    updated_at = models.DateTimeField(auto_now=True)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    def __str__(self) -> str:
        return f"Warm pool of {self.course.code}"
