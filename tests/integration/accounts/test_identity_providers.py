"""accounts/identity_providers.py with a SAML 2.0 IdP: pysaml2's, in its own process
(tests/support/saml_idp.py), signing real assertions that the portal checks. Each test goes the
way a browser does: Nestlab's sign-in button, the IdP's sign-on address, the IdP's form posted
back to Nestlab's assertion consumer service."""

from __future__ import annotations

import base64
import urllib.request
from html.parser import HTMLParser
from urllib.parse import urlsplit

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse

from core import roles
from core.models import AuditEntry
from portal.identity_settings import saml_app
from tests.factories import InstructorFactory, StudentFactory
from tests.support.saml_idp import ROLES

pytestmark = [pytest.mark.django_db, pytest.mark.integration]
User = get_user_model()
PROVIDER_ID = "school-saml"


@pytest.fixture
def client(client):
    """Django's test client with a Host header, as every browser sends (allauth's SAML views
    build the addresses they check the IdP's answer against from it)."""
    client.defaults["HTTP_HOST"] = "testserver"
    return client


@pytest.fixture
def school_idp(saml_idp, settings, client):
    """The portal and the test IdP, each trusting the other (the IdP is given Nestlab's metadata)."""
    configure(settings, saml_idp.provider_setting())
    metadata = client.get(reverse("saml_metadata", kwargs={"organization_slug": PROVIDER_ID}))
    assert metadata.status_code == 200, metadata.content
    saml_idp.trust_service_provider(metadata.content)
    return saml_idp


def configure(settings, entry: dict) -> None:
    settings.NESTLAB_SAML_PROVIDERS = [entry]
    settings.SOCIALACCOUNT_PROVIDERS = {**settings.SOCIALACCOUNT_PROVIDERS, "saml": {"APPS": [saml_app(entry)]}}


class _PostedForm(HTMLParser):
    """The IdP's auto-submitting form: where it posts, and its hidden fields."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.action = ""
        self.fields: dict[str, str] = {}
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "form":
            self.action = attrs["action"]
        elif tag == "input" and attrs.get("name"):
            self.fields[attrs["name"]] = attrs.get("value", "")


def idp_answer(client) -> _PostedForm:
    """Press the IdP's button on the sign-in page, and fetch what the IdP answers."""
    start = client.post(reverse("saml_login", kwargs={"organization_slug": PROVIDER_ID}), {"process": "login"})
    assert start.status_code == 302, start.content
    with urllib.request.urlopen(start["Location"], timeout=10) as answer:
        return _PostedForm(answer.read().decode())


def post_to_nestlab(client, form: _PostedForm):
    """What the browser does with the IdP's form: post it, follow Nestlab's redirects."""
    acs = client.post(urlsplit(form.action).path, form.fields)
    assert acs.status_code == 302, acs.content
    return client.get(acs["Location"], follow=True)


def sign_in(client):
    return post_to_nestlab(client, idp_answer(client))


def test_a_first_sign_in_makes_a_student_with_the_idps_name_and_e_mail(client, school_idp):
    school_idp.sign_in_as(
        "ada", mail="ada@school.example", given_name="Ada", surname="Lovelace", groups=[ROLES["student"]]
    )
    page = sign_in(client)
    assert page.status_code == 200
    ada = User.objects.get(email="ada@school.example")
    assert (ada.first_name, ada.last_name) == ("Ada", "Lovelace")
    assert roles.roles_of(ada) == {roles.Role.STUDENT}
    assert ada.socialaccount_set.get().uid == "ada"
    assert page.context["user"] == ada


def test_a_later_sign_in_follows_the_groups_and_the_name(client, school_idp):
    school_idp.sign_in_as("ada", mail="ada@school.example", surname="Lovelace", groups=[ROLES["student"]])
    sign_in(client)
    client.logout()
    school_idp.sign_in_as("ada", mail="ada@school.example", surname="King", groups=["staff", ROLES["instructor"]])
    sign_in(client)
    ada = User.objects.get(email="ada@school.example")
    assert ada.last_name == "King"
    assert roles.roles_of(ada) == {roles.Role.INSTRUCTOR}
    assert AuditEntry.objects.filter(action="auth.role_set", detail__contains="was student").exists()


def test_someone_in_no_known_group_is_refused_in_words_and_the_refusal_recorded(client, school_idp):
    school_idp.sign_in_as("gus", mail="gus@school.example", groups=["alumni"])
    page = sign_in(client)
    assert page.status_code == 403
    assert "in no group that Nestlab knows" in page.content.decode()
    assert not User.objects.filter(email="gus@school.example").exists()
    refusal = AuditEntry.objects.get(action="auth.saml")
    assert refusal.result == AuditEntry.Result.REFUSED and "no group" in refusal.detail


def test_a_first_sign_in_never_takes_over_a_staff_account_by_its_e_mail(client, school_idp):
    teacher = InstructorFactory(email="grace@school.example")
    school_idp.sign_in_as("mallory", mail="grace@school.example", groups=[ROLES["admin"]])
    page = sign_in(client)
    assert page.status_code == 403
    assert "never takes over a staff account" in page.content.decode()
    assert not teacher.socialaccount_set.exists()
    assert roles.roles_of(User.objects.get(pk=teacher.pk)) == {roles.Role.INSTRUCTOR}
    assert AuditEntry.objects.filter(action="auth.saml", detail__contains="staff account").exists()


def test_a_group_named_in_courses_enrolls_the_student(client, saml_idp, settings):
    from tests.factories import open_course

    course = open_course(students=0)
    entry = saml_idp.provider_setting(courses={"vsp8-students": course.code})
    configure(settings, entry)
    saml_idp.trust_service_provider(
        client.get(reverse("saml_metadata", kwargs={"organization_slug": PROVIDER_ID})).content
    )
    saml_idp.sign_in_as("ada", mail="ada@school.example", groups=[ROLES["student"], "vsp8-students"])
    sign_in(client)
    assert course.enrollments.filter(student__email="ada@school.example").exists()
    assert AuditEntry.objects.filter(action="course.enroll_from_identity").count() == 1


def test_a_roster_account_is_reached_by_e_mail_when_the_entry_trusts_the_idps_e_mail(client, saml_idp, settings):
    student = StudentFactory(email="sam@school.example")
    configure(settings, saml_idp.provider_setting(email_verified=True))
    saml_idp.trust_service_provider(
        client.get(reverse("saml_metadata", kwargs={"organization_slug": PROVIDER_ID})).content
    )
    saml_idp.sign_in_as("s123", mail="sam@school.example", groups=[ROLES["student"]])
    assert sign_in(client).status_code == 200
    assert User.objects.filter(email="sam@school.example").count() == 1
    assert student.socialaccount_set.get().uid == "s123"


def test_an_e_mail_the_idp_does_not_vouch_for_reaches_no_account_and_makes_no_second_one(client, school_idp):
    student = StudentFactory(email="sam@school.example")
    school_idp.sign_in_as("s123", mail="sam@school.example", groups=[ROLES["student"]])
    page = sign_in(client)
    assert page.status_code == 403
    assert "does not vouch for" in page.content.decode()
    assert User.objects.filter(email="sam@school.example").count() == 1
    assert not student.socialaccount_set.exists()
    assert AuditEntry.objects.filter(action="auth.saml", detail__contains="another account").exists()


def test_an_assertion_changed_after_the_idp_signed_it_is_refused(client, school_idp):
    school_idp.sign_in_as("gus", mail="gus@school.example", groups=["alumni"])
    form = idp_answer(client)
    xml = base64.b64decode(form.fields["SAMLResponse"]).decode()
    assert "alumni" in xml
    form.fields["SAMLResponse"] = base64.b64encode(xml.replace("alumni", ROLES["admin"]).encode()).decode()
    page = post_to_nestlab(client, form)
    assert not User.objects.filter(email="gus@school.example").exists()
    assert page.status_code == 401
    assert "did not go through" in page.content.decode()
    refusal = AuditEntry.objects.get(action="auth.saml")
    assert "Signature validation failed" in refusal.detail


def test_an_idp_named_by_its_sign_on_address_and_certificate_is_trusted_like_one_with_metadata(
    client, saml_idp, settings
):
    entry = saml_idp.provider_setting(sso_url=f"{saml_idp.url}/sso/redirect", x509cert=saml_idp.certificate)
    del entry["metadata_url"]
    configure(settings, entry)
    saml_idp.trust_service_provider(
        client.get(reverse("saml_metadata", kwargs={"organization_slug": PROVIDER_ID})).content
    )
    saml_idp.sign_in_as("ada", mail="ada@school.example", groups=[ROLES["student"]])
    assert sign_in(client).status_code == 200
    assert roles.roles_of(User.objects.get(email="ada@school.example")) == {roles.Role.STUDENT}


def test_an_unsigned_assertion_in_a_signed_response_is_refused_unless_the_entry_accepts_signed_responses(
    client, saml_idp, settings
):
    configure(settings, saml_idp.provider_setting())
    saml_idp.trust_service_provider(
        client.get(reverse("saml_metadata", kwargs={"organization_slug": PROVIDER_ID})).content
    )
    saml_idp.sign_in_as("ada", mail="ada@school.example", groups=[ROLES["student"]], sign_assertion=False)
    assert sign_in(client).status_code == 401
    assert "Assertion of the Response is not signed" in AuditEntry.objects.get(action="auth.saml").detail

    configure(settings, saml_idp.provider_setting(signed="response"))
    assert sign_in(client).status_code == 200
    assert User.objects.filter(email="ada@school.example").exists()


def test_an_assertion_signed_with_sha1_is_refused(client, school_idp):
    school_idp.sign_in_as("ada", mail="ada@school.example", groups=[ROLES["student"]], sha1=True)
    page = sign_in(client)
    assert page.status_code == 401
    assert not User.objects.filter(email="ada@school.example").exists()
    assert "Deprecated signature algorithm" in AuditEntry.objects.get(action="auth.saml").detail


def test_a_response_used_once_is_refused_the_second_time(client, school_idp):
    school_idp.sign_in_as("ada", mail="ada@school.example", groups=[ROLES["student"]])
    form = idp_answer(client)
    post_to_nestlab(client, form)
    assert User.objects.filter(email="ada@school.example").exists()
    client.logout()
    replay = post_to_nestlab(client, form)
    assert "_auth_user_id" not in client.session
    assert User.objects.filter(email="ada@school.example").count() == 1
    assert replay.status_code == 403  # the request it answered was answered already
