"""accounts/authentication.py: named API keys and DRF's tokens, both as ``Token <key>``."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from accounts import services
from accounts.models import ApiKey
from tests.factories import StudentFactory

pytestmark = pytest.mark.django_db


def _me(key: str) -> int:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    return client.get("/api/v1/labs/").status_code


def test_a_named_key_signs_its_owner_in_until_revoked():
    user = StudentFactory()
    key, secret = services.api_key_create(user=user, name="laptop")
    assert _me(secret) == 200
    services.api_key_revoke(key=key, actor=user)
    assert _me(secret) == 403


def test_a_wrong_or_forged_key_and_an_inactive_owner_are_refused():
    user = StudentFactory()
    _, secret = services.api_key_create(user=user, name="laptop")
    assert _me(secret[:-1] + ("A" if secret[-1] != "A" else "B")) == 403
    user.is_active = False
    user.save(update_fields=["is_active"])
    assert _me(secret) == 403


def test_the_token_of_the_token_route_still_works_beside_the_keys():
    user = StudentFactory()
    assert _me(Token.objects.create(user=user).key) == 200


def test_last_used_is_written_at_most_once_a_minute():
    user = StudentFactory()
    key, secret = services.api_key_create(user=user, name="poller")
    assert _me(secret) == 200
    first = ApiKey.objects.get(pk=key.pk).last_used_at
    assert first is not None
    assert _me(secret) == 200
    assert ApiKey.objects.get(pk=key.pk).last_used_at == first
    ApiKey.objects.filter(pk=key.pk).update(last_used_at=timezone.now() - timedelta(minutes=2))
    assert _me(secret) == 200
    assert ApiKey.objects.get(pk=key.pk).last_used_at > first
