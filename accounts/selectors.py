"""Reads about accounts."""

from __future__ import annotations

from typing import Any

from django.conf import settings
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


def staff_has_email(email: str | None) -> bool:
    """Whether an instructor's, an admin's or a superuser's account has this e-mail (any case); no
    e-mail is no one's. A sign-in from elsewhere (an identity provider, an LMS) never takes such an
    account over by its e-mail."""
    if not email:
        return False
    people = get_user_model().objects.filter(email__iexact=email)
    return any(person.is_superuser or roles.is_admin(person) or roles.is_instructor(person) for person in people)


def api_keys_of(user) -> list[ApiKey]:
    """A person's API keys, newest first (never their digests' secrets: only the prefix is shown)."""
    return list(ApiKey.objects.filter(user=user))


def identity_sources() -> list[dict[str, Any]]:
    """Where people may sign in from, as configured in the environment (docs/identity.md): the
    local passwords, the school's directory (LDAP), and each OpenID Connect and SAML provider,
    with the values that map to roles and courses. Never a secret."""
    sources: list[dict[str, Any]] = [
        {
            "kind": "local",
            "id": "passwords",
            "name": "Nestlab passwords",
            "enabled_for": "everyone" if settings.NESTLAB_LOCAL_PASSWORDS else "superusers (break-glass) only",
        }
    ]
    if settings.NESTLAB_LDAP_URL:
        sources.append(
            {
                "kind": "ldap",
                "id": "directory",
                "name": "School directory",
                "server": settings.NESTLAB_LDAP_URL,
                "roles": {role: group for role, group in settings.NESTLAB_LDAP_ROLE_GROUPS.items() if group},
                "courses": dict(settings.NESTLAB_LDAP_COURSE_GROUPS),
            }
        )
    providers = settings.SOCIALACCOUNT_PROVIDERS
    for app in providers.get("openid_connect", {}).get("APPS", []):
        sources.append(
            {
                "kind": "oidc",
                "id": app["provider_id"],
                "name": app["name"],
                "server": app["settings"]["server_url"],
                "client_id": app["client_id"],
                "role_claim": app["settings"]["role_claim"],
                "roles": dict(app["settings"]["roles"]),
                "courses": dict(app["settings"]["courses"]),
            }
        )
    for app in providers.get("saml", {}).get("APPS", []):
        idp = app["settings"]["idp"]
        sources.append(
            {
                "kind": "saml",
                "id": app["client_id"],
                "name": app["name"],
                "server": idp.get("metadata_url") or idp.get("sso_url", ""),
                "entity_id": idp["entity_id"],
                "role_claim": app["settings"]["role_claim"],
                "roles": dict(app["settings"]["roles"]),
                "courses": dict(app["settings"]["courses"]),
            }
        )
    return sources
