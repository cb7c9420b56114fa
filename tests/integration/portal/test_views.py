import pytest
from django.test import Client
from django.urls import reverse

from tests.factories import (
    DEFAULT_PASSWORD,
    AdminFactory,
    EndpointFactory,
    InstructorFactory,
    StudentFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db


def test_anonymous_visitor_is_sent_to_the_login_page(client):
    response = client.get(reverse("home"))
    assert response.status_code == 302
    assert response.url.startswith(reverse("login"))


def test_login_page_renders_with_the_vendored_css(client):
    response = client.get(reverse("login"))
    assert response.status_code == 200
    assert b"Log in to Nestlab" in response.content
    assert b"vendor/pico/pico.min.css" in response.content
    assert b"cdn" not in response.content.lower()


def test_wrong_password_is_refused_with_a_message(client):
    student = StudentFactory()
    response = client.post(reverse("login"), {"username": student.username, "password": "nope"})
    assert response.status_code == 200
    assert b"Please enter a correct username and password" in response.content


def test_login_then_logout(client):
    student = StudentFactory()
    response = client.post(reverse("login"), {"username": student.username, "password": DEFAULT_PASSWORD})
    assert response.status_code == 302
    assert client.get(reverse("home")).status_code == 200
    response = client.post(reverse("logout"))
    assert response.status_code == 302
    assert client.get(reverse("home")).status_code == 302


@pytest.mark.parametrize(
    ("factory", "heading"),
    [(AdminFactory, b"Administration"), (InstructorFactory, b"Teaching"), (StudentFactory, b"My labs")],
)
def test_each_role_lands_on_its_own_home_page(client, factory, heading):
    client.force_login(factory())
    response = client.get(reverse("home"))
    assert response.status_code == 200
    assert b"<h1>" + heading + b"</h1>" in response.content


def test_admin_home_lists_endpoints_with_a_check_button(client):
    endpoint = EndpointFactory(name="Campus vCenter")
    client.force_login(AdminFactory())
    response = client.get(reverse("home"))
    assert b"Campus vCenter" in response.content
    assert reverse("labs:endpoint-check", args=[endpoint.pk]).encode() in response.content


def test_account_without_role_is_told_so(client):
    client.force_login(UserFactory())
    response = client.get(reverse("home"))
    assert response.status_code == 403
    assert b"no role yet" in response.content


def test_superuser_counts_as_admin(client):
    client.force_login(UserFactory(is_superuser=True, is_staff=True))
    assert b"Administration" in client.get(reverse("home")).content


def test_healthz_answers(client):
    response = client.get(reverse("healthz"))
    assert response.status_code == 200
    assert response.content == b"ok"


def test_api_docs_are_served_without_a_cdn(client):
    client.force_login(StudentFactory())
    response = client.get(reverse("api-docs"))
    assert response.status_code == 200
    assert b"swagger" in response.content.lower()
    assert b"cdn.jsdelivr" not in response.content and b"unpkg" not in response.content
    schema = client.get(reverse("api-schema"))
    assert schema.status_code == 200
    assert b"/api/v1/operations/" in schema.content


def test_an_unhandled_failure_in_the_api_answers_json_and_a_page_answers_html(monkeypatch):
    from rest_framework.test import APIClient

    from labs import selectors
    from portal import views

    def broken(*args, **kwargs):
        raise RuntimeError("the database went away")

    monkeypatch.setattr(selectors, "operation_list", broken)
    monkeypatch.setattr(views, "_people_counts", broken)
    admin = AdminFactory()
    api = APIClient(raise_request_exception=False)
    api.force_authenticate(admin)
    response = api.get("/api/v1/operations/")
    assert response.status_code == 500
    assert response["Content-Type"] == "application/json"
    assert response.json()["detail"].startswith("The server failed to answer this request. Try again")

    page = Client(raise_request_exception=False)
    page.force_login(admin)
    response = page.get(reverse("home"))
    assert response.status_code == 500
    assert response["Content-Type"].startswith("text/html")
