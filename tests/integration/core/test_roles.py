import pytest

from core import roles
from tests.factories import AdminFactory, InstructorFactory, StudentFactory, UserFactory

pytestmark = pytest.mark.django_db


def test_migration_creates_the_three_role_groups(django_user_model):
    from django.contrib.auth.models import Group

    assert set(Group.objects.values_list("name", flat=True)) >= {"Admins", "Instructors", "Students"}


def test_roles_come_from_groups():
    assert roles.roles_of(StudentFactory()) == {roles.Role.STUDENT}
    assert roles.roles_of(InstructorFactory()) == {roles.Role.INSTRUCTOR}
    assert roles.is_admin(AdminFactory())


def test_highest_role_wins():
    person = InstructorFactory()
    roles.role_grant(user=person, role=roles.Role.STUDENT)
    assert roles.primary_role(person) == roles.Role.INSTRUCTOR


def test_granting_a_role_refreshes_the_cached_roles():
    person = UserFactory()
    assert roles.primary_role(person) is None
    roles.role_grant(user=person, role=roles.Role.ADMIN)
    assert roles.primary_role(person) == roles.Role.ADMIN


def test_anonymous_has_no_role():
    from django.contrib.auth.models import AnonymousUser

    assert roles.roles_of(AnonymousUser()) == frozenset()
    assert not roles.is_admin(None)
