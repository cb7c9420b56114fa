"""An admin checks a vCenter connection from the home page, with a real worker and simulator."""

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import log_in
from tests.factories import DEFAULT_PASSWORD, AdminFactory, simulator_endpoint

pytestmark = pytest.mark.browser


def test_admin_checks_a_connection_and_reads_the_result(page, web_server, celery_worker, vcsim, screenshot):
    simulator_endpoint(vcsim, name="Simulator")
    simulator_endpoint(vcsim, name="Wrong password", password="wrong")
    admin = AdminFactory()
    log_in(page, web_server.url, admin.username, DEFAULT_PASSWORD)

    page.get_by_role("row", name="Simulator").get_by_role("button", name="Check connection").click()
    expect(page.get_by_role("heading", name="Check vCenter connection")).to_be_visible()
    # Live: the page turns done by itself, nobody reloads it (issue 10).
    expect(page.locator("[data-field=state]")).to_have_text("Succeeded", timeout=30_000)
    expect(page.locator(".checks")).to_contain_text("Datastore LocalDS_0")
    screenshot(page, "check-succeeded")

    page.goto(web_server.url)
    page.get_by_role("row", name="Wrong password").get_by_role("button", name="Check connection").click()
    expect(page.locator("[data-field=state]")).to_have_text("Failed", timeout=30_000)
    expect(page.get_by_role("alert")).to_contain_text("rejected the user name or password")
    screenshot(page, "check-failed")

    page.goto(web_server.url)
    expect(page.get_by_role("cell", name="vCenter rejected the user name or password", exact=False)).to_be_visible()
    screenshot(page, "admin-home-with-operations")
