"""core/api.py through real API routes: every refusal of a signed-in caller is in the audit
log once, with what was refused and why; a bad token is a failed login; the pagination every
list shares."""

import pytest
from rest_framework.test import APIClient

from core.models import AuditEntry
from labs import services as lab_services
from tests.factories import AdminFactory, StudentFactory, open_course
from tests.integration.labs.api.conftest import client_for, ready_lab

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def no_queue(monkeypatch):
    monkeypatch.setattr(lab_services.dispatch, "send_operation", lambda *args, **kwargs: None)


def _refusals():
    return list(AuditEntry.objects.filter(category="refusal").order_by("id"))


def test_a_services_refusal_is_recorded_once_with_the_route_and_the_lab():
    course = open_course(quota={"snapshots_per_lab": 0})
    lab = ready_lab(course)
    response = client_for(lab.student).post(
        f"/api/v1/labs/{lab.pk}/snapshots/", {"name": "before"}, format="json", REMOTE_ADDR="10.4.5.6"
    )
    assert response.status_code == 403
    [entry] = _refusals()
    assert (entry.actor, entry.source, entry.action, entry.result) == (
        lab.student,
        "api",
        "api:lab-snapshots",
        "refused",
    )
    assert (entry.target_type, entry.target_id, entry.remote_addr) == ("lab", str(lab.pk), "10.4.5.6")
    assert entry.detail == f"{response.json()['detail']} (POST /api/v1/labs/{lab.pk}/snapshots/)"


def test_a_permission_class_refusal_is_recorded():
    student = StudentFactory()
    assert client_for(student).get("/api/v1/audit/").status_code == 403
    [entry] = _refusals()
    assert (entry.actor, entry.action) == (student, "api:audit-entry-list")
    assert entry.detail == "Only admins read the audit log. (GET /api/v1/audit/)"


def test_not_found_for_a_lab_that_exists_is_a_refusal_and_for_none_is_not():
    course = open_course(students=2)
    lab = ready_lab(course, 0)
    classmate = course.enrollments.exclude(student=lab.student).get().student
    client = client_for(classmate)
    assert client.post(f"/api/v1/labs/{lab.pk}/reset/").status_code == 404
    assert client.post(f"/api/v1/labs/{lab.pk + 1000}/reset/").status_code == 404
    [entry] = _refusals()
    assert (entry.actor, entry.action, entry.target_id) == (classmate, "api:lab-reset", str(lab.pk))
    assert "which exists: it is not theirs to see" in entry.detail


def test_a_token_that_does_not_authenticate_is_a_failed_login_without_the_token():
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token 0123456789abcdef")
    assert client.get("/api/v1/courses/").status_code in (401, 403)
    [entry] = AuditEntry.objects.all()
    assert (entry.category, entry.action, entry.result, entry.source) == (
        "login_failed",
        "api.token_auth",
        "failed",
        "api",
    )
    assert entry.detail == "Invalid token. (GET /api/v1/courses/)"
    assert "0123456789abcdef" not in str(AuditEntry.objects.values().get())


def test_anonymous_callers_are_asked_to_sign_in_not_refused():
    assert APIClient().get("/api/v1/audit/").status_code == 403
    assert not AuditEntry.objects.exists()


# Pagination


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


# Bad input (issue 10): each was a 500


def test_deeply_nested_json_is_a_400_in_words_without_a_traceback(caplog):
    body = "[" * 100_000
    for route, client in (("/api/v1/auth/token/", APIClient()), ("/api/v1/courses/", _client())):
        response = client.post(route, body, content_type="application/json")
        assert response.status_code == 400, route
        assert response.json() == {"detail": "JSON nested more than 32 levels deep is not accepted."}
    assert not [record for record in caplog.records if record.levelname in ("ERROR", "CRITICAL")]


@pytest.mark.parametrize("route", ["/api/v1/auth/token/", "/api/v1/courses/"])
def test_an_empty_multipart_body_is_a_400_with_a_json_body(route):
    client = APIClient() if "token" in route else _client()
    response = client.generic("POST", route, b"", content_type="multipart/form-data; boundary=nestlab")
    assert response.status_code == 400
    assert response["Content-Type"] == "application/json"
    assert response.json()["detail"]


@pytest.mark.parametrize(("name", "value"), [("limit", "abc"), ("limit", "0"), ("limit", "1.5"), ("offset", "-1")])
def test_limit_and_offset_are_whole_numbers_or_a_400_in_words(name, value):
    response = _client().get("/api/v1/courses/", {name: value})
    assert response.status_code == 400
    minimum = 1 if name == "limit" else 0
    assert response.json()["errors"][name] == [f"“{value}” is not a whole number from {minimum}."]


def test_a_course_without_a_version_answers_every_field_its_schema_names():
    from drf_spectacular.generators import SchemaGenerator

    from tests.factories import InstructorFactory

    schema = SchemaGenerator().get_schema(request=None, public=True)
    created = schema["paths"]["/api/v1/courses/"]["post"]["responses"]["201"]["content"]["application/json"]
    component = schema["components"]["schemas"][created["schema"]["$ref"].split("/")[-1]]
    client = APIClient()
    client.force_authenticate(InstructorFactory())
    response = client.post(
        "/api/v1/courses/",
        {"title": "No version yet", "code": "nv1", "starts_on": "2026-09-01", "ends_on": "2027-01-31"},
        format="json",
    )
    assert response.status_code == 201
    assert set(response.json()) == set(component["properties"])
    assert set(component["required"]) <= set(response.json())
