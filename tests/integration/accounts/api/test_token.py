"""courses/api/views.py: API tokens, and the two ways to sign in (session and token)."""

import pytest
from django.contrib.auth.backends import ModelBackend
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from tests.factories import DEFAULT_PASSWORD, InstructorFactory, StudentFactory
from tests.integration.courses.api.conftest import make_course

pytestmark = pytest.mark.django_db

TOKEN_URL = "/api/v1/auth/token/"


class RecordingBackend(ModelBackend):
    """Remembers the request each authenticate() call got (login rate limiting needs it)."""

    requests: list = []

    def authenticate(self, request, username=None, password=None, **kwargs):
        RecordingBackend.requests.append(request)
        return super().authenticate(request, username=username, password=password, **kwargs)


def test_a_token_works_end_to_end():
    teacher = InstructorFactory()
    response = APIClient().post(TOKEN_URL, {"username": teacher.username, "password": DEFAULT_PASSWORD}, format="json")
    assert response.status_code == 200
    token = response.json()["token"]
    assert Token.objects.get(user=teacher).key == token

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    created = client.post(
        "/api/v1/courses/",
        {"title": "By token", "code": "by-token", "starts_on": "2026-09-01", "ends_on": "2026-10-01"},
        format="json",
    )
    assert created.status_code == 201, created.json()
    assert [row["code"] for row in client.get("/api/v1/courses/").json()["results"]] == ["by-token"]

    again = APIClient().post(TOKEN_URL, {"username": teacher.username, "password": DEFAULT_PASSWORD})
    assert again.json()["token"] == token, "form data works too, and the token is stable"


def test_wrong_credentials_and_bad_tokens_are_refused():
    student = StudentFactory()
    wrong = APIClient().post(TOKEN_URL, {"username": student.username, "password": "nope"}, format="json")
    assert wrong.status_code == 400
    assert wrong.json()["detail"] == "non_field_errors: Unable to log in with provided credentials."
    assert not Token.objects.exists()
    missing = APIClient().post(TOKEN_URL, {}, format="json")
    assert missing.status_code == 400 and set(missing.json()["errors"]) == {"username", "password"}

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token not-a-token")
    refused = client.get("/api/v1/courses/")
    assert refused.status_code in (401, 403)
    assert refused.json()["detail"] == "Invalid token."


def test_the_token_view_hands_the_request_to_authenticate(settings):
    settings.AUTHENTICATION_BACKENDS = [f"{__name__}.RecordingBackend"]
    RecordingBackend.requests.clear()
    student = StudentFactory()
    APIClient().post(TOKEN_URL, {"username": student.username, "password": DEFAULT_PASSWORD}, format="json")
    APIClient().post(TOKEN_URL, {"username": student.username, "password": "wrong"}, format="json")
    assert len(RecordingBackend.requests) == 2
    assert all(request is not None and request.path == TOKEN_URL for request in RecordingBackend.requests)


def test_a_browser_session_works_and_needs_the_csrf_token_to_write():
    teacher = InstructorFactory()
    course = make_course(teacher)
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(teacher)
    assert client.get(f"/api/v1/courses/{course.pk}/").status_code == 200
    refused = client.patch(f"/api/v1/courses/{course.pk}/", {"title": "x"}, format="json")
    assert refused.status_code == 403 and "CSRF" in refused.json()["detail"]

    # The token endpoint ignores the session, so a signed-in browser can still ask for a token.
    assert client.post(TOKEN_URL, {"username": teacher.username, "password": DEFAULT_PASSWORD}).status_code == 200


def test_anonymous_callers_are_refused_everywhere():
    course = make_course(InstructorFactory())
    client = APIClient()
    for url in (
        "/api/v1/courses/",
        f"/api/v1/courses/{course.pk}/",
        f"/api/v1/courses/{course.pk}/usage/",
        "/api/v1/templates/",
        "/api/v1/endpoints/",
        "/api/v1/operations/",
    ):
        response = client.get(url)
        assert response.status_code == 403, url
        assert response.json()["detail"] == "Authentication credentials were not provided."
    assert client.post("/api/v1/instructors/", {}, format="json").status_code == 403


def test_handing_out_a_token_is_in_the_audit_log():
    from core.models import AuditEntry

    teacher = InstructorFactory()
    for _ in range(2):
        APIClient().post(
            TOKEN_URL, {"username": teacher.username, "password": DEFAULT_PASSWORD}, REMOTE_ADDR="10.7.7.7"
        )
    created, again = AuditEntry.objects.filter(category="token").order_by("id")
    assert (created.actor, created.action, created.result, created.source, created.remote_addr) == (
        teacher,
        "api.token",
        "succeeded",
        "api",
        "10.7.7.7",
    )
    assert (created.detail, again.detail) == ("A new API token was created.", "The existing API token was handed out.")
    token = Token.objects.get(user=teacher).key
    assert all(token not in str(row) for row in AuditEntry.objects.values())
