"""Accounts: the one rule for making a student or an instructor account, and a student's role.

Pages and API routes of every app call these (a roster's Add and upload, the people page, the
instructors route), so the checks, the password rules and the role are written once.
"""

from __future__ import annotations

import secrets

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from rest_framework.authtoken.models import Token

from accounts import permissions
from core import audit, roles

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
