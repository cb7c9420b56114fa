"""Logging in and landing on each role's home page, in real Chromium, laptop and phone."""

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import log_in
from tests.factories import DEFAULT_PASSWORD, AdminFactory, EndpointFactory, InstructorFactory, StudentFactory

pytestmark = pytest.mark.browser


def test_login_page_then_student_home(page, web_server, screenshot):
    student = StudentFactory(first_name="Sam")
    page.goto(f"{web_server.url}/login/")
    expect(page.get_by_role("heading", name="Log in to Nestlab")).to_be_visible()
    # The vendored CSS is applied: Pico styles the button as a full-width block.
    button_width = page.get_by_role("button", name="Log in").bounding_box()["width"]
    assert button_width > 200
    screenshot(page, "login")

    log_in(page, web_server.url, student.username, DEFAULT_PASSWORD)
    expect(page.get_by_role("heading", name="My labs")).to_be_visible()
    expect(page.get_by_text("Hello Sam")).to_be_visible()
    screenshot(page, "student-home")


def test_wrong_password_is_explained(page, web_server, screenshot):
    student = StudentFactory()
    log_in(page, web_server.url, student.username, "not-the-password")
    expect(page.get_by_role("alert")).to_contain_text("correct username and password")
    screenshot(page, "wrong-password")


def test_admin_and_instructor_homes(page, web_server, screenshot):
    EndpointFactory(name="Campus vCenter")
    admin = AdminFactory()
    log_in(page, web_server.url, admin.username, DEFAULT_PASSWORD)
    expect(page.get_by_role("heading", name="Administration")).to_be_visible()
    expect(page.get_by_role("cell", name="Campus vCenter")).to_be_visible()
    expect(page.get_by_role("button", name="Check connection")).to_be_visible()
    screenshot(page, "admin-home")

    page.locator("summary.account").click()
    page.get_by_role("button", name="Log out").click()
    expect(page.get_by_role("heading", name="Log in to Nestlab")).to_be_visible()

    instructor = InstructorFactory()
    log_in(page, web_server.url, instructor.username, DEFAULT_PASSWORD)
    expect(page.get_by_role("heading", name="Teaching")).to_be_visible()
    screenshot(page, "instructor-home")


def test_pages_fit_a_phone(browser, web_server, screenshot):
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True)
    page = context.new_page()
    student = StudentFactory()
    log_in(page, web_server.url, student.username, DEFAULT_PASSWORD)
    expect(page.get_by_role("heading", name="My labs")).to_be_visible()
    # Nothing wider than the screen: no sideways scrolling on a phone.
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    screenshot(page, "student-home-phone")
    context.close()
