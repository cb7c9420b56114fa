"""accounts/api/views.py: the caller's own API keys."""

from __future__ import annotations

import pytest

from accounts import services
from accounts.models import ApiKey
from tests.factories import StudentFactory
from tests.integration.courses.api.conftest import client_for

pytestmark = pytest.mark.django_db
URL = "/api/v1/account/keys/"


def test_a_key_is_made_listed_without_its_secret_and_revoked():
    user = StudentFactory()
    client = client_for(user)
    made = client.post(URL, {"name": "notebook"}, format="json")
    assert made.status_code == 201
    secret = made.json()["key"]
    assert secret.startswith("nlk_")
    listed = client.get(URL).json()
    assert [row["name"] for row in listed["results"]] == ["notebook"]
    assert secret not in str(listed) and "key" not in listed["results"][0]
    assert client.delete(f"{URL}{made.json()['id']}/").status_code == 204
    assert not ApiKey.objects.filter(user=user).exists()


def test_bad_names_are_a_400_in_words():
    client = client_for(StudentFactory())
    assert client.post(URL, {"name": ""}, format="json").status_code == 400
    client.post(URL, {"name": "laptop"}, format="json")
    again = client.post(URL, {"name": "laptop"}, format="json")
    assert again.status_code == 400 and "called laptop already" in str(again.json())


def test_someone_elses_key_does_not_exist_for_you():
    key, _ = services.api_key_create(user=StudentFactory(), name="laptop")
    client = client_for(StudentFactory())
    assert client.delete(f"{URL}{key.pk}/").status_code == 404
    assert client.get(URL).json()["results"] == []
    assert ApiKey.objects.filter(pk=key.pk).exists()
