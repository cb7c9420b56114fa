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


def test_admins_see_each_vcenters_load_and_why_one_takes_no_new_labs(page, web_server, screenshot):
    """The admin home's endpoint loads (labs.selectors.endpoint_load_list): labs building and
    running, limits, and why an endpoint takes no new labs (maintenance, unreachable as the
    watcher or a build found it, a limit reached)."""
    from labs import placement
    from tests.factories import lab_row, open_course

    course = open_course(students=2)
    campus = course.template_version.template.endpoint
    campus.name, campus.max_storage_gb = "Campus vCenter", 500
    campus.save()
    students = [enrollment.student for enrollment in course.enrollments.order_by("pk")]
    lab_row(course, students[0], state="provisioning")
    lab_row(course, students[1])
    annex = EndpointFactory(name="Annex vCenter", in_maintenance=True)
    down = EndpointFactory(name="Lab room vCenter")
    for endpoint in (campus, annex):  # Redis outlives the database: another test's mark for the same id
        placement.endpoint_reachable_mark(endpoint_id=endpoint.pk)
    refused = "cannot talk to vCenter: the connection was refused"
    placement.endpoint_unreachable_mark(endpoint_id=down.pk, reason=refused)
    try:
        log_in(page, web_server.url, AdminFactory().username, DEFAULT_PASSWORD)
        campus_row = page.locator(f"tr.endpoint-load[data-endpoint='{campus.pk}']")
        expect(campus_row).to_contain_text("1 building")
        expect(campus_row).to_contain_text("of 500 GB")
        expect(campus_row).not_to_contain_text("Takes no new labs")
        expect(page.locator("tr.endpoint-load", has_text="Annex vCenter")).to_contain_text(
            "Takes no new labs: Annex vCenter is in maintenance"
        )
        expect(page.locator(f"tr.endpoint-load[data-endpoint='{down.pk}']")).to_contain_text(
            f"could not be reached lately ({refused})"
        )
        # A long reason wraps: every column of the table is on the screen, nothing to scroll sideways.
        table = page.locator("tr.endpoint-load").first.locator("xpath=ancestor::div[@class='table-scroll']")
        assert table.evaluate("element => element.scrollWidth <= element.clientWidth"), "the load table overflows"
        expect(page.get_by_role("columnheader", name="Clone slots")).to_be_in_viewport()
        screenshot(page, "endpoint-loads")
    finally:
        placement.endpoint_reachable_mark(endpoint_id=down.pk)


def test_an_address_that_holds_nothing_is_the_products_page(page, web_server, screenshot):
    log_in(page, web_server.url, StudentFactory().username, DEFAULT_PASSWORD)
    page.goto(f"{web_server.url}/labs/999999/")
    expect(page.get_by_role("heading", name="Not found")).to_be_visible()
    screenshot(page, "not-found")
    page.get_by_role("link", name="Back to your home page").click()
    expect(page.get_by_role("heading", name="My labs")).to_be_visible()
