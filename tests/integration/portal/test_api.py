"""portal/api.py with the database: the pagination every list shares."""

import pytest
from rest_framework.test import APIClient

from tests.factories import AdminFactory, open_course

pytestmark = pytest.mark.django_db


def _client():
    client = APIClient()
    client.force_authenticate(AdminFactory())
    return client


def test_a_limit_larger_than_the_database_can_hold_gets_the_maximum_not_a_server_error():
    open_course(students=1)
    response = _client().get("/api/v1/courses/", {"limit": 10**20})
    assert response.status_code == 200
    assert response.json()["count"] == 1 and len(response.json()["results"]) == 1


def test_an_offset_past_the_end_is_an_empty_page():
    open_course(students=1)
    response = _client().get("/api/v1/courses/", {"limit": 3, "offset": 2**63 - 2})
    assert response.status_code == 200 and response.json()["results"] == []
