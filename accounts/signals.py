"""Sign-ins into the audit log: Django's login signals and django-axes' lockout signal.

Connected in ``PortalConfig.ready``, after django-axes connected its own (it comes first in
INSTALLED_APPS): when a failed login reaches us, axes has already counted it and marked the
request locked out, so an attempt refused by the lock can be told from a wrong password.
A password is never recorded: Django hands receivers the credentials with it masked, and
only the user name is kept.
"""

from __future__ import annotations

from axes.helpers import get_cool_off, get_failure_limit
from axes.signals import user_locked_out
from django.contrib.auth import get_user_model
from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed

from core.audit import Category, Result, Source, Target, audit_record, describe, never_fails, request_source

# An attempt that started a lockout (request attribute): its own failure was a wrong password.
_LOCK_STARTED = "_nestlab_lock_started"


def _action(request) -> str:
    return "api.token" if request is not None and request_source(request) == Source.API else "auth.login"


def _account(username: str) -> Target:
    user = get_user_model()._default_manager.filter(**{get_user_model().USERNAME_FIELD: username}).first()
    return describe(user) if user is not None else Target(text=f"account {username} (no such account)", type="user")


@never_fails
def logged_in(sender, request, user, **kwargs) -> None:
    audit_record(
        category=Category.LOGIN,
        action=_action(request),
        result=Result.SUCCEEDED,
        actor=user,
        target=describe(user),
        detail="Signed in.",
        request=request,
    )


@never_fails
def logged_out(sender, request, user, **kwargs) -> None:
    if user is None:  # logging out while not signed in
        return
    audit_record(
        category=Category.LOGOUT,
        action="auth.logout",
        result=Result.SUCCEEDED,
        actor=user,
        target=describe(user),
        detail="Signed out.",
        request=request,
    )


@never_fails
def login_failed(sender, credentials: dict, request=None, **kwargs) -> None:
    username = str(credentials.get(get_user_model().USERNAME_FIELD) or credentials.get("username") or "")
    locked_before = getattr(request, "axes_locked_out", False) and not getattr(request, _LOCK_STARTED, False)
    audit_record(
        category=Category.LOGIN_FAILED,
        action=_action(request),
        result=Result.REFUSED if locked_before else Result.FAILED,
        actor_username=username,
        target=_account(username) if username else None,
        detail=(
            "Refused without checking the password: this user name is locked out from this address."
            if locked_before
            else "Wrong user name or password."
        ),
        request=request,
    )


@never_fails
def locked_out(sender, request, username, ip_address, **kwargs) -> None:
    """axes sends this on the failure that reaches the limit and again on every attempt while
    locked; only the first is a lockout (the others are failed logins, refused)."""
    failures = getattr(request, "axes_failures_since_start", None)
    credentials = getattr(request, "axes_credentials", None)
    if failures is None or failures != get_failure_limit(request, credentials):
        return
    setattr(request, _LOCK_STARTED, True)
    cool_off = get_cool_off(request)
    how_long = f"for {int(cool_off.total_seconds() // 60)} minutes" if cool_off else "until an admin unlocks it"
    audit_record(
        category=Category.LOCKOUT,
        action="auth.lockout",
        result=Result.REFUSED,
        actor_username=username or "",
        target=_account(username) if username else None,
        detail=f"Locked out from {ip_address} after {failures} failed logins in a row, {how_long}.",
        remote_addr=ip_address,
        request=request,
    )


def connect() -> None:
    user_logged_in.connect(logged_in, dispatch_uid="nestlab-audit-login")
    user_logged_out.connect(logged_out, dispatch_uid="nestlab-audit-logout")
    user_login_failed.connect(login_failed, dispatch_uid="nestlab-audit-login-failed")
    user_locked_out.connect(locked_out, dispatch_uid="nestlab-audit-lockout")
