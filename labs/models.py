"""Runtime models. The Operation row is the truth about every action on vCenter."""

from __future__ import annotations

from django.conf import settings
from django.core.validators import MaxValueValidator
from django.db import models
from django.utils import timezone


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

    class State(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"
        CANCELLED = "cancelled", "Cancelled"

    FINAL_STATES = frozenset({State.SUCCEEDED, State.FAILED, State.CANCELLED})
    ACTIVE_STATES = frozenset({State.QUEUED, State.RUNNING})

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
    celery_task_id = models.CharField(max_length=64, blank=True, db_index=True)
    # Bumped on every change pushed to browsers, so a client can detect a gap.
    seq = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["state", "heartbeat_at"])]
        constraints = [
            models.CheckConstraint(condition=models.Q(progress__lte=100), name="operation_progress_at_most_100"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} #{self.pk} ({self.state})"

    @property
    def is_final(self) -> bool:
        return self.state in self.FINAL_STATES

    @property
    def duration_seconds(self) -> float | None:
        if self.started_at is None:
            return None
        end = self.finished_at or timezone.now()
        return (end - self.started_at).total_seconds()
