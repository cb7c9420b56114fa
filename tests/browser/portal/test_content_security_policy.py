"""The content security policy as Chromium applies it: the pages that other browser tests do
not open (Django's admin, the API docs) work under it with nothing refused, and a page that
broke it would be caught (the ``page`` fixture fails any test whose pages the policy refused)."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import content_security_policy_violations, log_in
from tests.factories import DEFAULT_PASSWORD, AdminFactory, EndpointFactory

pytestmark = pytest.mark.browser


def test_admin_site_and_api_docs_run_under_the_policy(page, live_server, screenshot):
    EndpointFactory(name="Campus vCenter")
    admin = AdminFactory(is_staff=True, is_superuser=True)
    log_in(page, live_server.url, admin.username, DEFAULT_PASSWORD)

    response = page.goto(f"{live_server.url}/admin/courses/vcenterendpoint/")
    assert "script-src 'self'" in response.headers["content-security-policy"]
    expect(page.get_by_role("link", name="Campus vCenter")).to_be_visible()
    page.get_by_role("link", name="Campus vCenter").click()
    expect(page.get_by_role("heading", name="Change vCenter endpoint")).to_be_visible()

    # Swagger UI loads its start-up script as a file of its own (SpectacularSwaggerSplitView).
    page.goto(f"{live_server.url}/api/docs/")
    expect(page.locator(".swagger-ui .information-container")).to_be_visible()
    expect(page.locator(".opblock").first).to_be_visible()
    screenshot(page, "api-docs", full_page=False)


def test_an_injected_inline_handler_is_refused_and_reported(browser, live_server):
    """The policy is enforced, not just sent: an event handler injected as markup does not
    run, and Chromium reports the refusal the way the ``page`` fixture watches for."""
    context = browser.new_context()
    page = context.new_page()
    refused = content_security_policy_violations(page)
    page.goto(f"{live_server.url}/login/")
    page.evaluate(
        """() => {
          const holder = document.createElement("div");
          document.body.append(holder);
          holder.innerHTML = '<img src="data:," onerror="window.injected = true" onload="window.injected = true">';
        }"""
    )
    page.wait_for_timeout(300)
    ran = page.evaluate("window.injected === true")
    context.close()
    assert not ran, "the injected handler ran"
    assert any("inline event handler" in line for line in refused), refused
