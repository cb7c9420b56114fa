"""Sign-in through the school's identity provider by OpenID Connect (Keycloak, Entra ID, Google,
...) with django-allauth: a person's role comes from a claim (e.g. ``groups``), checked at every
sign-in; the first sign-in makes the account, later ones update its name, e-mail and role.

Providers are configured in ``NESTLAB_OIDC_PROVIDERS`` (docs/identity.md); each names its role
claim and the value of that claim for each role. Someone whose claim names no role is refused
with words, and the refusal is recorded.
"""

from __future__ import annotations

from typing import Any

from allauth.account.adapter import DefaultAccountAdapter
from allauth.account.auth_backends import AuthenticationBackend
from allauth.account.signals import user_logged_in
from allauth.core.exceptions import ImmediateHttpResponse
from allauth.socialaccount.adapter import DefaultSocialAccountAdapter
from django.contrib.auth import get_user_model
from django.dispatch import receiver
from django.shortcuts import render

from accounts import services
from core import audit, roles

STAFF_EMAIL_WORDS = (
    "An instructor's or admin's account in Nestlab has this e-mail address, and a school sign-in never "
    "takes over a staff account by its e-mail. Sign in with your Nestlab password, or ask an admin."
)
REFUSED_WORDS = (
    "Your school account is in no group that Nestlab knows, so it cannot sign you in. "
    "Ask your instructor or the school's IT to add you to the right group."
)


def claims_of(extra_data: dict[str, Any]) -> dict[str, Any]:
    """A provider's claims about a person: the ID token's, with the userinfo answer on top."""
    return {**(extra_data.get("id_token") or {}), **(extra_data.get("userinfo") or {})}


def claim_values(claims: dict[str, Any], provider_settings: dict[str, Any]) -> set[str]:
    """The values of the provider's role claim (a list, or one value)."""
    held = claims.get(provider_settings.get("role_claim", "groups"))
    return set(held) if isinstance(held, list) else {held} if held else set()


def claim_role(claims: dict[str, Any], provider_settings: dict[str, Any]) -> roles.Role | None:
    """The first role (admin, instructor, student) whose configured value the role claim holds."""
    values = claim_values(claims, provider_settings)
    wanted = provider_settings.get("roles", {})
    for role in roles.PRECEDENCE:
        if wanted.get(role.value) and wanted[role.value] in values:
            return role
    return None


class ClosedAccountAdapter(DefaultAccountAdapter):
    """Nobody signs up through allauth: accounts come from rosters, admins and identity providers."""

    def is_open_for_signup(self, request) -> bool:
        return False


class SchoolSocialAccountAdapter(DefaultSocialAccountAdapter):
    def is_open_for_signup(self, request, sociallogin) -> bool:
        return True  # the provider vouches for the person; the role check below decides

    def pre_social_login(self, request, sociallogin) -> None:
        claims = claims_of(sociallogin.account.extra_data)
        if claim_role(claims, sociallogin.provider.app.settings) is None:
            self._refuse(request, sociallogin, claims, "in no group that gives a role.", REFUSED_WORDS)
        # A first sign-in through this provider (its account is not saved yet; allauth may have
        # matched an existing Nestlab account by e-mail already): a provider that lets people
        # choose their e-mail must not hand an instructor's or an admin's account to whoever typed it.
        if sociallogin.account.pk is None and _staff_has_email(claims.get("email")):
            self._refuse(request, sociallogin, claims, "its e-mail is a staff account's.", STAFF_EMAIL_WORDS)

    def _refuse(self, request, sociallogin, claims: dict, reason: str, words: str) -> None:
        who = claims.get("preferred_username") or claims.get("email") or claims.get("sub", "")
        audit.audit_record(
            category=audit.Category.LOGIN_FAILED,
            action="auth.oidc",
            result=audit.Result.REFUSED,
            actor_username=str(who)[:150],
            detail=f"{sociallogin.provider.name}: {reason}",
            request=request,
        )
        raise ImmediateHttpResponse(render(request, "core/forbidden.html", {"message": words}, status=403))


def _staff_has_email(email: str | None) -> bool:
    if not email:
        return False
    people = get_user_model().objects.filter(email__iexact=email)
    return any(person.is_superuser or roles.is_admin(person) or roles.is_instructor(person) for person in people)


class IdentityProviderSessionBackend(AuthenticationBackend):
    """Keeps people signed in through an identity provider signed in (Django reloads a session's
    user through the backend that signed them in); it checks no password itself, so turning
    local passwords off (``NESTLAB_LOCAL_PASSWORDS``) leaves no way around it."""

    def authenticate(self, request, **credentials):
        return None


@receiver(user_logged_in)
def identity_provider_signed_in(sender, request, user, sociallogin=None, **kwargs) -> None:
    """Every sign-in through a provider: name, e-mail and role as the provider says now."""
    if sociallogin is None:
        return
    claims = claims_of(sociallogin.account.extra_data)
    changed = []
    for field, claim in (("first_name", "given_name"), ("last_name", "family_name"), ("email", "email")):
        value = (claims.get(claim) or "")[:150]
        if value and getattr(user, field) != value:
            setattr(user, field, value)
            changed.append(field)
    if changed:
        user.save(update_fields=changed)
    provider_settings = sociallogin.provider.app.settings
    role = claim_role(claims, provider_settings)
    if role is not None:
        services.role_set(user=user, role=role, source=f"identity provider {sociallogin.provider.name}")
    services.identity_signed_in(
        user=user,
        values=claim_values(claims, provider_settings),
        course_map=provider_settings.get("courses", {}),
        source=f"identity provider {sociallogin.provider.name}",
    )
