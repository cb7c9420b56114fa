"""LTI 1.3 launches against a real platform: who is signed in, where they land, and every launch
that must be refused (in words, audited)."""

from __future__ import annotations

import pytest
import requests
from django.contrib.auth import get_user_model
from django.test import Client

from core import audit, roles
from core.models import AuditEntry
from courses.models import Enrollment
from lti import keys
from lti.middleware import forget_framing_origins
from lti.models import CourseLink, Identity, ToolKey
from tests.factories import InstructorFactory, LtiPlatformFactory, StudentFactory, lab_row, open_course
from tests.integration.lti.conftest import launch
from tests.support.lti_platform import ADA, DEEP_LINKING_REQUEST, GRACE, INSTRUCTOR, LEARNER

pytestmark = [pytest.mark.integration, pytest.mark.django_db]


@pytest.fixture
def linked_course(registered, lti_platform):
    course = open_course(students=0)
    CourseLink.objects.create(
        platform=registered, deployment_id=lti_platform.deployment_id, context_id="course-101", course=course
    )
    return course


def _signed_in(client: Client):
    from django.contrib.auth import get_user

    return get_user(client)


def test_a_learners_first_launch_makes_a_student_enrolled_by_the_lms_and_opens_the_course(linked_course, lti_platform):
    client = Client()
    response = launch(client, lti_platform, user=ADA, roles=[LEARNER])
    assert response.status_code == 302 and response["Location"] == f"/labs/courses/{linked_course.pk}/mine/"
    user = _signed_in(client)
    assert (user.email, user.first_name, user.last_name) == ("ada@school.example", "Ada", "Lovelace")
    assert roles.primary_role(user) == roles.Role.STUDENT and not user.has_usable_password()
    enrollment = Enrollment.objects.get(course=linked_course, student=user)
    assert enrollment.source == Enrollment.Source.LTI
    # No lab yet: the course page with its Start button.
    assert client.get(response["Location"])["Location"] == f"/courses/{linked_course.pk}/"
    assert AuditEntry.objects.filter(action="course.enroll_from_lti", actor_username=user.username).count() == 1


def test_a_learner_with_a_lab_lands_on_it_and_a_second_launch_finds_the_same_account(linked_course, lti_platform):
    launch(Client(), lti_platform, user=ADA, roles=[LEARNER])
    student = Identity.objects.get(subject="lms-ada").user
    lab = lab_row(linked_course, student)
    client = Client()
    response = launch(client, lti_platform, user={**ADA, "email": "ada.l@school.example"}, roles=[LEARNER])
    assert _signed_in(client).pk == student.pk
    assert client.get(response["Location"])["Location"] == f"/labs/{lab.pk}/"
    student.refresh_from_db()
    assert student.email == "ada.l@school.example"  # the LMS's e-mail, kept up to date


def test_an_instructors_launch_lands_on_the_class_table_and_teaches_the_course(linked_course, lti_platform):
    client = Client()
    response = launch(client, lti_platform, user=GRACE, roles=[INSTRUCTOR])
    assert response["Location"] == f"/labs/courses/{linked_course.pk}/"
    teacher = _signed_in(client)
    assert roles.primary_role(teacher) == roles.Role.INSTRUCTOR
    assert linked_course.instructors.filter(pk=teacher.pk).exists()
    assert client.get(response["Location"]).status_code == 200


def test_a_student_made_instructor_by_the_lms_is_promoted_and_a_teacher_is_never_lowered(linked_course, lti_platform):
    launch(Client(), lti_platform, user=ADA, roles=[LEARNER])
    ada = Identity.objects.get(subject="lms-ada").user
    launch(Client(), lti_platform, user=ADA, roles=[INSTRUCTOR])
    assert roles.primary_role(ada) == roles.Role.INSTRUCTOR
    # The LMS's "student view" of a teacher: still an instructor, sent to the class table.
    client = Client()
    response = launch(client, lti_platform, user=ADA, roles=[LEARNER])
    assert roles.primary_role(ada) == roles.Role.INSTRUCTOR
    assert response["Location"] == f"/labs/courses/{linked_course.pk}/"


def test_an_lms_not_trusted_with_emails_never_writes_one_on_an_account(registered, linked_course, lti_platform):
    """Moodle lets people edit their own e-mail: an untrusted LMS's e-mail would let a student
    write a dean's address on their account, which a school sign-in (OIDC, SAML) then finds."""
    rostered = StudentFactory(email="ada@school.example")
    registered.trust_emails = False
    registered.save()
    client = Client()
    launch(client, lti_platform, user=ADA, roles=[LEARNER])
    mallory = _signed_in(client)
    assert mallory.pk != rostered.pk and mallory.email == ""
    launch(Client(), lti_platform, user={**ADA, "email": "dean@school.example"}, roles=[LEARNER])
    mallory.refresh_from_db()
    assert mallory.email == ""


def test_a_trusted_lms_reaches_a_student_account_by_email_but_never_writes_a_taken_one(linked_course, lti_platform):
    rostered = StudentFactory(email="ada@school.example")
    client = Client()
    launch(client, lti_platform, user=ADA, roles=[LEARNER])
    assert _signed_in(client).pk == rostered.pk
    StudentFactory(email="bob@school.example")
    launch(Client(), lti_platform, user={**ADA, "email": "bob@school.example"}, roles=[LEARNER])
    InstructorFactory(email="dean@school.example")
    launch(Client(), lti_platform, user={**ADA, "email": "dean@school.example"}, roles=[LEARNER])
    rostered.refresh_from_db()
    assert rostered.email == "ada@school.example"


def test_an_lms_teacher_of_an_unlinked_course_is_not_made_an_instructor(registered, lti_platform):
    """A teacher's role in a sandbox LMS course of their own makes no one a Nestlab instructor."""
    client = Client()
    response = launch(client, lti_platform, user=ADA, roles=[INSTRUCTOR], context={"id": "my-sandbox", "title": "x"})
    assert response.status_code == 403 and "does not teach" in response.content.decode()
    assert not _signed_in(client).is_authenticated and not Identity.objects.exists()
    launch(Client(), lti_platform, user=ADA, roles=[LEARNER], context={"id": "my-sandbox", "title": "x"})
    ada = Identity.objects.get(subject="lms-ada").user
    launch(Client(), lti_platform, user=ADA, roles=[INSTRUCTOR], context={"id": "my-sandbox", "title": "x"})
    assert roles.primary_role(ada) == roles.Role.STUDENT


def test_an_activity_copied_into_another_lms_course_opens_that_courses_own_link(registered, lti_platform):
    first, second = open_course(students=0), open_course(students=0)
    original = CourseLink.objects.create(
        platform=registered, deployment_id=lti_platform.deployment_id, context_id="course-101", course=first
    )
    copy_context = {"id": "course-101-copy", "label": "NET101", "title": "Networking 101 (next term)"}
    custom = {"nestlab_link": str(original.key)}
    # Not linked yet: the copied key opens nothing there (never the first course).
    assert (
        launch(Client(), lti_platform, user=ADA, roles=[LEARNER], context=copy_context, custom=custom).status_code
        == 409
    )
    CourseLink.objects.create(
        platform=registered, deployment_id=lti_platform.deployment_id, context_id="course-101-copy", course=second
    )
    opened = launch(Client(), lti_platform, user=ADA, roles=[LEARNER], context=copy_context, custom=custom)
    assert opened["Location"] == f"/labs/courses/{second.pk}/mine/"
    assert not Enrollment.objects.filter(course=first).exists()


def test_a_launch_never_takes_over_a_staff_account_by_its_email(linked_course, lti_platform):
    InstructorFactory(email="ada@school.example")
    client = Client()
    response = launch(client, lti_platform, user=ADA, roles=[LEARNER])
    assert response.status_code == 403
    assert "never takes over a staff account" in response.content.decode()
    assert not _signed_in(client).is_authenticated
    assert AuditEntry.objects.filter(category="login_failed", action="auth.lti", detail__contains="staff").exists()


def test_a_guest_or_observer_is_refused_in_words(linked_course, lti_platform):
    client = Client()
    guest = "http://purl.imsglobal.org/vocab/lis/v2/membership#Guest"
    response = launch(client, lti_platform, user=ADA, roles=[guest])
    assert response.status_code == 403 and "does not open Nestlab" in response.content.decode()
    assert not Identity.objects.exists()


@pytest.mark.parametrize(
    ("tamper", "words"),
    [
        ("bad_signature", "Signature verification failed"),
        ("expired", "expired"),
        ("wrong_audience", "not found"),
        ("wrong_issuer", "not found"),
        ("unknown_deployment", "Unable to find deployment"),
        ("wrong_nonce", "Invalid Nonce"),
    ],
)
def test_a_tampered_launch_is_refused_in_words_and_audited(linked_course, lti_platform, tamper, words):
    client = Client()
    response = launch(client, lti_platform, user=ADA, roles=[LEARNER], tamper=tamper)
    assert response.status_code == 403
    page = response.content.decode()
    assert "did not sign you in" in page and words.lower() in page.lower()
    assert not _signed_in(client).is_authenticated
    assert not Identity.objects.exists() and not Enrollment.objects.exists()
    entry = AuditEntry.objects.get(category="login_failed", action="auth.lti")
    assert entry.result == "refused" and "launch refused" in entry.detail


def test_a_replayed_launch_is_refused(linked_course, lti_platform):
    first = Client()
    assert launch(first, lti_platform, user=ADA, roles=[LEARNER]).status_code == 302
    replayed = lti_platform.last_launch()
    again = Client()
    response = again.post("/lti/launch/", {"id_token": replayed["id_token"], "state": replayed["state"]})
    assert response.status_code == 403 and "already used" in response.content.decode()
    assert not _signed_in(again).is_authenticated
    assert AuditEntry.objects.filter(action="auth.lti", detail__contains="replayed").count() == 1


def test_a_launch_without_a_login_is_refused(linked_course, lti_platform):
    launch(Client(), lti_platform, user=ADA, roles=[LEARNER])
    token = lti_platform.last_launch()["id_token"]
    response = Client().post("/lti/launch/", {"id_token": token, "state": "state-made-up"})
    assert response.status_code == 403 and "login state is unknown" in response.content.decode()


def test_a_login_from_an_unregistered_lms_is_refused_and_audited_a_bounded_number_of_times(db):
    from core import rate_limit

    rate_limit.forget_all()
    for _ in range(25):
        response = Client().get(
            "/lti/login/", {"iss": "https://evil.example", "login_hint": "x", "target_link_uri": "x"}
        )
        assert response.status_code == 400 and "not registered" in response.content.decode()
    # Anyone may send it without signing in: one address fills the log with at most 20 an hour.
    assert AuditEntry.objects.filter(action="auth.lti", detail__contains="evil.example").count() == 20
    rate_limit.forget_all()


def test_a_learner_from_an_unlinked_lms_course_is_told_so(registered, lti_platform):
    client = Client()
    response = launch(client, lti_platform, user=ADA, roles=[LEARNER])
    assert response.status_code == 409 and "not linked to a Nestlab course" in response.content.decode()


def test_an_instructors_first_launch_from_an_unlinked_lms_course_links_the_course_they_choose(registered, lti_platform):
    course = open_course(students=0)
    # A Nestlab instructor whose LMS account an admin linked (a launch never takes a staff
    # account by its e-mail, and an LMS role alone makes no one an instructor).
    teacher = course.instructors.get()
    Identity.objects.create(platform=registered, subject="lms-grace", user=teacher)
    client = Client()
    response = launch(client, lti_platform, user=GRACE, roles=[INSTRUCTOR])
    assert response["Location"] == "/lti/link-course/"
    assert _signed_in(client).pk == teacher.pk
    other = open_course(students=0)  # not theirs
    page = client.get("/lti/link-course/").content.decode()
    assert f"({course.code}," in page and f"({other.code}," not in page
    refused = client.post("/lti/link-course/", {"course": other.pk})
    assert refused.status_code == 400 and "only to a Nestlab course you teach" in refused.content.decode()
    chosen = client.post("/lti/link-course/", {"course": course.pk})
    assert chosen["Location"] == f"/labs/courses/{course.pk}/"
    link = CourseLink.objects.get()
    assert (link.course, link.context_id, link.context_title) == (course, "course-101", "Networking 101")
    assert link.memberships_url.startswith(lti_platform.issuer) and link.lineitems_url.startswith(lti_platform.issuer)
    # Learners of that LMS course now land in it.
    learner = Client()
    assert launch(learner, lti_platform, user=ADA, roles=[LEARNER])["Location"] == f"/labs/courses/{course.pk}/mine/"


def test_deep_linking_returns_a_signed_link_that_opens_the_chosen_course_and_only_from_that_lms_course(
    registered, lti_platform
):
    course = open_course(students=0)
    Identity.objects.create(platform=registered, subject="lms-grace", user=course.instructors.get())
    client = Client()
    response = launch(client, lti_platform, user=GRACE, roles=[INSTRUCTOR], message_type=DEEP_LINKING_REQUEST)
    assert response["Location"] == "/lti/deep-link/"
    answer = client.post("/lti/deep-link/", {"course": course.pk})
    page = answer.content.decode()
    assert answer.status_code == 200 and lti_platform.deep_link_return_url in page
    jwt = page.split('name="JWT" value="')[1].split('"')[0]
    # The browser posts it to the LMS, which checks Nestlab's signature against /lti/jwks/.
    returned = requests.post(lti_platform.deep_link_return_url, data={"JWT": jwt}, timeout=10)
    assert returned.status_code == 200, returned.text
    (item,) = lti_platform.deep_link_items()
    link = CourseLink.objects.get(course=course)
    assert item["type"] == "ltiResourceLink" and item["custom"] == {"nestlab_link": str(link.key)}
    assert item["url"] == "http://testserver/lti/launch/"
    learner = Client()
    opened = launch(learner, lti_platform, user=ADA, roles=[LEARNER], custom=item["custom"])
    assert opened["Location"] == f"/labs/courses/{course.pk}/mine/"
    # The same link pasted into another LMS course opens nothing there.
    elsewhere = launch(
        Client(),
        lti_platform,
        user=GRACE | {"sub": "lms-linus", "email": "linus@school.example"},
        roles=[LEARNER],
        context={"id": "course-202", "label": "OS202", "title": "Operating systems"},
        custom=item["custom"],
    )
    assert elsewhere.status_code == 409


def test_a_learner_cannot_use_deep_linking_and_is_not_signed_in_nor_given_an_account(registered, lti_platform):
    browser = Client()
    response = launch(browser, lti_platform, user=ADA, roles=[LEARNER], message_type=DEEP_LINKING_REQUEST)
    assert response.status_code == 403 and "Only instructors add" in response.content.decode()
    assert "_auth_user_id" not in browser.session
    assert not get_user_model().objects.filter(email=ADA["email"]).exists()
    refusal = AuditEntry.objects.get(category=audit.Category.LOGIN_FAILED, action="auth.lti")
    assert "a learner sent a deep-linking request" in refusal.detail


def test_the_choice_pages_without_a_launch_say_to_open_the_lms(client, db):
    client.force_login(InstructorFactory())
    for path in ("/lti/deep-link/", "/lti/link-course/"):
        response = client.get(path)
        assert response.status_code == 400 and "open the activity again from your LMS" in response.content.decode()


def test_the_key_set_publishes_the_key_nestlab_signs_with(db):
    body = Client().get("/lti/jwks/").json()
    signing = keys.signing_key()
    assert [key["kid"] for key in body["keys"]] == [signing.kid]
    assert body["keys"][0]["kty"] == "RSA" and "d" not in body["keys"][0]  # never the private part
    assert "PRIVATE KEY" not in ToolKey.objects.get().private_key_ciphertext  # encrypted at rest
    newer = keys.rotate()
    assert keys.signing_key().pk == newer.pk
    assert {key["kid"] for key in Client().get("/lti/jwks/").json()["keys"]} == {signing.kid, newer.kid}


def test_pages_may_be_framed_only_by_registered_lms_origins(client, db):
    forget_framing_origins()  # another test's platform, rolled back, may be remembered
    course = open_course(students=0)
    client.force_login(course.instructors.get())
    client.defaults["HTTP_SEC_FETCH_DEST"] = "iframe"  # what a browser sends for a page in a frame
    class_table = f"/labs/courses/{course.pk}/"
    before = client.get(class_table)
    assert "frame-ancestors 'none'" in before["Content-Security-Policy"] and before["X-Frame-Options"] == "DENY"
    registered = LtiPlatformFactory(
        issuer="https://canvas.instructure.com", frame_origins=["https://school.instructure.com"]
    )
    after = client.get(class_table)
    # Hosted Canvas's issuer is not where its pages are: the school's own origin frames the tool.
    # django-csp joins the directives in no fixed order (a set): compare the directive itself.
    directives = dict(part.strip().split(" ", 1) for part in after["Content-Security-Policy"].split(";"))
    assert directives["frame-ancestors"] == "'self' https://canvas.instructure.com https://school.instructure.com"
    assert "X-Frame-Options" not in after
    # Pages a launch never leads to (the account with its API keys, the people, the admin) are
    # never framed: an LMS page's author must not trick a teacher's clicks on them.
    for path in ("/account/", "/people/", "/admin/", f"/courses/{course.pk}/edit/"):
        refused = client.get(path)
        assert "frame-ancestors 'none'" in refused.get("Content-Security-Policy", "frame-ancestors 'none'"), path
    # The same page loaded on its own is never framed.
    alone = client.get(class_table, headers={"Sec-Fetch-Dest": "document"})
    assert "frame-ancestors 'none'" in alone["Content-Security-Policy"] and alone["X-Frame-Options"] == "DENY"
    registered.is_active = False
    registered.save()
    assert "frame-ancestors 'none'" in client.get(class_table)["Content-Security-Policy"]


def test_over_https_the_launch_needs_the_browsers_state_cookie_too(linked_course, lti_platform):
    """In production (HTTPS), pylti1p3 binds the login to the browser with SameSite=None cookies,
    which an LMS's iframe keeps; a launch posted by another browser, without them, is refused."""
    browser = Client()
    params = lti_platform.prepare_launch(user=ADA, roles=[LEARNER])
    login = browser.get("/lti/login/", params, secure=True)
    state_cookies = [cookie for name, cookie in login.cookies.items() if name.startswith("lti1p3-")]
    assert state_cookies and all(cookie["samesite"] == "None" and cookie["secure"] for cookie in state_cookies)
    _, form = lti_platform.id_token_form(login["Location"])
    stranger = Client()
    refused = stranger.post("/lti/launch/", form, secure=True)
    assert refused.status_code == 403 and not _signed_in(stranger).is_authenticated
    accepted = browser.post("/lti/launch/", form, secure=True)
    assert accepted.status_code == 302 and _signed_in(browser).email == "ada@school.example"


def test_where_plain_http_launches_are_not_allowed_the_browsers_state_cookie_is_needed(
    linked_course, lti_platform, settings
):
    settings.NESTLAB_LTI_PLAIN_HTTP = False  # production: a proxy that forgot X-Forwarded-Proto
    browser = Client()
    login = browser.get("/lti/login/", lti_platform.prepare_launch(user=ADA, roles=[LEARNER]))
    _, form = lti_platform.id_token_form(login["Location"])
    stranger = Client()
    assert stranger.post("/lti/launch/", form).status_code == 403
    assert browser.post("/lti/launch/", form).status_code == 302


def test_anyones_refused_launches_fill_the_audit_log_a_bounded_number_of_times(db):
    for _ in range(25):
        response = Client().post("/lti/launch/", {"state": "x", "id_token": "a.b.c"})
        assert response.status_code == 403
    assert AuditEntry.objects.filter(action="auth.lti").count() == 20
