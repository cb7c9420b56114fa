"""The shared floor's models: notices to one person and the audit log.

Their tables kept the names they had when they were the project package's (``portal_*``):
the move to core/ changed where the code lives, not the database."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone


class Notice(models.Model):
    """Something the portal had to tell one person, e.g. "your lab was powered off: its
    lease ended". Pushed live to open pages, and kept until shown on a page load, so a
    student who was not looking still reads it."""

    class Level(models.TextChoices):
        INFO = "info", "Info"
        WARNING = "warning", "Warning"
        ERROR = "error", "Error"

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notices")
    level = models.CharField(max_length=8, choices=Level.choices, default=Level.INFO)
    text = models.CharField(max_length=500)
    created_at = models.DateTimeField(default=timezone.now)
    read_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "portal_notice"
        ordering = ["created_at"]
        indexes = [models.Index(fields=["user", "read_at"])]

    def __str__(self) -> str:
        return f"{self.user}: {self.text[:40]}"


class AuditEntry(models.Model):
    """One thing that happened, for the audit log: who did what to what, when, from where,
    and how it ended (issue 6: every operation, login and refusal).

    Append-only: rows are written by ``portal.audit.audit_record`` and never changed; the
    only deletion is the retention prune (``AUDIT_RETENTION_DAYS``). The actor's user name is
    copied as text, so an entry still says who after the account is deleted; for a failed
    login it is the name that was tried (the actor itself stays empty: we do not know who
    typed it). An empty actor with an empty name is the portal itself.
    """

    class Category(models.TextChoices):
        LOGIN = "login", "Login"
        LOGIN_FAILED = "login_failed", "Failed login"
        LOGOUT = "logout", "Logout"
        LOCKOUT = "lockout", "Lockout"
        TOKEN = "token", "API token"
        REFUSAL = "refusal", "Refusal"
        OPERATION = "operation", "Operation"
        CONSOLE = "console", "Console"
        ACCOUNT = "account", "Account (password)"

    class Result(models.TextChoices):
        # An operation was queued: its outcome is a later entry of its own.
        ACCEPTED = "accepted", "Accepted"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"
        REFUSED = "refused", "Refused"
        CANCELLED = "cancelled", "Cancelled"

    class Source(models.TextChoices):
        PAGE = "page", "Page"
        API = "api", "API"
        WEBSOCKET = "websocket", "WebSocket"
        WORKER = "worker", "Worker"
        SYSTEM = "system", "System"

    when = models.DateTimeField(default=timezone.now, db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="audit_entries",
        help_text="Who did it; empty for the portal itself and for failed logins.",
    )
    actor_username = models.CharField(
        max_length=150, blank=True, help_text="The actor's user name at the time (for a failed login: the one tried)."
    )
    category = models.CharField(max_length=16, choices=Category.choices)
    action = models.CharField(max_length=64, help_text="A short machine name, e.g. lab.snapshot or auth.login.")
    target = models.CharField(max_length=255, blank=True, help_text='What it was done to, in words: "lab x (#12)".')
    target_type = models.CharField(max_length=32, blank=True)
    target_id = models.CharField(max_length=64, blank=True)
    result = models.CharField(max_length=16, choices=Result.choices)
    detail = models.TextField(blank=True, help_text="Why, or what came of it, in words.")
    source = models.CharField(max_length=16, choices=Source.choices)
    remote_addr = models.GenericIPAddressField(null=True, blank=True, help_text="The client's address, if any.")

    class Meta:
        db_table = "portal_auditentry"
        ordering = ["-when", "-id"]
        verbose_name_plural = "audit entries"
        indexes = [
            models.Index(fields=["category", "when"]),
            models.Index(fields=["actor_username", "when"]),
            models.Index(fields=["target_type", "target_id"]),
        ]

    def __str__(self) -> str:
        who = self.actor_username or "Nestlab"
        return f"{self.when:%Y-%m-%d %H:%M:%S} {who} {self.action} {self.result}"

    def save(self, *args, **kwargs) -> None:
        if not self._state.adding:
            raise ValueError("Audit entries are append-only: an entry is never changed.")
        super().save(*args, **kwargs)
