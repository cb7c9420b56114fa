"""Sign-in through the school's identity provider with django-allauth, by OpenID Connect
(Keycloak, Entra ID, Google, ...) or SAML 2.0 (Shibboleth, Entra ID, ADFS, ...): a person's role
comes from a claim (e.g. ``groups``, or a SAML attribute such as ``isMemberOf``), checked at every
sign-in; the first sign-in makes the account, later ones update its name, e-mail and role.

Providers are configured in ``NESTLAB_OIDC_PROVIDERS`` and ``NESTLAB_SAML_PROVIDERS``
(docs/identity.md); each names its role claim and the value of that claim for each role. Both
kinds are read into one shape, claims named as OpenID Connect names them (``claims_of``), so
the rules below are the same for both. Someone whose claim names no role is refused with words,
and the refusal is recorded.
"""

from __future__ import annotations

from typing import Any

from allauth.account.adapter import DefaultAccountAdapter
from allauth.account.auth_backends import AuthenticationBackend
from allauth.account.signals import user_logged_in
from allauth.core.exceptions import ImmediateHttpResponse
from allauth.socialaccount.adapter import DefaultSocialAccountAdapter
from allauth.socialaccount.providers.base.constants import AuthError
from django.contrib.auth import get_user_model
from django.dispatch import receiver
from django.shortcuts import render

from accounts import selectors, services
from core import audit, roles

STAFF_EMAIL_WORDS = (
    "An instructor's or admin's account in Nestlab has this e-mail address, and a school sign-in never "
    "takes over a staff account by its e-mail. Sign in with your Nestlab password, or ask an admin."
)
FAILED_WORDS = (
    "The sign-in with your school account did not go through: its answer did not pass Nestlab's "
    "checks, or it came too late. Try again from the sign-in page; if it keeps failing, tell the school's IT."
)
TAKEN_EMAIL_WORDS = (
    "A Nestlab account has this e-mail address already, and your school's sign-in does not vouch for "
    "the address, so it cannot take that account over. Sign in with your Nestlab password, or ask an admin "
    "to link your school account to it."
)
REFUSED_WORDS = (
    "Your school account is in no group that Nestlab knows, so it cannot sign you in. "
    "Ask your instructor or the school's IT to add you to the right group."
)


def oidc_claims(extra_data: dict[str, Any]) -> dict[str, Any]:
    """An OpenID Connect provider's claims about a person: the ID token's, with the userinfo
    answer on top."""
    return {**(extra_data.get("id_token") or {}), **(extra_data.get("userinfo") or {})}


# Nestlab's names for a person's details (allauth's SAML attribute mapping) -> the OIDC claim.
SAML_CLAIM_NAMES = {
    "email": "email",
    "first_name": "given_name",
    "last_name": "family_name",
    "username": "preferred_username",
}


def saml_claims(attributes: dict[str, list[str]], provider_settings: dict[str, Any], *, uid: str) -> dict[str, Any]:
    """A SAML assertion's attributes (each a list of values, by attribute name) as OIDC-style
    claims: ``sub`` the person's id, the details their mapped attributes' first values, and the
    role claim every value of the role attribute."""
    claims: dict[str, Any] = {"sub": uid}
    for key, claim in SAML_CLAIM_NAMES.items():
        names = provider_settings.get("attribute_mapping", {}).get(key, [])
        for name in [names] if isinstance(names, str) else names:
            if attributes.get(name):
                claims[claim] = attributes[name][0]
                break
    role_claim = provider_settings.get("role_claim", "groups")
    claims[role_claim] = list(attributes.get(role_claim) or [])
    return claims


def claims_of(sociallogin) -> dict[str, Any]:
    """What the provider of a sign-in says about the person, whatever the provider's kind."""
    account = sociallogin.account
    if sociallogin.provider.id == "saml":
        return saml_claims(account.extra_data, sociallogin.provider.app.settings, uid=account.uid)
    return oidc_claims(account.extra_data)


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

    def authenticate_by_email(self, sociallogin):
        # A SAML IdP tells nothing of whether an e-mail is verified unless it sends an attribute
        # for it; an entry with "email_verified" says the IdP's e-mail is the school's own (from
        # its directory), so a roster's account is reached by it as with a verified OIDC e-mail.
        if sociallogin.provider.app.settings.get("email_verified"):
            for address in sociallogin.email_addresses:
                address.verified = True
        return super().authenticate_by_email(sociallogin)

    def pre_social_login(self, request, sociallogin) -> None:
        claims = claims_of(sociallogin)
        if claim_role(claims, sociallogin.provider.app.settings) is None:
            self._refuse(request, sociallogin, claims, "in no group that gives a role.", REFUSED_WORDS)
        # A first sign-in through this provider (its account is not saved yet; allauth may have
        # matched an existing Nestlab account by e-mail already): a provider that lets people
        # choose their e-mail must not hand an instructor's or an admin's account to whoever typed it.
        if sociallogin.account.pk is None and selectors.staff_has_email(claims.get("email")):
            self._refuse(request, sociallogin, claims, "its e-mail is a staff account's.", STAFF_EMAIL_WORDS)
        # A new account whose e-mail another has, when the provider does not vouch for it (allauth
        # reached no account by it): allauth would ask for another address on a sign-up page
        # Nestlab does not serve; say why instead.
        if not sociallogin.is_existing and _someone_has_email(claims.get("email")):
            self._refuse(request, sociallogin, claims, "its e-mail is another account's.", TAKEN_EMAIL_WORDS)

    def on_authentication_error(self, request, provider, error=None, exception=None, extra_context=None) -> None:
        """An answer from the provider that allauth refused (a bad signature, an expired or
        unexpected response, a provider's error): recorded, and refused in words. A person who
        cancelled at the provider gets allauth's own page."""
        if error == AuthError.CANCELLED:
            return
        reason = (extra_context or {}).get("saml_last_error_reason") or (str(exception) if exception else "") or error
        _record_refusal(request, provider, who="", reason=f"its answer was refused ({reason}).")
        raise ImmediateHttpResponse(render(request, "core/forbidden.html", {"message": FAILED_WORDS}, status=401))

    def _refuse(self, request, sociallogin, claims: dict, reason: str, words: str) -> None:
        who = claims.get("preferred_username") or claims.get("email") or claims.get("sub", "")
        _record_refusal(request, sociallogin.provider, who=str(who), reason=reason)
        raise ImmediateHttpResponse(render(request, "core/forbidden.html", {"message": words}, status=403))


def _record_refusal(request, provider, *, who: str, reason: str) -> None:
    audit.audit_record(
        category=audit.Category.LOGIN_FAILED,
        action="auth.saml" if provider.id == "saml" else "auth.oidc",
        result=audit.Result.REFUSED,
        actor_username=who[:150],
        detail=f"{provider.name}: {reason}"[:1000],
        request=request,
    )


def _someone_has_email(email: str | None) -> bool:
    return bool(email) and get_user_model().objects.filter(email__iexact=email).exists()


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
    claims = claims_of(sociallogin)
    changed = []
    for field, claim in (("first_name", "given_name"), ("last_name", "family_name"), ("email", "email")):
        value = claims.get(claim)
        # A claim of another shape (a list, an object) is left out; an e-mail is never cut.
        value = value[: 254 if field == "email" else 150] if isinstance(value, str) else ""
        if field == "email" and len(claims.get(claim) or "") > 254:
            value = ""
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
