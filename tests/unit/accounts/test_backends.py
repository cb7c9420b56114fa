"""accounts/backends.py: which role a person's directory groups give."""

from accounts.backends import directory_role
from core.roles import Role

GROUPS = {"admin": "cn=Admins,dc=x", "instructor": "cn=Teachers,dc=x", "student": "cn=Pupils,dc=x"}


def test_the_first_role_in_precedence_wins_and_names_compare_without_case():
    assert directory_role({"CN=pupils,DC=x"}, GROUPS) == Role.STUDENT
    assert directory_role({"cn=Pupils,dc=x", "cn=Teachers,dc=x"}, GROUPS) == Role.INSTRUCTOR
    assert directory_role({"cn=Teachers,dc=x", "cn=Admins,dc=x"}, GROUPS) == Role.ADMIN


def test_no_configured_group_gives_no_role():
    assert directory_role({"cn=Staff,dc=x"}, GROUPS) is None
    assert directory_role({"cn=Pupils,dc=x"}, {"admin": "", "instructor": "", "student": ""}) is None
