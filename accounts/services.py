"""Accounts: the one rule for making a student or an instructor account, and a student's role.

Pages and API routes of every app call these (a roster's Add and upload, the people page, the
instructors route), so the checks, the password rules and the role are written once.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from rest_framework.authtoken.models import Token

from accounts import permissions
from accounts.models import API_KEY_PREFIX, API_KEYS_PER_PERSON, ApiKey, api_key_digest
from core import audit, roles
from core.validation import save_valid

User = get_user_model()


def _require(allowed: bool, message: str) -> None:
    if not allowed:
        raise PermissionDenied(message)


def student_role_ensure(user: AbstractBaseUser) -> None:
    """Make an account a student before it is enrolled; a staff account is refused (one person
    does not teach and take a course with one account)."""
    if roles.is_admin(user) or roles.is_instructor(user):
        raise ValidationError(f"{user.username} is a staff account, not a student.")
    if not roles.is_student(user):
        roles.role_grant(user=user, role=roles.Role.STUDENT)


@transaction.atomic
def student_create(
    *,
    actor: AbstractBaseUser,
    username: str,
    email: str = "",
    first_name: str = "",
    last_name: str = "",
    password: str | None = None,
) -> tuple[AbstractBaseUser, str | None]:
    """A student account. Without a password one is generated and returned (shown once)."""
    _require(permissions.can_create_students(actor), "Only instructors and admins can add students.")
    generated = None
    if not password:
        generated = password = secrets.token_urlsafe(9)
    user = User(username=username, email=email, first_name=first_name, last_name=last_name)
    if generated is None:
        # A student's password meets the same rules as everyone's (AUTH_PASSWORD_VALIDATORS).
        validate_password(password, user)
    user.set_password(password)
    user.full_clean(exclude=["password"])
    user.save()
    roles.role_grant(user=user, role=roles.Role.STUDENT)
    return user, generated


@transaction.atomic
def instructor_create(
    *,
    actor: AbstractBaseUser,
    username: str,
    password: str,
    email: str = "",
    first_name: str = "",
    last_name: str = "",
) -> AbstractBaseUser:
    """An instructor account; the password meets the password rules."""
    _require(permissions.can_create_instructors(actor), "Only admins can add instructors.")
    user = User(username=username, email=email, first_name=first_name, last_name=last_name)
    validate_password(password, user)
    user.set_password(password)
    user.full_clean(exclude=["password"])
    user.save()
    roles.role_grant(user=user, role=roles.Role.INSTRUCTOR)
    return user


def api_token_hand_out(*, user: AbstractBaseUser, request=None) -> Token:
    """A signed-in person's one API token: made on the first call, the same one after that
    (until an admin revokes it). Audited either way, so a token's use can be traced to its hand-out."""
    token, created = Token.objects.get_or_create(user=user)
    audit.audit_record(
        category=audit.Category.TOKEN,
        action="api.token",
        result=audit.Result.SUCCEEDED,
        actor=user,
        target=audit.describe(user),
        detail="A new API token was created." if created else "The existing API token was handed out.",
        request=request,
    )
    return token


@transaction.atomic
def api_key_create(*, user: AbstractBaseUser, name: str, request=None) -> tuple[ApiKey, str]:
    """A new named API key for ``user``; returns it and the whole key, which is shown this once
    (only its digest is kept). Refused beyond ``API_KEYS_PER_PERSON`` or with a name in use."""
    if not user.is_authenticated:
        raise PermissionDenied("Sign in to make an API key.")
    User.objects.select_for_update().filter(pk=user.pk).first()  # two tabs cannot pass the limit together
    if ApiKey.objects.filter(user=user).count() >= API_KEYS_PER_PERSON:
        raise ValidationError(
            f"You have {API_KEYS_PER_PERSON} API keys, the most one person may have: revoke one you no longer use."
        )
    name = (name or "").strip()
    if ApiKey.objects.filter(user=user, name=name).exists():
        raise ValidationError({"name": f"You have a key called {name} already: give this one another name."})
    secret = API_KEY_PREFIX + secrets.token_urlsafe(32)
    key = ApiKey(user=user, name=name, prefix=secret[: len(API_KEY_PREFIX) + 6], digest=api_key_digest(secret))
    save_valid(key)
    audit.audit_record(
        category=audit.Category.TOKEN,
        action="api_key.create",
        result=audit.Result.SUCCEEDED,
        actor=user,
        target=audit.describe(user),
        detail=f"API key '{name}' ({key.prefix}…) was made.",
        request=request,
    )
    return key, secret


@transaction.atomic
def api_key_revoke(*, key: ApiKey, actor: AbstractBaseUser, request=None) -> None:
    """Revoke a key: its owner, or an admin. Requests sending it are refused from now on."""
    _require(key.user_id == actor.pk or roles.is_admin(actor), "Only its owner or an admin can revoke an API key.")
    key.delete()
    audit.audit_record(
        category=audit.Category.TOKEN,
        action="api_key.revoke",
        result=audit.Result.SUCCEEDED,
        actor=actor,
        target=audit.describe(key.user),
        detail=f"API key '{key.name}' ({key.prefix}…) was revoked.",
        request=request,
    )


def password_changed(*, user: AbstractBaseUser, request=None, by_reset: bool = False) -> None:
    """Record a password change (on the account page, or through a reset e-mail)."""
    audit.audit_record(
        category=audit.Category.ACCOUNT,
        action="auth.password_reset" if by_reset else "auth.password_change",
        result=audit.Result.SUCCEEDED,
        actor=user,
        target=audit.describe(user),
        detail="The password was set through a reset e-mail." if by_reset else "The password was changed.",
        request=request,
    )


# What other apps do at a school sign-in (courses enrolls by group): they register here at start-up,
# since accounts sits below them. Each is called with the person, the identity source's values
# (group DNs, claim values) mapped through its settings, and the source's name.
SignInHook = Callable[..., object]
sign_in_hooks: list[SignInHook] = []


def register_sign_in_hook(hook: SignInHook) -> None:
    if hook not in sign_in_hooks:
        sign_in_hooks.append(hook)


def identity_signed_in(*, user: AbstractBaseUser, values: set[str], course_map: dict[str, str], source: str) -> None:
    """After a sign-in through the directory or an identity provider: the courses its values name."""
    codes = {course_map[value] for value in values if value in course_map}
    for hook in sign_in_hooks:
        hook(user=user, course_codes=codes, source=source)


@transaction.atomic
def role_set(*, user: AbstractBaseUser, role: roles.Role, source: str) -> None:
    """Give ``user`` exactly ``role`` as an identity source says (the directory, an identity
    provider, an LMS): the other roles' groups are left; a superuser stays one. Recorded when it
    changes."""
    before = roles.primary_role(user)
    if before == role and roles.roles_of(user) == frozenset({role}):
        return
    for other in roles.Role:
        if other != role:
            roles.role_revoke(user=user, role=other)
    roles.role_grant(user=user, role=role)
    audit.audit_record(
        category=audit.Category.ACCOUNT,
        action="auth.role_set",
        result=audit.Result.SUCCEEDED,
        actor=None,
        target=audit.describe(user),
        detail=f"Role {role.value} from the {source}" + (f" (was {before.value})." if before else "."),
    )
