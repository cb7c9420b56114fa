import json

import pytest
from django.test import Client
from django.urls import reverse
from django.utils.html import escape

from portal import views as portal_views
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


# The audit log page (portal.views.audit_log, audit_export)


def _audit_entry(**fields):
    from core.models import AuditEntry

    values = {"category": "operation", "action": "lab.reset", "result": "succeeded", "source": "worker", **fields}
    return AuditEntry.objects.create(**values)


def _csv_rows(content: bytes) -> list[list[str]]:
    import csv
    import io

    return list(csv.reader(io.StringIO(content.decode())))


def test_admins_read_the_audit_log_newest_first_and_find_it_in_the_menu(client):
    _audit_entry(actor_username="alice", category="login", action="auth.login", detail="alice came in.")
    _audit_entry(target="lab vsp8-bob-1 (#3)", detail="Reset lab #3 failed: vCenter said no")
    admin = AdminFactory()
    client.force_login(admin)
    assert reverse("audit").encode() in client.get(reverse("home")).content
    page = client.get(reverse("audit")).content.decode()
    assert page.index("vCenter said no") < page.index("alice came in.")
    assert "Nestlab</span>" in page, "an entry without an actor is the portal's own"
    assert ' style="' not in page and "<script>" not in page, "no inline style or script (CSP)"


@pytest.mark.parametrize("factory", [InstructorFactory, StudentFactory])
def test_the_audit_log_is_for_admins_only(client, factory):
    from core.models import AuditEntry

    user = factory()
    client.force_login(user)
    assert reverse("audit").encode() not in client.get(reverse("home")).content
    for name in ("audit", "audit-export"):
        response = client.get(reverse(name))
        assert response.status_code == 403
        assert b"Only admins" in response.content
    assert AuditEntry.objects.filter(category="refusal", actor=user).count() == 2, "each refusal is recorded"


def test_anonymous_visitors_are_sent_to_log_in_first(client):
    response = client.get(reverse("audit"))
    assert response.status_code == 302 and response.url.startswith(reverse("login"))


def test_the_audit_filters_and_the_export_link_keep_them(client):
    _audit_entry(actor_username="alice", category="refusal", result="refused", detail="This is not your lab.")
    _audit_entry(actor_username="alice", detail="Reset lab #3 succeeded")
    _audit_entry(actor_username="bob", category="refusal", result="refused", detail="Only admins read the audit log.")
    client.force_login(AdminFactory())
    page = client.get(reverse("audit"), {"person": "alice", "category": "refusal"}).content.decode()
    assert "This is not your lab." in page
    assert "Reset lab #3" not in page and "Only admins read" not in page
    assert f'href="{reverse("audit-export")}?person=alice&amp;category=refusal"' in page
    wrong = client.get(reverse("audit"), {"date_from": "2026-11-02", "date_to": "2026-11-01"}).content.decode()
    assert "The end date is before the start date." in wrong and "This is not your lab." not in wrong


def test_the_audit_log_pages_fifty_at_a_time_keeping_the_filters(client):
    for number in range(51):
        _audit_entry(actor_username="alice", detail=f"entry {number:02d}.")
    client.force_login(AdminFactory())
    first = client.get(reverse("audit"), {"person": "alice"}).content.decode()
    assert "entry 50." in first and "entry 00." not in first
    assert "?person=alice&amp;page=2" in first
    second = client.get(reverse("audit"), {"person": "alice", "page": 2}).content.decode()
    assert "entry 00." in second and "entry 01." not in second


def test_the_export_is_exactly_the_filtered_set_with_formulas_neutralised(client):
    mine = _audit_entry(actor_username="alice", detail="@SUM(1+1)*cmd")
    _audit_entry(actor_username="bob", detail="not exported")
    client.force_login(AdminFactory())
    response = client.get(reverse("audit-export"), {"person": "alice"})
    assert response.status_code == 200 and response.streaming
    header, *rows = _csv_rows(b"".join(response.streaming_content))
    assert [row[0] for row in rows] == [str(mine.pk)]
    assert rows[0][header.index("detail")] == "'@SUM(1+1)*cmd"
    bad = client.get(reverse("audit-export"), {"date_from": "yesterday"})
    assert bad.status_code == 400 and b"Not exported: Enter a valid date." in bad.content


def test_under_asgi_the_export_streams_from_an_async_iterator(client):
    """daphne serves the portal: Django would read a sync iterator into memory whole first."""
    from asgiref.sync import async_to_sync
    from django.test import AsyncClient

    entries = [_audit_entry(detail=f"row {number}") for number in range(3)]
    admin = AdminFactory()

    async def export():
        async_client = AsyncClient()
        await async_client.aforce_login(admin)
        response = await async_client.get(reverse("audit-export"), {"category": "operation"})
        assert response.is_async
        return b"".join([chunk async for chunk in response.streaming_content])

    _header, *rows = _csv_rows(async_to_sync(export)())
    assert [row[0] for row in rows] == [str(entry.pk) for entry in reversed(entries)]


def test_an_address_under_the_api_that_nothing_answers_is_a_json_404(client):
    response = client.get("/api/v1/labs/-1/")
    assert response.status_code == 404
    assert response.json() == {"detail": "Nothing answers at this address; the API's routes are at /api/docs/."}
    page = client.get("/no-such-page/")
    assert page.status_code == 404 and page["Content-Type"].startswith("text/html")


def test_a_request_django_refuses_before_any_view_is_a_json_400_under_the_api(client):
    fields = {f"field{index}": "x" for index in range(1001)}
    client.force_login(StudentFactory())
    response = client.post("/api/v1/courses/join/", fields)
    assert response.status_code == 400
    assert response.json() == {"detail": "The request has too many fields: at most 1000."}
    client.logout()
    page = client.post("/login/", fields)
    assert page.status_code == 400 and page["Content-Type"].startswith("text/html")


def test_an_unhandled_failure_in_the_api_answers_json_and_a_page_answers_html(monkeypatch):
    from rest_framework.test import APIClient

    from labs import selectors
    from portal import views

    def broken(*args, **kwargs):
        raise RuntimeError("the database went away")

    monkeypatch.setattr(selectors, "operation_list", broken)
    monkeypatch.setattr(views, "people_counts", broken)
    admin = AdminFactory()
    api = APIClient(raise_request_exception=False)
    api.force_authenticate(admin)
    response = api.get("/api/v1/operations/")
    assert response.status_code == 500
    assert response["Content-Type"] == "application/json"
    assert response.json()["detail"] == "Something went wrong on the server; it was logged."

    page = Client(raise_request_exception=False)
    page.force_login(admin)
    response = page.get(reverse("home"))
    assert response.status_code == 500
    assert response["Content-Type"].startswith("text/html")


@pytest.mark.django_db
def test_the_favicon_is_found_on_every_page(client):
    """Issue 10: /favicon.ico was a 404 on every page."""
    response = client.get("/favicon.ico")
    assert response.status_code == 301 and response.url.endswith("img/nestlab.svg")
    assert 'rel="icon"' in client.get("/login/").content.decode()


def _home_queries(client, instructor) -> int:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client.force_login(instructor)
    with CaptureQueriesContext(connection) as queries:
        assert client.get(reverse("home")).status_code == 200
    return len(queries)


def test_the_instructor_home_asks_the_same_queries_for_one_course_or_ten(client):
    """Each course's class summary was asked from a template tag inside the loop (issue 12)."""
    from courses import services as course_services
    from tests.factories import open_course

    one = open_course(students=1)
    instructor = one.instructors.get()
    with_one = _home_queries(client, instructor)
    for _ in range(9):
        course = open_course(students=1)
        course_services.course_instructor_add(course=course, actor=AdminFactory(), instructor=instructor)
    assert _home_queries(client, instructor) == with_one


@pytest.mark.django_db
def test_no_template_syntax_leaks_onto_a_page(client):
    """A Django comment spanning lines ({# ... #} is one line only) shows up as text on every page."""
    client.force_login(StudentFactory())
    for url in (reverse("home"), reverse("accounts:account"), reverse("login")):
        content = client.get(url).content.decode()
        for syntax in ("{#", "#}", "{%", "%}", "{{", "}}"):
            assert syntax not in content, f"{url} shows {syntax!r}"


def test_a_page_nothing_answers_is_the_products_404_page_with_a_way_home(client):
    client.force_login(StudentFactory())
    page = client.get("/no-such-page/")
    assert page.status_code == 404
    text = page.content.decode()
    assert "<title>Not found · Nestlab</title>" in text and 'href="/"' in text
    assert "not yours to see" in text


def test_a_refusal_nobody_put_in_words_is_a_403_page_in_words_and_json_under_the_api(rf):
    """allauth refuses a sign-in whose state is missing or used (a replayed SAML answer) with a
    bare PermissionDenied; ours carry words, which are shown."""
    from django.contrib.auth.models import AnonymousUser
    from django.core.exceptions import PermissionDenied

    views = portal_views
    request = rf.get("/accounts/saml/school/acs/finish/")
    request.user = AnonymousUser()
    page = views.permission_denied(request, PermissionDenied())
    assert page.status_code == 403
    assert escape(views.SIGN_IN_REFUSED_WORDS) in page.content.decode()
    elsewhere = rf.get("/courses/1/")
    elsewhere.user = AnonymousUser()
    worded = views.permission_denied(elsewhere, PermissionDenied("This is not your lab."))
    assert "This is not your lab." in worded.content.decode() and "<title>Not allowed" in worded.content.decode()
    api = rf.get("/api/v1/x/")
    api.user = AnonymousUser()
    answer = views.permission_denied(api, PermissionDenied())
    assert answer.status_code == 403 and json.loads(answer.content) == {"detail": "You are not allowed to do that."}


def test_a_form_posted_without_its_csrf_token_is_refused_in_words_and_nothing_changes():
    student = StudentFactory()
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(student)
    response = browser.post(reverse("accounts:account"), {"first_name": "Mallory"})
    assert response.status_code == 403
    assert escape(portal_views.CSRF_PAGE_WORDS) in response.content.decode()
    student.refresh_from_db()
    assert student.first_name != "Mallory"


def test_a_server_failure_on_a_page_is_the_products_500_page(client, monkeypatch):
    from portal import views

    def broken(*args, **kwargs):
        raise RuntimeError("the database went away")

    monkeypatch.setattr(views, "people_counts", broken)
    client.raise_request_exception = False
    client.force_login(AdminFactory())
    page = client.get("/", HTTP_ACCEPT="text/html")
    assert page.status_code == 500
    assert "Something went wrong · Nestlab" in page.content.decode() and "was logged" in page.content.decode()
