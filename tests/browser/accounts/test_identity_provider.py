"""Sign-in through the school's identity provider by OpenID Connect, in real Chromium, against a
real provider (oidc-provider in Node, tests/support/oidc_provider.py)."""

from __future__ import annotations

import json

import pytest
from django.contrib.auth import get_user_model
from playwright.sync_api import expect

from core import roles
from portal.simulator import free_port
from tests.support.oidc_provider import ROLES, OidcProvider
from tests.support.processes import WebProcess

pytestmark = pytest.mark.browser
User = get_user_model()


@pytest.fixture
def school_sign_in(transactional_db, celery_queue):
    """The portal and the school's identity provider, each knowing the other."""
    port = free_port()
    provider = OidcProvider(redirect_uris=[f"http://127.0.0.1:{port}/accounts/oidc/school/login/callback/"]).start()
    server = WebProcess(
        port=port,
        extra_env={
            "NESTLAB_CELERY_QUEUE": celery_queue,
            "NESTLAB_OIDC_PROVIDERS": json.dumps([provider.provider_setting()]),
        },
    ).start()
    yield server, provider
    server.stop()
    provider.stop()


def _sign_in_with_the_school(page, server, sub: str) -> None:
    page.goto(f"{server.url}/login/")
    page.get_by_role("button", name="School account").click()
    if page.locator("input[name=login]").count():
        page.locator("input[name=login]").fill(sub)
        page.locator("input[name=password]").fill("any password")
        page.locator("button[type=submit]").click()
    if page.get_by_role("button", name="Continue").count():
        page.get_by_role("button", name="Continue").click()
    page.wait_for_url(f"{server.url}/**")


def test_a_first_sign_in_makes_a_student_and_a_later_one_follows_the_groups(page, school_sign_in, screenshot):
    server, provider = school_sign_in
    provider.set_account(
        "ada", given_name="Ada", family_name="Lovelace", email="ada@school.example", groups=[ROLES["student"]]
    )
    page.goto(f"{server.url}/login/")
    screenshot(page, "login-with-school-account")
    _sign_in_with_the_school(page, server, "ada")
    expect(page.get_by_role("heading", name="My labs")).to_be_visible()
    ada = User.objects.get(email="ada@school.example")
    assert (ada.first_name, ada.last_name) == ("Ada", "Lovelace")
    assert roles.roles_of(ada) == {roles.Role.STUDENT}

    page.context.clear_cookies()
    provider.set_account(
        "ada", given_name="Ada", family_name="King", email="ada@school.example", groups=[ROLES["instructor"]]
    )
    _sign_in_with_the_school(page, server, "ada")
    expect(page.get_by_role("heading", name="Teaching")).to_be_visible()
    ada.refresh_from_db()
    ada = User.objects.get(pk=ada.pk)
    assert ada.last_name == "King" and roles.roles_of(ada) == {roles.Role.INSTRUCTOR}
    screenshot(page, "signed-in-by-school-as-instructor")


def test_an_account_made_by_a_roster_is_the_one_a_school_sign_in_reaches(page, school_sign_in):
    from tests.factories import StudentFactory

    server, provider = school_sign_in
    student = StudentFactory(email="sam@school.example")
    provider.set_account("s123", email="sam@school.example", email_verified=True, groups=[ROLES["student"]])
    _sign_in_with_the_school(page, server, "s123")
    expect(page.get_by_role("heading", name="My labs")).to_be_visible()
    assert User.objects.filter(email="sam@school.example").count() == 1
    assert student.socialaccount_set.get().uid == "s123"


def test_someone_in_no_known_group_is_refused_in_words(page, school_sign_in):
    server, provider = school_sign_in
    provider.set_account("gus", given_name="Gus", email="gus@school.example", groups=["alumni"])
    _sign_in_with_the_school(page, server, "gus")
    expect(page.get_by_text("in no group that Nestlab knows")).to_be_visible()
    assert not User.objects.filter(email="gus@school.example").exists()


def test_a_school_sign_in_never_takes_over_a_staff_account_by_its_e_mail(page, school_sign_in):
    from tests.factories import InstructorFactory

    server, provider = school_sign_in
    teacher = InstructorFactory(email="grace@school.example")
    provider.set_account("mallory", email="grace@school.example", email_verified=True, groups=[ROLES["admin"]])
    _sign_in_with_the_school(page, server, "mallory")
    expect(page.get_by_text("never takes over a staff account")).to_be_visible()
    assert not teacher.socialaccount_set.exists()
    assert roles.roles_of(User.objects.get(pk=teacher.pk)) == {roles.Role.INSTRUCTOR}


def test_an_e_mail_the_provider_does_not_vouch_for_reaches_no_account_and_makes_no_second_one(page, school_sign_in):
    from tests.factories import StudentFactory

    server, provider = school_sign_in
    student = StudentFactory(email="sam@school.example")
    provider.set_account("s456", email="sam@school.example", email_verified=False, groups=[ROLES["student"]])
    _sign_in_with_the_school(page, server, "s456")
    expect(page.get_by_text("does not vouch for the address")).to_be_visible()
    assert User.objects.filter(email="sam@school.example").count() == 1
    assert not student.socialaccount_set.exists()
