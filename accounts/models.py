"""Accounts' models: API keys a person makes on their account page, and API tokens as the admin
shows them (users are Django's own)."""

from __future__ import annotations

import hashlib

from django.conf import settings
from django.db import models
from django.utils import timezone
from rest_framework.authtoken.models import TokenProxy

TOKEN_SHOWN_CHARACTERS = 4


class ApiToken(TokenProxy):
    """An API token as the admin site shows it: its first characters only, never the whole key
    (in lists, titles, breadcrumbs and confirmation pages alike; docs/security.md, finding 6).
    Built on DRF's TokenProxy, whose pk is the user's id, so admin addresses never carry the key."""

    class Meta:
        proxy = True
        verbose_name = "API token"

    def __str__(self) -> str:
        return f"{self.masked_key} ({self.user})"

    @property
    def masked_key(self) -> str:
        return f"{self.key[:TOKEN_SHOWN_CHARACTERS]}…"


API_KEY_PREFIX = "nlk_"
API_KEY_NAME_MAX = 80
API_KEYS_PER_PERSON = 20


def api_key_digest(secret: str) -> str:
    """What is stored of a key: its SHA-256 (a key is 32 random bytes; no salt or stretching needed)."""
    return hashlib.sha256(secret.encode()).hexdigest()


class ApiKey(models.Model):
    """A named API key a person made on their account page (a script, a notebook, a CI job), sent
    as ``Authorization: Token nlk_...`` like the token of ``POST /api/v1/auth/token/``.

    Only the key's digest is stored: the whole key is shown once, when it is made. Revoking
    deletes the row (the audit log keeps who made and revoked it); at most
    ``API_KEYS_PER_PERSON`` per person."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_keys")
    name = models.CharField(max_length=API_KEY_NAME_MAX, help_text="What it is for, in the person's words.")
    prefix = models.CharField(max_length=16, help_text="The key's first characters, to tell keys apart.")
    digest = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(default=timezone.now)
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [models.UniqueConstraint(fields=["user", "name"], name="api_key_name_unique_per_person")]
        verbose_name = "API key"

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…, {self.user})"
