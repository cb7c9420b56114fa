"""An instructor builds a lab template from the simulator's inventory with the picker, publishes
it with a real worker, creates a course and uploads its roster; an admin sets the quota and
sees the usage bars; a student reads the manual. Real Chromium, daphne, Celery, simulator."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from courses import services
from courses.models import Course, CourseQuota, LabTemplate
from tests.browser.conftest import log_in
from tests.factories import DEFAULT_PASSWORD, TERM_END, TERM_START, AdminFactory, InstructorFactory, simulator_endpoint

pytestmark = pytest.mark.browser

LAB_VMS = ["esxi-01", "esxi-02", "esxi-03", "vcsa", "router"]
MANUAL = """# Nested vSphere 8 lab

1. Power on **router** first: it serves DNS and DHCP.
2. Log in to `esxi-01` as root.

| host | address |
|---|---|
| vcsa | 10.0.0.10 |
"""
BAD_ROSTER = b"username,email\nada,ada@example.edu\nbob,not-an-email\nada,\n"
ROSTER = (
    b"username,email,first_name,last_name,password\n"
    b"ada,ada@example.edu,Ada,Lovelace,\n"
    b"grace,grace@example.edu,Grace,Hopper,hopper-pass-2026\n"
    b"linus,linus@example.edu,Linus,Torvalds,\n"
)


def picker_item(page, name: str):
    name_is = page.locator(".item-name", has_text=re.compile(f"^{re.escape(name)}$"))
    return page.locator(".picker-list .picker-item").filter(has=name_is)


def quota_field(page, label: str):
    return page.locator("#quota form").get_by_label(label, exact=False)


def wait_until_final(page) -> str:
    for _ in range(120):  # until live updates exist, the page is reloaded by hand
        state = page.locator("[data-field=state]").inner_text()
        if state in {"Succeeded", "Failed", "Cancelled"}:
            return state
        page.wait_for_timeout(500)
        page.reload()
    return page.locator("[data-field=state]").inner_text()


def log_out(page) -> None:
    page.locator("summary.account").click()
    page.get_by_role("button", name="Log out").click()
    expect(page.get_by_role("heading", name="Log in to Nestlab")).to_be_visible()


def test_instructor_builds_publishes_and_teaches_then_admin_sets_the_quota(
    page, web_server, celery_worker, vcsim, screenshot
):
    simulator_endpoint(vcsim, name="Simulator")
    instructor = InstructorFactory(username="ines", first_name="Ines", last_name="Teach")
    admin = AdminFactory(username="root-admin", first_name="Ada", last_name="Admin")
    base = web_server.url

    # The instructor starts a template.
    log_in(page, base, instructor.username, DEFAULT_PASSWORD)
    expect(page.get_by_role("heading", name="Teaching")).to_be_visible()
    page.get_by_role("button", name="New template").click()
    page.get_by_label("Name").fill("Nested vSphere 8 Lab")
    page.get_by_label("vCenter").select_option(label="Simulator")
    page.get_by_label("Description").fill("Three nested ESXi 8 hosts, a vCenter and a router.")
    page.get_by_label("Lab networks").fill("lab")
    screenshot(page, "01-template-create")
    page.get_by_role("button", name="Create template").click()
    expect(page.get_by_role("heading", name="Nested vSphere 8 Lab", level=1)).to_be_visible()
    expect(page.get_by_text("Not published yet.")).to_be_visible()

    # The picker: the datacenter's VM folder, then into the lab's folder, by the breadcrumbs too.
    expect(picker_item(page, "Nestlab Templates")).to_be_visible()
    screenshot(page, "02-picker-root", full_page=False)
    picker_item(page, "Nestlab Templates").click()
    picker_item(page, "Nested vSphere 8 Lab").click()
    crumbs = page.locator(".picker-crumbs")
    expect(crumbs).to_contain_text("Nestlab Templates")
    expect(crumbs).to_contain_text("Nested vSphere 8 Lab")
    for name in LAB_VMS:
        expect(picker_item(page, name)).to_be_visible()
    crumbs.get_by_role("link", name="Nestlab Templates").click()
    expect(picker_item(page, "Nested vSphere 8 Lab")).to_be_visible()
    crumbs.get_by_role("link", name="DC0 (VMs and templates)").click()
    expect(picker_item(page, "Nestlab Templates")).to_be_visible()

    # Search from the top finds the three hosts wherever they are.
    page.get_by_label("Search VMs by name").fill("esxi")
    page.locator(".picker-search").get_by_role("button", name="Search").click()
    expect(page.locator(".picker-status")).to_contain_text("3 VMs named like “esxi”")
    expect(page.locator(".picker-list .picker-item")).to_have_count(3)
    screenshot(page, "03-picker-search", full_page=False)

    # Pick esxi-01 from the search: role, nested HV and one network row per adapter are filled in.
    picker_item(page, "esxi-01").click()
    form = page.locator("#vm-add-form")
    expect(form).to_be_visible()
    expect(form.get_by_label("Role")).to_have_value("esxi-01")
    expect(form.get_by_label("Needs nested hardware virtualization")).to_be_checked()
    expect(form.locator("select[name=nic_network]")).to_have_count(2)
    form.get_by_label("Boot order").fill("2")
    page.wait_for_timeout(600)  # the smooth scroll to the form
    form.locator("fieldset").last.scroll_into_view_if_needed()
    screenshot(page, "04-picker-form", full_page=False)
    form.get_by_role("button", name="Add to the template").click()
    expect(page.locator(".flash-success")).to_contain_text("esxi-01 is in the template as esxi-01")

    # The rest from the lab's folder; after each add the picker comes back where it was.
    picker_item(page, "Nestlab Templates").click()
    picker_item(page, "Nested vSphere 8 Lab").click()
    for name, boot in [("esxi-02", "2"), ("esxi-03", "2"), ("vcsa", "3"), ("router", "1")]:
        picker_item(page, name).click()
        form = page.locator("#vm-add-form")
        expect(form.get_by_label("Role")).to_have_value(name)
        expect(form.get_by_label("Needs nested hardware virtualization")).to_be_checked(checked=name.startswith("esxi"))
        form.get_by_label("Boot order").fill(boot)
        form.get_by_role("button", name="Add to the template").click()
        expect(page.locator(".flash-success")).to_contain_text(f"{name} is in the template")
    expect(picker_item(page, "esxi-01")).to_be_disabled()  # already in the template
    expect(page.locator(".vm-card")).to_have_count(5)

    # The manual, with its live preview.
    page.get_by_label("Lab manual (Markdown)").fill(MANUAL)
    expect(page.locator(".manual-preview h1")).to_have_text("Nested vSphere 8 lab")
    expect(page.locator(".manual-preview table")).to_be_visible()
    page.get_by_role("button", name="Save details").click()
    expect(page.locator(".flash-success")).to_contain_text("Saved.")
    screenshot(page, "05-template-draft")

    # Publish: the operation runs in the worker against the simulator.
    page.get_by_role("button", name="Publish v1").click()
    expect(page.get_by_role("heading", name="Publish template")).to_be_visible()
    assert wait_until_final(page) == "Succeeded", page.locator("#operation").inner_text()
    expect(page.locator("[data-field=version-state]")).to_have_text("Published")
    screenshot(page, "06-publish-succeeded")
    page.get_by_role("link", name="Back to the template").click()
    expect(page.locator("#versions")).to_contain_text("Published")
    expect(page.get_by_text("Not published yet.")).to_have_count(0)
    expect(page.get_by_text("Unpublished changes.")).to_have_count(0)
    screenshot(page, "07-template-published")

    # A course from the published version.
    page.get_by_role("link", name="Courses", exact=True).click()
    page.get_by_role("button", name="New course").click()
    page.get_by_label("Title").fill("vSphere 8: install, configure, manage")
    page.get_by_label("Code").fill("vsp8-fall26")
    page.get_by_label("Starts on").fill(TERM_START.isoformat())
    page.get_by_label("Ends on").fill(TERM_END.isoformat())
    page.get_by_label("Lab template").select_option(label="Nested vSphere 8 Lab v1")
    screenshot(page, "08-course-create")
    page.get_by_role("button", name="Create course").click()
    expect(page.get_by_role("heading", name="vSphere 8: install, configure, manage")).to_be_visible()
    page.get_by_role("button", name="Open the course").click()
    expect(page.locator(".flash-success")).to_contain_text("The course is open now.")

    # Its dates read in the one format of its date pickers: the browser's (en-US here), not the
    # page's own (issue 10: "Fri 4 Dec 2026" beside a picker showing 12/04/2026).
    assert page.evaluate("navigator.language") == "en-US"
    dates = page.locator("hgroup time[data-date]")
    expect(dates).to_have_text([f"{TERM_START:%m/%d/%Y}", f"{TERM_END:%m/%d/%Y}"])
    page.get_by_text("Course details").click()
    expect(page.get_by_label("Starts on")).to_have_value(TERM_START.isoformat())
    screenshot(page, "08b-course-dates-like-the-pickers")

    # A roster with mistakes is refused whole, line by line; the fixed one is applied.
    page.get_by_text("Upload a roster (CSV)").click()
    page.get_by_label("Roster file (CSV)").set_input_files(
        files=[{"name": "roster.csv", "mimeType": "text/csv", "buffer": BAD_ROSTER}]
    )
    page.get_by_role("button", name="Upload", exact=True).click()
    errors = page.locator("#roster-errors")
    expect(errors).to_contain_text("nothing changed")
    expect(errors).to_contain_text("line 3: 'not-an-email' is not an email address")
    expect(errors).to_contain_text("line 4: 'ada' is also on line 2")
    screenshot(page, "09-roster-errors")
    page.get_by_label("Roster file (CSV)").set_input_files(
        files=[{"name": "roster.csv", "mimeType": "text/csv", "buffer": ROSTER}]
    )
    page.get_by_role("button", name="Upload", exact=True).click()
    expect(page.locator("#roster-result")).to_contain_text("3 enrolled")
    passwords = page.locator("#created-accounts")
    expect(passwords).to_contain_text("ada")
    expect(passwords).to_contain_text("linus")
    expect(passwords).not_to_contain_text("grace")  # her password came from the file
    screenshot(page, "10-roster-uploaded")
    log_out(page)

    # The admin sets the course's quota and sees the bars.
    course = Course.objects.get(code="vsp8-fall26")
    log_in(page, base, admin.username, DEFAULT_PASSWORD)
    expect(page.get_by_role("heading", name="Administration")).to_be_visible()
    screenshot(page, "11-admin-home")
    page.get_by_role("link", name="vSphere 8: install, configure, manage").click()
    page.get_by_role("button", name="Set limits").click()
    expect(page.get_by_text("Blank means no limit; 0 means none allowed.")).to_be_visible()
    quota_field(page, "Labs running at once").fill("20")
    quota_field(page, "Labs per student").fill("2")
    quota_field(page, "Snapshots per lab").fill("0")
    quota_field(page, "Virtual CPUs (total)").fill("400")
    quota_field(page, "Memory, GB (total)").fill("2048")
    quota_field(page, "Lab hours per student").fill("40")
    page.get_by_role("button", name="Save limits").click()
    expect(page.locator(".flash-success")).to_contain_text("The quota is saved.")
    bars = page.locator("#quota .usage")
    expect(bars).to_have_count(8)  # the seven limits of labs and hours, and the warm pool's own line
    expect(page.locator('[data-bar="pool_labs"]')).to_contain_text("no limit")
    expect(page.locator('[data-bar="running_labs"]')).to_contain_text("0 of 20")
    expect(page.locator('[data-bar="snapshots_per_lab"]')).to_contain_text("none allowed")
    expect(page.locator('[data-bar="storage_gb_total"]')).to_contain_text("no limit")
    page.locator("#quota").scroll_into_view_if_needed()
    screenshot(page, "12-admin-quota")
    assert CourseQuota.objects.get(course=course).running_labs == 20
    log_out(page)

    # A student from the roster reads the manual on their course page.
    log_in(page, base, "grace", "hopper-pass-2026")
    expect(page.get_by_role("heading", name="My labs")).to_be_visible()
    screenshot(page, "13-student-home")
    page.get_by_role("link", name="Lab manual").click()
    expect(page.locator("#manual h1")).to_have_text("Nested vSphere 8 lab")
    expect(page.get_by_role("heading", name="Your usage")).to_be_visible()
    expect(page.get_by_text("Roster")).to_have_count(0)
    screenshot(page, "14-student-course")

    assert LabTemplate.objects.get().vms.count() == 5


def test_the_course_and_template_pages_fit_a_phone(browser, web_server, vcsim, screenshot):
    instructor = InstructorFactory()
    endpoint = simulator_endpoint(vcsim, name="Simulator")
    template = services.template_create(actor=instructor, endpoint=endpoint, name="Nested vSphere 8 Lab")
    services.template_vm_add(
        template=template, actor=instructor, role="esxi-01", source_moref="vm-72", source_name="esxi-01",
        nic_networks=["lab"], nested_hv_required=True,
    )  # fmt: skip
    course = services.course_create(
        actor=instructor,
        title="vSphere 8: install, configure, manage",
        code="vsp8-phone",
        starts_on=TERM_START,
        ends_on=TERM_END,
    )
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True)
    page = context.new_page()
    log_in(page, web_server.url, instructor.username, DEFAULT_PASSWORD)
    for name, path in [
        ("instructor-home", "/"),
        ("template", f"/templates/{template.pk}/"),
        ("course", f"/courses/{course.pk}/"),
    ]:
        page.goto(f"{web_server.url}{path}")
        page.wait_for_load_state("networkidle")
        assert page.evaluate("document.documentElement.scrollWidth") <= 390, name
        screenshot(page, f"phone-{name}")
    context.close()


def test_the_picker_says_in_words_what_went_wrong_with_vcenter(page, web_server, vcsim, screenshot):
    instructor = InstructorFactory()
    endpoint = simulator_endpoint(vcsim, name="Wrong password", password="wrong")
    template = services.template_create(actor=instructor, endpoint=endpoint, name="Broken picker")
    log_in(page, web_server.url, instructor.username, DEFAULT_PASSWORD)
    page.goto(f"{web_server.url}/templates/{template.pk}/")
    status = page.locator(".picker-status")
    expect(status).to_contain_text("rejected the user name or password")
    expect(status).to_have_class(re.compile("error-text"))
    expect(page.locator(".picker-list .picker-item")).to_have_count(0)
    screenshot(page, "picker-error", full_page=False)
