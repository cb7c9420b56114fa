"""CSRF on every form: every route of portal/urls.py refuses a signed-in POST without a
CSRF token (pages through Django's middleware, the API through DRF's session check; token
callers have no cookie to ride on). Routes come from the URL resolver, so a route added
later is covered without a list to keep up."""

from __future__ import annotations

import re

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver

from tests.factories import AdminFactory

pytestmark = pytest.mark.django_db


def _routes(patterns, prefix: str = ""):
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            yield from _routes(pattern.url_patterns, prefix + str(pattern.pattern))
        elif isinstance(pattern, URLPattern):
            yield prefix + str(pattern.pattern)


def _concrete(route: str) -> str:
    """A path for a route: 1 for every <int:...> and regex group, a word for other converters."""
    path = re.sub(r"\(\?P<[^>]+>[^)]*\)", "1", route)  # regex routes (the admin's, DRF routers')
    path = re.sub(r"<int:[^>]+>", "1", path)
    path = re.sub(r"<[^>]+>", "x", path)
    path = path.replace("^", "").replace("$", "").replace("\\Z", "")
    return "/" + path.replace("\\", "")


# The token endpoint reads no session and sets no cookie: it answers a token to whoever sends
# the password in the body, so there is no cross-site request to forge.
SESSIONLESS = {"/api/v1/auth/token/"}
# A SAML IdP posts its answer here from its own site, so no CSRF token can come with it; the
# answer is taken only if the IdP signed it and it answers a request this browser's session made
# (tests/integration/accounts/test_identity_providers.py). An LMS's login initiation and launch
# come from the LMS's site too (LTI 1.3): their proof is the platform's signature and the login's
# one-use state and nonce (tests/integration/lti).
SIGNED_ELSEWHERE = {"/accounts/saml/x/acs/", "/lti/login/", "/lti/launch/"}
ROUTES = sorted({_concrete(route) for route in _routes(get_resolver().url_patterns)} - SESSIONLESS - SIGNED_ELSEWHERE)


def test_the_routes_are_all_read():
    assert "/login/" in ROUTES and "/api/v1/labs/1/snapshots/" in ROUTES and len(ROUTES) > 60


def test_a_post_without_a_csrf_token_is_refused_everywhere():
    client = Client(enforce_csrf_checks=True)
    client.force_login(AdminFactory(is_staff=True, is_superuser=True))
    accepted = []
    for path in ROUTES:
        response = client.post(path, {"name": "x"})
        # Swagger UI's view renders DRF's refusal as a bare HTML page, without the reason.
        refused = response.status_code == 403 and (b"CSRF" in response.content or path == "/api/docs/")
        if not refused:
            accepted.append(f"POST {path} answered {response.status_code}")
    assert not accepted, "Without a CSRF token:\n" + "\n".join(accepted)
