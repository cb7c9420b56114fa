"""accounts/views.py: the people page (everyone's accounts, for admins) and adding an instructor."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse
from django.utils.html import escape

from core import roles
from tests.factories import AdminFactory, InstructorFactory, StudentFactory
from tests.integration.courses.test_views import messages_of

pytestmark = pytest.mark.django_db
User = get_user_model()


def test_admin_sees_people_with_their_roles_and_adds_an_instructor(client):
    admin = AdminFactory(username="root-admin")
    StudentFactory(username="sam")
    client.force_login(admin)
    page = client.get(reverse("accounts:people"))
    assert page.status_code == 200
    rows = dict((person.username, names) for person, names in page.context["rows"])
    assert rows["root-admin"] == ["admin"]
    assert rows["sam"] == ["student"]

    response = client.post(
        reverse("accounts:people"),
        {
            "username": "ines",
            "first_name": "Ines",
            "last_name": "Teach",
            "email": "",
            "password": "a-long-passphrase-42",
        },
        follow=True,
    )
    ines = User.objects.get(username="ines")
    assert roles.is_instructor(ines)
    assert ines.check_password("a-long-passphrase-42")
    assert any("ines is an instructor" in text for text in messages_of(response))
    assert b"a-long-passphrase-42" not in response.content

    filtered = client.get(reverse("accounts:people"), {"role": "student"})
    assert [person.username for person, _ in filtered.context["rows"]] == ["sam"]


def test_a_weak_instructor_password_is_refused_on_the_form(client):
    client.force_login(AdminFactory())
    response = client.post(reverse("accounts:people"), {"username": "ines", "password": "123"})
    assert response.status_code == 200
    assert response.context["form"].errors["password"]
    assert not User.objects.filter(username="ines").exists()


def test_a_taken_user_name_is_said_on_the_form(client):
    StudentFactory(username="ines")
    client.force_login(AdminFactory())
    response = client.post(reverse("accounts:people"), {"username": "ines", "password": "a-long-passphrase-42"})
    assert response.context["form"].errors["username"]


@pytest.mark.parametrize("factory", [InstructorFactory, StudentFactory])
def test_only_admins_see_people(client, factory):
    client.force_login(factory())
    assert client.get(reverse("accounts:people")).status_code == 403
    response = client.post(reverse("accounts:people"), {"username": "sneaky", "password": "a-long-passphrase-42"})
    assert response.status_code == 403
    assert not User.objects.filter(username="sneaky").exists()


# Templates


# The person's own account


def test_the_account_page_makes_a_key_shows_it_once_and_revokes_it(client):
    from accounts.models import ApiKey

    student = StudentFactory(username="sam")
    client.force_login(student)
    made = client.post(reverse("accounts:api-key-create"), {"name": "laptop"})
    assert made.status_code == 200
    [key] = ApiKey.objects.filter(user=student)
    secret = made.context["new_key"]
    assert secret.encode() in made.content and secret.startswith(key.prefix)
    again = client.get(reverse("accounts:account"))
    assert secret.encode() not in again.content and f"{key.prefix}…".encode() in again.content
    revoked = client.post(reverse("accounts:api-key-revoke", args=[key.pk]))
    assert revoked.status_code == 302 and not ApiKey.objects.filter(pk=key.pk).exists()


def test_a_key_with_a_name_in_use_is_refused_on_the_form(client):
    student = StudentFactory()
    client.force_login(student)
    client.post(reverse("accounts:api-key-create"), {"name": "laptop"})
    again = client.post(reverse("accounts:api-key-create"), {"name": "laptop"})
    assert again.status_code == 400 and "called laptop already" in again.content.decode()


def test_someone_elses_key_cannot_be_revoked_from_the_page(client):
    from accounts import services
    from accounts.models import ApiKey

    key, _ = services.api_key_create(user=StudentFactory(), name="laptop")
    client.force_login(StudentFactory())
    assert client.post(reverse("accounts:api-key-revoke", args=[key.pk])).status_code == 404
    assert ApiKey.objects.filter(pk=key.pk).exists()


def test_a_password_change_needs_the_old_one_follows_the_rules_and_is_recorded(client):
    from core.models import AuditEntry
    from tests.factories import DEFAULT_PASSWORD

    student = StudentFactory()
    client.force_login(student)
    url = reverse("accounts:password-change")
    weak = client.post(url, {"old_password": DEFAULT_PASSWORD, "new_password1": "123", "new_password2": "123"})
    assert weak.status_code == 200 and "too short" in weak.content.decode()
    new = "a-much-longer-secret-42"
    changed = client.post(url, {"old_password": DEFAULT_PASSWORD, "new_password1": new, "new_password2": new})
    assert changed.status_code == 302
    student.refresh_from_db()
    assert student.check_password(new)
    assert client.get(reverse("accounts:account")).status_code == 200  # still signed in
    assert AuditEntry.objects.filter(action="auth.password_change", actor=student).count() == 1


def test_someone_who_signs_in_through_the_school_is_told_nestlab_keeps_no_password_for_them(client):
    """A directory's, an identity provider's or an LMS's person has no usable Nestlab password
    (allauth wipes a roster's when the school's verified e-mail reaches it): the account page
    says so instead of a link to a form that would ask for an old password they never had."""
    from accounts.views import NO_PASSWORD_WORDS

    student = StudentFactory()
    student.set_unusable_password()
    student.save()
    client.force_login(student)
    page = client.get(reverse("accounts:account")).content.decode()
    assert escape(NO_PASSWORD_WORDS) in page and reverse("accounts:password-change") not in page
    response = client.post(reverse("accounts:password-change"), {"old_password": "", "new_password1": "x"})
    assert response.status_code == 302 and response["Location"] == reverse("accounts:account")
    assert messages_of(client.get(reverse("accounts:account"))) == [NO_PASSWORD_WORDS]
    student.refresh_from_db()
    assert not student.has_usable_password()
    with_password = StudentFactory()
    client.force_login(with_password)
    assert reverse("accounts:password-change") in client.get(reverse("accounts:account")).content.decode()


def test_guessing_the_old_password_is_stopped_after_five_tries(client):
    from tests.factories import DEFAULT_PASSWORD

    student = StudentFactory()
    client.force_login(student)
    url = reverse("accounts:password-change")
    new = "a-much-longer-secret-42"
    for _ in range(5):
        wrong = client.post(url, {"old_password": "guess", "new_password1": new, "new_password2": new})
        assert "incorrectly" in wrong.content.decode()
    blocked = client.post(url, {"old_password": DEFAULT_PASSWORD, "new_password1": new, "new_password2": new})
    assert "Too many wrong passwords" in blocked.content.decode()
    student.refresh_from_db()
    assert not student.check_password(new)


def test_a_reset_e_mail_sets_a_new_password_once(client, mailoutbox):
    import re

    student = StudentFactory(email="sam@example.edu")
    sent = client.post(reverse("accounts:password-reset"), {"email": "SAM@example.edu"})
    assert sent.status_code == 302
    [mail] = mailoutbox
    assert mail.to == ["sam@example.edu"] and "Nestlab" in mail.subject
    link = re.search(r"https?://[^/]+(/password-reset/\S+/)", mail.body).group(1)
    form = client.get(link, follow=True)
    new = "a-much-longer-secret-42"
    done = client.post(form.redirect_chain[-1][0], {"new_password1": new, "new_password2": new})
    assert done.status_code == 302
    student.refresh_from_db()
    assert student.check_password(new)
    assert "does not work any more" in client.get(link, follow=True).content.decode()


def test_a_reset_for_an_unknown_address_answers_the_same_and_sends_nothing(client, mailoutbox):
    answer = client.post(reverse("accounts:password-reset"), {"email": "nobody@example.edu"})
    assert answer.status_code == 302 and answer.url == reverse("accounts:password-reset-done")
    assert mailoutbox == []


def test_reset_e_mails_to_one_address_are_limited(client, mailoutbox):
    StudentFactory(email="sam@example.edu")
    for _ in range(3):
        assert client.post(reverse("accounts:password-reset"), {"email": "sam@example.edu"}).status_code == 302
    refused = client.post(reverse("accounts:password-reset"), {"email": "sam@example.edu"})
    assert refused.status_code == 200 and "Too many reset e-mails" in refused.content.decode()
    assert len(mailoutbox) == 3
