"""labs/api/views.py: operations and the endpoint check through the REST API."""

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from labs import services
from labs.models import Operation
from tests.factories import AdminFactory, EndpointFactory, StudentFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def no_queue(monkeypatch):
    monkeypatch.setattr(services, "_enqueue", lambda *args: None)


def _client(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def test_admin_starts_an_endpoint_check_and_gets_202_with_the_operation():
    endpoint = EndpointFactory()
    response = _client(AdminFactory()).post(f"/api/v1/endpoints/{endpoint.pk}/check/")
    assert response.status_code == 202
    assert response.json()["state"] == "queued"
    assert response.json()["kind"] == "endpoint_check"
    assert Operation.objects.get(pk=response.json()["id"]).endpoint == endpoint


def test_a_student_gets_403_with_words():
    endpoint = EndpointFactory()
    response = _client(StudentFactory()).post(f"/api/v1/endpoints/{endpoint.pk}/check/")
    assert response.status_code == 403
    assert response.json()["detail"] == "Only admins can check vCenter connections."


def test_an_unknown_endpoint_is_404():
    assert _client(AdminFactory()).post("/api/v1/endpoints/999999/check/").status_code == 404


def test_anonymous_callers_are_refused():
    assert APIClient().get("/api/v1/operations/").status_code == 403


def test_people_see_their_own_operations_and_admins_all():
    admin, other_admin = AdminFactory(), AdminFactory()
    mine = services.endpoint_check_start(endpoint=EndpointFactory(), actor=admin)
    theirs = services.endpoint_check_start(endpoint=EndpointFactory(), actor=other_admin)
    ids = {row["id"] for row in _client(admin).get("/api/v1/operations/").json()["results"]}
    assert ids == {mine.pk, theirs.pk}

    student = StudentFactory()
    assert _client(student).get("/api/v1/operations/").json()["results"] == []
    assert _client(student).get(f"/api/v1/operations/{mine.pk}/").status_code == 404


def test_cancel_through_the_api():
    admin = AdminFactory()
    operation = services.endpoint_check_start(endpoint=EndpointFactory(), actor=admin)
    response = _client(admin).post(f"/api/v1/operations/{operation.pk}/cancel/")
    assert response.status_code == 200
    assert response.json()["state"] == "cancelled"
    again = _client(admin).post(f"/api/v1/operations/{operation.pk}/cancel/")
    assert again.status_code == 400
    assert "already ended" in again.json()["detail"]


def test_page_and_api_share_the_service(client):
    endpoint = EndpointFactory()
    client.force_login(StudentFactory())
    response = client.post(reverse("labs:endpoint-check", args=[endpoint.pk]), follow=True)
    assert b"Only admins can check vCenter connections." in response.content
    assert not Operation.objects.exists()
