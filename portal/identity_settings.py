"""The school's identity providers as the environment names them (``NESTLAB_OIDC_PROVIDERS``,
``NESTLAB_SAML_PROVIDERS``, docs/identity.md), turned into django-allauth's app settings.

Plain functions of plain data: the settings module calls them before Django is set up, and tests
call them to configure a provider they started themselves.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

# Where the usual IdPs put each thing (LDAP/eduPerson OIDs for Shibboleth and most SAML IdPs, then
# the claim URIs of Entra ID and ADFS); an entry's "attributes" replaces any of them.
SAML_DEFAULT_ATTRIBUTES: dict[str, list[str]] = {
    # Without one of these the assertion's NameID is the person's id (allauth's rule).
    "uid": ["urn:oasis:names:tc:SAML:attribute:subject-id"],
    "email": [
        "urn:oid:0.9.2342.19200300.100.1.3",
        "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress",
    ],
    "first_name": ["urn:oid:2.5.4.42", "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/givenname"],
    "last_name": ["urn:oid:2.5.4.4", "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/surname"],
    "username": ["urn:oid:0.9.2342.19200300.100.1.1"],
}
# isMemberOf (eduMember), the attribute Shibboleth and most directories release groups in.
SAML_DEFAULT_ROLE_ATTRIBUTE = "urn:oid:1.3.6.1.4.1.5923.1.5.1.1"


def oidc_app(entry: dict[str, Any]) -> dict[str, Any]:
    """One ``NESTLAB_OIDC_PROVIDERS`` entry as an allauth ``openid_connect`` app."""
    return {
        "provider_id": entry["id"],
        "name": entry["name"],
        "client_id": entry["client_id"],
        "secret": entry.get("secret", ""),
        "settings": {
            "server_url": entry["server_url"],
            "scope": entry.get("scope", ["openid", "profile", "email", "groups"]),
            "role_claim": entry.get("role_claim", "groups"),
            "roles": entry.get("roles", {}),
            "courses": entry.get("courses", {}),  # claim value -> course code to enroll in
        },
    }


def saml_app(entry: dict[str, Any]) -> dict[str, Any]:
    """One ``NESTLAB_SAML_PROVIDERS`` entry as an allauth ``saml`` app (its ``client_id`` is the
    id in Nestlab's SAML addresses, ``/accounts/saml/<id>/...``).

    The IdP is read from its metadata URL (fetched by the portal, cached four hours) or from its
    SSO URL and signing certificate. Assertions must be signed (or, with ``"signed":
    "response"``, the whole response, as Shibboleth does by default); a response to a request
    Nestlab did not make (IdP-initiated) is refused, so a stolen response cannot be replayed
    into another browser's session."""
    if entry.get("metadata_url"):
        idp: dict[str, Any] = {"entity_id": entry["entity_id"], "metadata_url": entry["metadata_url"]}
    else:
        idp = {"entity_id": entry["entity_id"], "sso_url": entry["sso_url"], "x509cert": entry["x509cert"]}
    signed = entry.get("signed", "assertion")
    if signed not in {"assertion", "response"}:
        raise ValueError(f'SAML provider {entry["id"]}: "signed" is "assertion" or "response", not {signed!r}')
    return {
        "provider_id": "saml",  # allauth has one SAML provider; apps differ by client_id
        "name": entry["name"],
        "client_id": entry["id"],
        "settings": {
            "idp": idp,
            "attribute_mapping": {**SAML_DEFAULT_ATTRIBUTES, **entry.get("attributes", {})},
            "sp": {"entity_id": entry["sp_entity_id"]} if entry.get("sp_entity_id") else {},
            "advanced": {
                "strict": True,
                "want_assertion_signed": signed == "assertion",
                "want_message_signed": signed == "response",
                "reject_idp_initiated_sso": True,
                "reject_deprecated_algorithm": True,
                # The test IdP and intranet IdPs may be named by a host without dots.
                "allow_single_label_domains": True,
            },
            # The IdP's e-mail is the school's own (from its directory), so it counts as verified.
            "email_verified": bool(entry.get("email_verified", False)),
            "role_claim": entry.get("role_attribute", SAML_DEFAULT_ROLE_ATTRIBUTE),
            "roles": entry.get("roles", {}),
            "courses": entry.get("courses", {}),  # attribute value -> course code to enroll in
        },
    }


def _origin(url: str) -> str:
    return "{0.scheme}://{0.netloc}".format(urlsplit(url))


def sign_in_origins(oidc: list[dict[str, Any]], saml: list[dict[str, Any]]) -> list[str]:
    """The origins a sign-in button's answer sends the browser to (CSP form-action): each OIDC
    provider's, and each SAML IdP's SSO address (given, or the metadata's origin when only the
    metadata URL is: the SSO address is read from the metadata later, so name ``sso_url`` too
    when the IdP signs people in on another host)."""
    origins = {_origin(entry["server_url"]) for entry in oidc}
    for entry in saml:
        origins.add(_origin(entry.get("sso_url") or entry["metadata_url"]))
    return sorted(origins)
