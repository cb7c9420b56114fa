"""Reads about accounts."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.db.models import Count, Q

from accounts.models import ApiKey
from core import roles


def people_counts() -> dict[str, int]:
    """How many accounts hold each role (the admin's home page), in one query."""
    counts = {
        role.value: Count("pk", filter=Q(groups__name=name), distinct=True) for role, name in roles.GROUP_NAMES.items()
    }
    return get_user_model().objects.aggregate(**counts)


def api_keys_of(user) -> list[ApiKey]:
    """A person's API keys, newest first (never their digests' secrets: only the prefix is shown)."""
    return list(ApiKey.objects.filter(user=user))
