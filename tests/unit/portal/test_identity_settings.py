"""portal/identity_settings.py: the environment's identity providers as allauth's app settings."""

import pytest

from portal.identity_settings import SAML_DEFAULT_ROLE_ATTRIBUTE, oidc_app, saml_app, sign_in_origins

SHIBBOLETH = {
    "id": "uni",
    "name": "University account",
    "entity_id": "https://idp.uni.example/idp/shibboleth",
    "metadata_url": "https://idp.uni.example/idp/shibboleth",
    "roles": {"student": "students"},
}
ENTRA = {
    "id": "entra",
    "name": "Microsoft account",
    "entity_id": "https://sts.windows.net/tenant/",
    "sso_url": "https://login.microsoftonline.com/tenant/saml2",
    "x509cert": "MIIC...",
    "role_attribute": "http://schemas.microsoft.com/ws/2008/06/identity/claims/groups",
}
KEYCLOAK = {"id": "kc", "name": "Keycloak", "server_url": "https://id.school.example/realms/s", "client_id": "n"}


def test_a_saml_entry_is_an_allauth_saml_app_named_by_its_id():
    app = saml_app(SHIBBOLETH)
    assert (app["provider_id"], app["client_id"], app["name"]) == ("saml", "uni", "University account")
    assert app["settings"]["idp"] == {
        "entity_id": "https://idp.uni.example/idp/shibboleth",
        "metadata_url": "https://idp.uni.example/idp/shibboleth",
    }
    assert app["settings"]["role_claim"] == SAML_DEFAULT_ROLE_ATTRIBUTE
    assert app["settings"]["roles"] == {"student": "students"} and app["settings"]["courses"] == {}
    assert app["settings"]["email_verified"] is False


def test_an_idp_without_metadata_is_named_by_its_sign_on_address_and_certificate():
    app = saml_app(ENTRA)
    assert app["settings"]["idp"] == {
        "entity_id": "https://sts.windows.net/tenant/",
        "sso_url": "https://login.microsoftonline.com/tenant/saml2",
        "x509cert": "MIIC...",
    }
    assert app["settings"]["role_claim"] == ENTRA["role_attribute"]


def test_signed_assertions_are_required_unless_the_entry_asks_for_signed_responses():
    strict = saml_app(SHIBBOLETH)["settings"]["advanced"]
    assert strict["want_assertion_signed"] and not strict["want_message_signed"]
    assert strict["strict"] and strict["reject_idp_initiated_sso"] and strict["reject_deprecated_algorithm"]
    responses = saml_app({**SHIBBOLETH, "signed": "response"})["settings"]["advanced"]
    assert responses["want_message_signed"] and not responses["want_assertion_signed"]
    with pytest.raises(ValueError, match="signed"):
        saml_app({**SHIBBOLETH, "signed": "nothing"})


def test_an_entrys_attributes_replace_the_defaults_one_by_one():
    mapping = saml_app({**SHIBBOLETH, "attributes": {"email": "mail"}})["settings"]["attribute_mapping"]
    assert mapping["email"] == "mail"
    assert "urn:oid:2.5.4.42" in mapping["first_name"]


def test_an_oidc_entry_keeps_its_role_claim_and_courses():
    app = oidc_app({**KEYCLOAK, "courses": {"vsp8": "VSP8"}})
    assert (app["provider_id"], app["client_id"]) == ("kc", "n")
    assert app["settings"]["role_claim"] == "groups" and app["settings"]["courses"] == {"vsp8": "VSP8"}


def test_sign_in_buttons_may_lead_to_each_providers_origin_and_no_other():
    assert sign_in_origins([KEYCLOAK], [SHIBBOLETH, ENTRA]) == [
        "https://id.school.example",
        "https://idp.uni.example",
        "https://login.microsoftonline.com",
    ]
    assert sign_in_origins([], []) == []
