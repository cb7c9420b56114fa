"""Accounts' models: API tokens as the admin shows them (users are Django's own)."""

from __future__ import annotations

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
