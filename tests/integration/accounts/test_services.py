"""accounts/services.py: the one rule for student and instructor accounts, and API tokens."""

from __future__ import annotations

import pytest
from django.core.exceptions import PermissionDenied, ValidationError

from accounts import services
from core import roles
from core.models import AuditEntry
from tests.factories import AdminFactory, InstructorFactory, StudentFactory

pytestmark = pytest.mark.django_db


def test_admins_create_instructors():
    instructor = services.instructor_create(actor=AdminFactory(), username="prof", password="a-long-enough-secret-42")
    assert roles.is_instructor(instructor) and instructor.check_password("a-long-enough-secret-42")


def test_instructors_cannot_create_instructors():
    with pytest.raises(PermissionDenied):
        services.instructor_create(actor=InstructorFactory(), username="x", password="a-long-enough-secret-42")


def test_weak_instructor_passwords_are_refused():
    with pytest.raises(ValidationError):
        services.instructor_create(actor=AdminFactory(), username="prof", password="123")


def test_a_student_account_without_a_password_gets_one_made_up_and_shown_once():
    student, generated = services.student_create(actor=InstructorFactory(), username="sam", email="sam@example.edu")
    assert roles.is_student(student) and generated and student.check_password(generated)
    named, none = services.student_create(actor=AdminFactory(), username="kim", password="a-long-enough-secret-42")
    assert none is None and named.check_password("a-long-enough-secret-42")


def test_students_cannot_create_students_and_weak_passwords_are_refused():
    with pytest.raises(PermissionDenied):
        services.student_create(actor=StudentFactory(), username="sam")
    with pytest.raises(ValidationError):
        services.student_create(actor=InstructorFactory(), username="sam", password="123")


def test_a_staff_account_never_becomes_a_student():
    with pytest.raises(ValidationError, match="staff account"):
        services.student_role_ensure(InstructorFactory())
    plain = StudentFactory()
    services.student_role_ensure(plain)
    assert roles.is_student(plain)


def test_the_api_token_is_made_once_and_every_hand_out_is_audited():
    user = StudentFactory()
    first = services.api_token_hand_out(user=user)
    again = services.api_token_hand_out(user=user)
    assert first.key == again.key
    details = list(AuditEntry.objects.filter(action="api.token", actor=user).values_list("detail", flat=True))
    assert sorted(details) == ["A new API token was created.", "The existing API token was handed out."]


def test_an_api_key_is_shown_once_kept_as_a_digest_and_audited():
    from accounts.models import ApiKey, api_key_digest

    user = StudentFactory()
    key, secret = services.api_key_create(user=user, name="grading script")
    stored = ApiKey.objects.get(pk=key.pk)
    assert secret.startswith("nlk_") and len(secret) > 40
    assert secret not in (stored.digest, stored.prefix) and stored.digest == api_key_digest(secret)
    assert secret.startswith(stored.prefix)
    entry = AuditEntry.objects.get(action="api_key.create")
    assert entry.actor == user and "grading script" in entry.detail and secret not in entry.detail


def test_api_keys_are_named_uniquely_and_limited_per_person():
    from accounts.models import API_KEYS_PER_PERSON

    user = StudentFactory()
    services.api_key_create(user=user, name="laptop")
    with pytest.raises(ValidationError, match="called laptop already"):
        services.api_key_create(user=user, name="laptop")
    with pytest.raises(ValidationError):
        services.api_key_create(user=user, name="   ")
    for index in range(API_KEYS_PER_PERSON - 1):
        services.api_key_create(user=user, name=f"script {index}")
    with pytest.raises(ValidationError, match="the most one person may have"):
        services.api_key_create(user=user, name="one more")
    services.api_key_create(user=StudentFactory(), name="laptop")  # another person's names are theirs


def test_only_the_owner_or_an_admin_revokes_a_key():
    from accounts.models import ApiKey

    owner = StudentFactory()
    key, _ = services.api_key_create(user=owner, name="laptop")
    with pytest.raises(PermissionDenied):
        services.api_key_revoke(key=key, actor=StudentFactory())
    services.api_key_revoke(key=key, actor=AdminFactory())
    assert not ApiKey.objects.filter(pk=key.pk).exists()
    assert AuditEntry.objects.filter(action="api_key.revoke").count() == 1
