"""accounts/views.py: the people page (everyone's accounts, for admins) and adding an instructor."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse

from core import roles
from tests.factories import AdminFactory, InstructorFactory, StudentFactory
from tests.integration.courses.test_views import messages_of

pytestmark = pytest.mark.django_db
User = get_user_model()


def test_admin_sees_people_with_their_roles_and_adds_an_instructor(client):
    admin = AdminFactory(username="root-admin")
    StudentFactory(username="sam")
    client.force_login(admin)
    page = client.get(reverse("accounts:people"))
    assert page.status_code == 200
    rows = dict((person.username, names) for person, names in page.context["rows"])
    assert rows["root-admin"] == ["admin"]
    assert rows["sam"] == ["student"]

    response = client.post(
        reverse("accounts:people"),
        {
            "username": "ines",
            "first_name": "Ines",
            "last_name": "Teach",
            "email": "",
            "password": "a-long-passphrase-42",
        },
        follow=True,
    )
    ines = User.objects.get(username="ines")
    assert roles.is_instructor(ines)
    assert ines.check_password("a-long-passphrase-42")
    assert any("ines is an instructor" in text for text in messages_of(response))
    assert b"a-long-passphrase-42" not in response.content

    filtered = client.get(reverse("accounts:people"), {"role": "student"})
    assert [person.username for person, _ in filtered.context["rows"]] == ["sam"]


def test_a_weak_instructor_password_is_refused_on_the_form(client):
    client.force_login(AdminFactory())
    response = client.post(reverse("accounts:people"), {"username": "ines", "password": "123"})
    assert response.status_code == 200
    assert response.context["form"].errors["password"]
    assert not User.objects.filter(username="ines").exists()


def test_a_taken_user_name_is_said_on_the_form(client):
    StudentFactory(username="ines")
    client.force_login(AdminFactory())
    response = client.post(reverse("accounts:people"), {"username": "ines", "password": "a-long-passphrase-42"})
    assert response.context["form"].errors["username"]


@pytest.mark.parametrize("factory", [InstructorFactory, StudentFactory])
def test_only_admins_see_people(client, factory):
    client.force_login(factory())
    assert client.get(reverse("accounts:people")).status_code == 403
    response = client.post(reverse("accounts:people"), {"username": "sneaky", "password": "a-long-passphrase-42"})
    assert response.status_code == 403
    assert not User.objects.filter(username="sneaky").exists()


# Templates
