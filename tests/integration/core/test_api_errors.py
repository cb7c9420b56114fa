"""core/api_errors.py: under /api/, every error is JSON with detail, DEBUG on or off."""

import pytest
from django.test import Client

from tests.factories import StudentFactory

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("debug", [False, True])
def test_an_unknown_api_address_is_a_json_404_in_every_profile(settings, debug):
    settings.DEBUG = debug
    response = Client().get("/api/v1/no-such-route/")
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"detail": "Nothing answers at this address; the API's routes are at /api/docs/."}


def test_pages_keep_their_html_404(settings):
    settings.DEBUG = True
    response = Client().get("/no-such-page/")
    assert response.status_code == 404 and response["Content-Type"].startswith("text/html")


def test_a_failure_with_debug_on_is_json_and_still_logged(settings, monkeypatch, caplog):
    from courses.api import views

    settings.DEBUG = True

    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(views.CourseViewSet, "list", broken)
    client = Client(raise_request_exception=False)
    client.force_login(StudentFactory())
    response = client.get("/api/v1/courses/")
    assert response.status_code == 500
    assert response.json() == {"detail": "Something went wrong on the server; it was logged."}
    assert any("boom" in record.getMessage() or record.exc_info for record in caplog.records)
