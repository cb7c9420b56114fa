"""An LMS (the real test platform, tests/support/lti_platform.py) registered with Nestlab, and a
launch driven as a browser would: the LMS's login initiation, the tool's redirect to the LMS,
the LMS's signed id_token posted back."""

from __future__ import annotations

import pytest
from django.test import Client

from lti import keys
from lti.models import Platform


@pytest.fixture
def registered(lti_platform, db) -> Platform:
    """The test platform, registered as an admin would (trusted with e-mails, as a school whose LMS
    locks them), knowing Nestlab's public keys."""
    platform = Platform.objects.create(
        name="Moodle",
        issuer=lti_platform.issuer,
        client_id=lti_platform.client_id,
        deployment_ids=[lti_platform.deployment_id],
        auth_login_url=lti_platform.auth_login_url,
        auth_token_url=lti_platform.auth_token_url,
        key_set_url=lti_platform.key_set_url,
        trust_emails=True,
    )
    lti_platform.set_tool_jwks(keys.public_key_set())
    lti_platform.target_link_uri = "http://testserver/lti/launch/"
    return platform


@pytest.fixture(autouse=True)
def forget_attempts():
    """Refusals are audited at most 20 an hour per address: each test starts with none counted."""
    from core import rate_limit

    rate_limit.forget_all()
    yield
    rate_limit.forget_all()


def launch(client: Client, lti_platform, **prepared):
    """One launch through a browser's steps; the tool's answer to the launch post."""
    params = lti_platform.prepare_launch(**prepared)
    login = client.get("/lti/login/", params)
    assert login.status_code == 302, login.content.decode()[:500]
    action, form = lti_platform.id_token_form(login["Location"])
    assert action == "http://testserver/lti/launch/"
    return client.post("/lti/launch/", form)
