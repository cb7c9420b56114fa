"""accounts/backends.py against a real directory (Debian's slapd, tests/support/ldap.py): sign-in
through the sign-in page, accounts made and kept up to date, roles from groups, lockouts."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse

from core import roles
from core.models import AuditEntry
from tests.factories import DEFAULT_PASSWORD, AdminFactory, StudentFactory
from tests.support import ldap as school

pytestmark = [pytest.mark.django_db, pytest.mark.integration]
User = get_user_model()
BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "accounts.backends.DirectoryBackend",
    "accounts.backends.LocalPasswordBackend",
]


@pytest.fixture
def directory(ldap_directory, settings):
    """The portal signing people in through the test directory."""
    settings.AUTHENTICATION_BACKENDS = BACKENDS
    for name, value in ldap_directory.settings().items():
        setattr(settings, name, value)
    return ldap_directory


def _sign_in(client, username, password, address="10.1.2.3"):
    return client.post(reverse("login"), {"username": username, "password": password}, REMOTE_ADDR=address)


def test_a_first_sign_in_makes_the_account_with_the_directorys_name_mail_and_role(client, directory):
    assert _sign_in(client, "ada", school.PASSWORD).status_code == 302
    ada = User.objects.get(username="ada")
    assert (ada.first_name, ada.last_name, ada.email) == ("Ada", "Lovelace", "ada@school.example")
    assert roles.roles_of(ada) == {roles.Role.STUDENT}
    assert not ada.has_usable_password()  # the directory keeps the password, Nestlab none
    assert client.get(reverse("home")).status_code == 200


def test_each_role_comes_from_its_group(client, directory):
    for uid, role in (("grace", roles.Role.INSTRUCTOR), ("linus", roles.Role.ADMIN)):
        assert _sign_in(client, uid, school.PASSWORD).status_code == 302
        assert roles.primary_role(User.objects.get(username=uid)) == role
        client.logout()


def test_a_later_sign_in_follows_a_group_change_and_records_it(client, directory):
    _sign_in(client, "ada", school.PASSWORD)
    client.logout()
    directory.add_to(school.INSTRUCTORS, "ada")
    directory.remove_from(school.STUDENTS, "ada")
    try:
        assert _sign_in(client, "ada", school.PASSWORD).status_code == 302
        assert roles.roles_of(User.objects.get(username="ada")) == {roles.Role.INSTRUCTOR}
        entry = AuditEntry.objects.filter(action="auth.role_set").latest("when")
        assert "instructor from the directory (was student)" in entry.detail
    finally:
        directory.add_to(school.STUDENTS, "ada")
        directory.remove_from(school.INSTRUCTORS, "ada")


def test_someone_in_no_role_group_is_refused_like_a_wrong_password(client, directory):
    refused = _sign_in(client, "guest", school.PASSWORD)
    assert refused.status_code == 200 and b"correct username and password" in refused.content
    assert AuditEntry.objects.filter(category=AuditEntry.Category.LOGIN_FAILED, actor_username="guest").exists()


def test_wrong_directory_passwords_lock_out_after_the_axes_limit(client, directory):
    for _ in range(4):
        assert _sign_in(client, "ada", "guess").status_code == 200
    assert _sign_in(client, "ada", "guess").status_code == 429
    assert _sign_in(client, "ada", school.PASSWORD).status_code == 429  # even the right one, while locked


def test_local_accounts_still_sign_in_beside_the_directory(client, directory):
    student = StudentFactory()
    assert _sign_in(client, student.username, DEFAULT_PASSWORD).status_code == 302


def test_with_local_passwords_off_only_superusers_use_one(client, directory, settings):
    settings.NESTLAB_LOCAL_PASSWORDS = False
    student = StudentFactory()
    assert _sign_in(client, student.username, DEFAULT_PASSWORD).status_code == 200
    admin = AdminFactory(is_superuser=True)
    assert _sign_in(client, admin.username, DEFAULT_PASSWORD).status_code == 302
    client.logout()
    assert _sign_in(client, "ada", school.PASSWORD).status_code == 302  # the directory still works


def test_a_course_group_enrolls_its_students_at_sign_in(client, directory, settings):
    from tests.factories import open_course

    course = open_course(students=0)
    settings.NESTLAB_LDAP_COURSE_GROUPS = {school.STUDENTS: course.code, school.INSTRUCTORS: course.code}
    assert _sign_in(client, "ada", school.PASSWORD).status_code == 302
    assert course.enrollments.filter(student__username="ada").exists()
    client.logout()
    assert _sign_in(client, "grace", school.PASSWORD).status_code == 302
    assert not course.enrollments.filter(student__username="grace").exists()  # staff are never enrolled
