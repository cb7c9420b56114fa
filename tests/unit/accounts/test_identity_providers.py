"""accounts/oidc.py: a provider's claims, and the role they give."""

from accounts.oidc import claim_role, claims_of
from core.roles import Role

SETTINGS = {"role_claim": "groups", "roles": {"admin": "it", "instructor": "staff", "student": "pupils"}}


def test_userinfo_is_read_over_the_id_token():
    extra = {"id_token": {"sub": "1", "email": "old@x"}, "userinfo": {"email": "new@x"}}
    assert claims_of(extra) == {"sub": "1", "email": "new@x"}
    assert claims_of({"id_token": {"sub": "1"}}) == {"sub": "1"}


def test_the_first_role_in_precedence_wins_from_a_list_or_a_single_value():
    assert claim_role({"groups": ["pupils"]}, SETTINGS) == Role.STUDENT
    assert claim_role({"groups": ["pupils", "staff"]}, SETTINGS) == Role.INSTRUCTOR
    assert claim_role({"groups": "it"}, SETTINGS) == Role.ADMIN
    assert claim_role({"department": "it"}, {**SETTINGS, "role_claim": "department"}) == Role.ADMIN


def test_no_known_value_or_no_claim_gives_no_role():
    assert claim_role({"groups": ["alumni"]}, SETTINGS) is None
    assert claim_role({}, SETTINGS) is None
    assert claim_role({"groups": ["pupils"]}, {"roles": {}}) is None
