"""accounts/signals.py: sign-ins, failed ones, sign-outs and django-axes lockouts in the audit log,
through the real login page and token route (never the password)."""

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from core.models import AuditEntry
from tests.factories import DEFAULT_PASSWORD, StudentFactory

pytestmark = pytest.mark.django_db

ADDRESS = "10.1.2.3"


def _login(client, username, password):
    return client.post(reverse("login"), {"username": username, "password": password}, REMOTE_ADDR=ADDRESS)


def _entries(**filters):
    return list(AuditEntry.objects.filter(**filters).order_by("id"))


def _no_password_anywhere(password: str) -> None:
    for row in AuditEntry.objects.values():
        assert all(password not in str(value) for value in row.values()), row


def test_a_login_and_a_logout_are_recorded(client):
    student = StudentFactory()
    assert _login(client, student.username, DEFAULT_PASSWORD).status_code == 302
    client.post(reverse("logout"), REMOTE_ADDR=ADDRESS)
    login, logout = _entries()
    assert (login.category, login.action, login.result, login.actor, login.source, login.remote_addr) == (
        "login",
        "auth.login",
        "succeeded",
        student,
        "page",
        ADDRESS,
    )
    assert login.target == f"account {student.username} (#{student.pk})"
    assert (logout.category, logout.action, logout.actor) == ("logout", "auth.logout", student)
    _no_password_anywhere(DEFAULT_PASSWORD)


def test_a_wrong_password_records_the_name_tried_and_never_the_password(client):
    student = StudentFactory()
    _login(client, student.username, "Tr0ub4dor&3")
    [entry] = _entries()
    assert (entry.category, entry.result, entry.actor, entry.actor_username) == (
        "login_failed",
        "failed",
        None,
        student.username,
    )
    assert (entry.target_type, entry.target_id, entry.remote_addr) == ("user", str(student.pk), ADDRESS)
    assert entry.detail == "Wrong user name or password."
    _no_password_anywhere("Tr0ub4dor&3")


def test_a_name_that_is_no_account_is_said_so(client):
    _login(client, "ghost", "boo")
    [entry] = _entries()
    assert (entry.actor_username, entry.target, entry.target_id) == ("ghost", "account ghost (no such account)", "")


def test_a_lockout_is_recorded_once_and_later_attempts_as_refused(client, settings):
    student = StudentFactory()
    for _ in range(settings.AXES_FAILURE_LIMIT):
        _login(client, student.username, "guess")
    assert _login(client, student.username, DEFAULT_PASSWORD).status_code == 429
    assert _login(client, student.username, "guess").status_code == 429

    failed = _entries(category="login_failed")
    assert [entry.result for entry in failed] == ["failed"] * settings.AXES_FAILURE_LIMIT + ["refused", "refused"]
    assert failed[-1].detail.startswith("Refused without checking the password")
    [lockout] = _entries(category="lockout")
    assert (lockout.actor_username, lockout.result, lockout.remote_addr) == (student.username, "refused", ADDRESS)
    assert lockout.detail == f"Locked out from {ADDRESS} after 5 failed logins in a row, for 15 minutes."
    assert not _entries(category="refusal"), "the lockout page is not a refusal of its own"
    assert not _entries(category="login")
    _no_password_anywhere(DEFAULT_PASSWORD)


def test_a_wrong_password_for_an_api_token_is_a_failed_login_from_the_api():
    student = StudentFactory()
    APIClient().post("/api/v1/auth/token/", {"username": student.username, "password": "nope"}, REMOTE_ADDR=ADDRESS)
    [entry] = _entries()
    assert (entry.category, entry.action, entry.source, entry.actor_username) == (
        "login_failed",
        "api.token",
        "api",
        student.username,
    )


def test_signing_in_works_even_when_recording_it_fails(client, monkeypatch, caplog):
    def broken(user):
        raise RuntimeError("the audit log is broken")

    monkeypatch.setattr("accounts.signals.describe", broken)
    student = StudentFactory()
    assert _login(client, student.username, DEFAULT_PASSWORD).status_code == 302
    assert client.get(reverse("home")).status_code == 200
    assert "Could not record logged_in in the audit log" in caplog.text
    assert not _entries()
