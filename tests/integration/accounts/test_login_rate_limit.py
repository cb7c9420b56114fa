"""Login rate limiting (django-axes): five wrong passwords lock the username from that address."""

import pytest
from django.urls import reverse

from tests.factories import DEFAULT_PASSWORD, StudentFactory

pytestmark = pytest.mark.django_db


def _attempt(client, username, password, address="10.1.2.3"):
    return client.post(reverse("login"), {"username": username, "password": password}, REMOTE_ADDR=address)


def test_five_wrong_passwords_lock_the_account_with_a_clear_message(client):
    student = StudentFactory()
    for _ in range(4):
        assert _attempt(client, student.username, "guess").status_code == 200
    locked = _attempt(client, student.username, "guess")
    assert locked.status_code == 429
    assert b"Too many failed logins" in locked.content
    # Even the right password is refused while locked.
    assert _attempt(client, student.username, DEFAULT_PASSWORD).status_code == 429


def test_lockout_is_per_address_so_a_classroom_behind_one_nat_is_not_locked_out(client):
    guessed, classmate = StudentFactory(), StudentFactory()
    for _ in range(5):
        _attempt(client, guessed.username, "guess")
    assert _attempt(client, classmate.username, DEFAULT_PASSWORD).status_code == 302
    assert _attempt(client, guessed.username, DEFAULT_PASSWORD, address="10.9.9.9").status_code == 302


def test_a_success_resets_the_count(client):
    student = StudentFactory()
    for _ in range(4):
        _attempt(client, student.username, "guess")
    assert _attempt(client, student.username, DEFAULT_PASSWORD).status_code == 302
    client.logout()
    for _ in range(4):
        assert _attempt(client, student.username, "guess").status_code == 200
