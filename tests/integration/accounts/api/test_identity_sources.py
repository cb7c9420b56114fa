"""Where people sign in from, for admins: read from the environment's configuration, secrets never
shown. Who may ask is in tests/integration/portal/test_permission_matrix.py."""

from __future__ import annotations

import json

import pytest
from rest_framework.test import APIClient

from portal import identity_settings
from tests.factories import AdminFactory

pytestmark = [pytest.mark.integration, pytest.mark.django_db]


def test_an_admin_sees_every_sign_in_source_without_its_secrets(settings):
    settings.NESTLAB_LOCAL_PASSWORDS = False
    settings.NESTLAB_LDAP_URL = "ldaps://ldap.school.example"
    settings.NESTLAB_LDAP_ROLE_GROUPS = {
        "admin": "",
        "instructor": "cn=staff,ou=groups",
        "student": "cn=pupils,ou=groups",
    }
    settings.NESTLAB_LDAP_COURSE_GROUPS = {"cn=net101,ou=groups": "net101"}
    settings.SOCIALACCOUNT_PROVIDERS = {
        "openid_connect": {
            "APPS": [
                identity_settings.oidc_app(
                    {
                        "id": "keycloak",
                        "name": "School account",
                        "server_url": "https://sso.school.example/realms/school",
                        "client_id": "nestlab",
                        "secret": "do-not-show-me",
                        "roles": {"student": "pupils"},
                    }
                )
            ]
        },
        "saml": {
            "APPS": [
                identity_settings.saml_app(
                    {
                        "id": "shib",
                        "name": "Shibboleth",
                        "entity_id": "https://idp.school.example/idp/shibboleth",
                        "metadata_url": "https://idp.school.example/idp/shibboleth",
                        "roles": {"instructor": "staff"},
                        "courses": {"net101-students": "net101"},
                    }
                )
            ]
        },
    }
    client = APIClient()
    client.force_authenticate(AdminFactory())
    response = client.get("/api/v1/identity/sources/")
    assert response.status_code == 200
    sources = {source["id"]: source for source in response.json()}
    assert sources["passwords"]["enabled_for"] == "superusers (break-glass) only"
    assert sources["directory"]["roles"] == {"instructor": "cn=staff,ou=groups", "student": "cn=pupils,ou=groups"}
    assert sources["directory"]["courses"] == {"cn=net101,ou=groups": "net101"}
    assert (sources["keycloak"]["kind"], sources["keycloak"]["role_claim"]) == ("oidc", "groups")
    assert sources["keycloak"]["roles"] == {"student": "pupils"}
    assert sources["shib"]["kind"] == "saml" and sources["shib"]["courses"] == {"net101-students": "net101"}
    assert "do-not-show-me" not in json.dumps(response.json())


def test_with_nothing_configured_only_local_passwords_are_listed(settings):
    settings.NESTLAB_LDAP_URL = ""
    settings.SOCIALACCOUNT_PROVIDERS = {"openid_connect": {"APPS": []}, "saml": {"APPS": []}}
    client = APIClient()
    client.force_authenticate(AdminFactory())
    assert [source["kind"] for source in client.get("/api/v1/identity/sources/").json()] == ["local"]
