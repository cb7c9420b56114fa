"""courses/api/views.py: admins create instructor accounts."""

import pytest
from django.contrib.auth import get_user_model

from core import roles
from tests.factories import AdminFactory, InstructorFactory, StudentFactory
from tests.integration.courses.api.conftest import client_for

pytestmark = pytest.mark.django_db

URL = "/api/v1/instructors/"
User = get_user_model()
NEW = {
    "username": "prof.ada",
    "password": "Analytical-Engine-1843",
    "email": "ada@example.edu",
    "first_name": "Ada",
    "last_name": "Lovelace",
}


def test_an_admin_creates_an_instructor():
    response = client_for(AdminFactory()).post(URL, NEW, format="json")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body == {key: NEW[key] for key in ("username", "email", "first_name", "last_name")} | {"id": body["id"]}
    assert b"Analytical-Engine-1843" not in response.content
    user = User.objects.get(username="prof.ada")
    assert roles.is_instructor(user) and not roles.is_admin(user)
    assert user.check_password(NEW["password"])


def test_the_password_rules_apply_and_name_the_field():
    response = client_for(AdminFactory()).post(URL, {**NEW, "password": "12345678"}, format="json")
    assert response.status_code == 400
    assert response.json()["errors"]["password"] == [
        "This password is too common.",
        "This password is entirely numeric.",
    ]
    taken = client_for(AdminFactory()).post(URL, {**NEW, "username": InstructorFactory().username}, format="json")
    assert taken.status_code == 400 and "username" in taken.json()["errors"]
    assert not User.objects.filter(username="prof.ada").exists()


@pytest.mark.parametrize("factory", [InstructorFactory, StudentFactory])
def test_only_admins_create_instructors(factory):
    response = client_for(factory()).post(URL, NEW, format="json")
    assert response.status_code == 403
    assert response.json()["detail"] == "Only admins can add instructors."
    assert not User.objects.filter(username="prof.ada").exists()
