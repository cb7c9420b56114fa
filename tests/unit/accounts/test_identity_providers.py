"""accounts/identity_providers.py: a provider's claims, whatever its kind, and the role they give."""

from accounts.identity_providers import claim_role, claim_values, oidc_claims, saml_claims
from core.roles import Role
from portal.identity_settings import saml_app

SETTINGS = {"role_claim": "groups", "roles": {"admin": "it", "instructor": "staff", "student": "pupils"}}
MAIL = "urn:oid:0.9.2342.19200300.100.1.3"
IS_MEMBER_OF = "urn:oid:1.3.6.1.4.1.5923.1.5.1.1"
SAML_SETTINGS = saml_app(
    {
        "id": "school",
        "name": "School",
        "entity_id": "https://idp.school.example/idp",
        "metadata_url": "https://idp.school.example/idp/metadata",
        "roles": {"student": "pupils"},
    }
)["settings"]


def test_userinfo_is_read_over_the_id_token():
    extra = {"id_token": {"sub": "1", "email": "old@x"}, "userinfo": {"email": "new@x"}}
    assert oidc_claims(extra) == {"sub": "1", "email": "new@x"}
    assert oidc_claims({"id_token": {"sub": "1"}}) == {"sub": "1"}


def test_saml_attributes_read_as_the_claims_oidc_names():
    attributes = {
        MAIL: ["ada@school.example", "ada.lovelace@school.example"],
        "urn:oid:2.5.4.42": ["Ada"],
        "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/surname": ["Lovelace"],
        IS_MEMBER_OF: ["pupils", "chess-club"],
    }
    assert saml_claims(attributes, SAML_SETTINGS, uid="a1") == {
        "sub": "a1",
        "email": "ada@school.example",  # the first value of a details attribute
        "given_name": "Ada",
        "family_name": "Lovelace",  # Entra ID's name for it, among the defaults
        IS_MEMBER_OF: ["pupils", "chess-club"],  # every value of the role attribute
    }
    assert claim_role(saml_claims(attributes, SAML_SETTINGS, uid="a1"), SAML_SETTINGS) == Role.STUDENT


def test_saml_attributes_missing_or_empty_give_no_claim_and_no_role():
    claims = saml_claims({MAIL: [], IS_MEMBER_OF: []}, SAML_SETTINGS, uid="a1")
    assert claims == {"sub": "a1", IS_MEMBER_OF: []}
    assert claim_values(claims, SAML_SETTINGS) == set()
    assert claim_role(claims, SAML_SETTINGS) is None


def test_a_saml_mapping_of_one_attribute_name_is_read_like_a_list():
    settings = {**SAML_SETTINGS, "attribute_mapping": {"email": "mail"}, "role_claim": "memberOf"}
    claims = saml_claims({"mail": ["g@x"], "memberOf": ["pupils"]}, settings, uid="g")
    assert claims == {"sub": "g", "email": "g@x", "memberOf": ["pupils"]}


def test_the_first_role_in_precedence_wins_from_a_list_or_a_single_value():
    assert claim_role({"groups": ["pupils"]}, SETTINGS) == Role.STUDENT
    assert claim_role({"groups": ["pupils", "staff"]}, SETTINGS) == Role.INSTRUCTOR
    assert claim_role({"groups": "it"}, SETTINGS) == Role.ADMIN
    assert claim_role({"department": "it"}, {**SETTINGS, "role_claim": "department"}) == Role.ADMIN


def test_no_known_value_or_no_claim_gives_no_role():
    assert claim_role({"groups": ["alumni"]}, SETTINGS) is None
    assert claim_role({}, SETTINGS) is None
    assert claim_role({"groups": ["pupils"]}, {"roles": {}}) is None
