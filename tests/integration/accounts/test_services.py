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
