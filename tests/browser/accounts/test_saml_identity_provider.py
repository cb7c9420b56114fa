"""Sign-in through the school's SAML 2.0 identity provider, in real Chromium, against a real IdP
(pysaml2's, tests/support/saml_idp.py): Nestlab's button, the IdP's sign-on address (HTTP-Redirect),
the IdP's signed answer posted back by its auto-submitting form (HTTP-POST)."""

from __future__ import annotations

import json
import urllib.request

import pytest
from django.contrib.auth import get_user_model
from playwright.sync_api import expect

from core import roles
from portal.simulator import free_port
from tests.support.processes import WebProcess
from tests.support.saml_idp import ROLES

pytestmark = pytest.mark.browser
User = get_user_model()


@pytest.fixture
def school_sign_in(transactional_db, celery_queue, saml_idp):
    """The portal and the school's SAML IdP, each knowing the other."""
    server = WebProcess(
        port=free_port(),
        extra_env={
            "NESTLAB_CELERY_QUEUE": celery_queue,
            "NESTLAB_SAML_PROVIDERS": json.dumps([saml_idp.provider_setting()]),
        },
    ).start()
    with urllib.request.urlopen(f"{server.url}/accounts/saml/school-saml/metadata/", timeout=10) as metadata:
        saml_idp.trust_service_provider(metadata.read())
    yield server, saml_idp
    server.stop()


def _sign_in_with_the_school(page, server) -> None:
    page.goto(f"{server.url}/login/")
    page.get_by_role("button", name="School account (SAML)").click()
    # Out to the IdP, whose form posts straight back: done once the browser is on a Nestlab page again.
    page.wait_for_url(lambda url: url.startswith(server.url) and not url.endswith("/login/"))


def test_a_first_sign_in_makes_a_student_and_a_later_one_follows_the_groups(page, school_sign_in, screenshot):
    server, idp = school_sign_in
    idp.sign_in_as("ada", mail="ada@school.example", given_name="Ada", surname="Lovelace", groups=[ROLES["student"]])
    page.goto(f"{server.url}/login/")
    screenshot(page, "login-with-school-saml-account")
    _sign_in_with_the_school(page, server)
    expect(page.get_by_role("heading", name="My labs")).to_be_visible()
    ada = User.objects.get(email="ada@school.example")
    assert (ada.first_name, ada.last_name) == ("Ada", "Lovelace")
    assert roles.roles_of(ada) == {roles.Role.STUDENT}

    page.context.clear_cookies()
    idp.sign_in_as("ada", mail="ada@school.example", given_name="Ada", surname="King", groups=[ROLES["instructor"]])
    _sign_in_with_the_school(page, server)
    expect(page.get_by_role("heading", name="Teaching")).to_be_visible()
    ada = User.objects.get(pk=ada.pk)
    assert ada.last_name == "King" and roles.roles_of(ada) == {roles.Role.INSTRUCTOR}
    screenshot(page, "signed-in-by-school-saml-as-instructor")


def test_someone_in_no_known_group_is_refused_in_words(page, school_sign_in):
    server, idp = school_sign_in
    idp.sign_in_as("gus", given_name="Gus", mail="gus@school.example", groups=["alumni"])
    _sign_in_with_the_school(page, server)
    expect(page.get_by_text("in no group that Nestlab knows")).to_be_visible()
    assert not User.objects.filter(email="gus@school.example").exists()
