"""The path a new instructor walked in issue 10, as they would now: a template whose source VM
runs and lacks nested virtualization is prepared from its page (after a confirmation), published,
each operation page turning done by itself; then the class is provisioned after a confirmation
naming who gets a lab. Real Chromium, daphne, a Celery worker and a simulator of its own."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from courses import services as course_services
from courses.models import Course
from labs.endpoints import endpoint_client
from labs.models import Lab
from portal import simulator
from tests.browser.conftest import log_in
from tests.factories import (
    DEFAULT_PASSWORD,
    TERM_END,
    TERM_START,
    InstructorFactory,
    StudentFactory,
    simulator_endpoint,
)

pytestmark = pytest.mark.browser

RUNNING_VM = "/DC0/vm/DC0_H0_VM0"  # powered on, nested virtualization off
ROUTER = "/DC0/vm/Nestlab Templates/Nested vSphere 8 Lab/router"


@pytest.fixture
def sim():
    """Powers a VM off and reconfigures it: a simulator of this test's own."""
    server = simulator.start(args=["-demo"])
    yield server
    server.stop()


def _template(sim, instructor):
    endpoint = simulator_endpoint(sim, name="Simulator")
    client = endpoint_client(endpoint)
    template = course_services.template_create(actor=instructor, endpoint=endpoint, name="ESXi upgrade lab")
    for role, path, nested in (("esxi", RUNNING_VM, True), ("router", ROUTER, False)):
        item = client.get(path)
        course_services.template_vm_add(
            template=template,
            actor=instructor,
            role=role,
            source_moref=item.moref,
            source_name=item.name,
            source_path=item.path,
            nested_hv_required=nested,
            nic_networks=["lab"],
        )
    return template, client


def test_a_new_instructor_prepares_publishes_and_provisions_with_confirmations(
    page, web_server, celery_worker, sim, screenshot
):
    instructor = InstructorFactory(username="newbie", first_name="Nia", last_name="New")
    template, client = _template(sim, instructor)
    base = web_server.url
    log_in(page, base, instructor.username, DEFAULT_PASSWORD)

    # The template page offers to prepare the VMs; the confirmation says exactly what will change.
    page.goto(f"{base}/templates/{template.pk}/")
    expect(page.get_by_text("Not published yet.")).to_be_visible()
    page.get_by_role("button", name="Prepare the VMs…").click()
    plan = page.locator("[data-prepare-plan]")
    expect(plan).to_contain_text("power off esxi (DC0_H0_VM0), which is powered on")
    expect(plan).to_contain_text("turn on nested hardware virtualization on esxi (DC0_H0_VM0)")
    expect(plan).to_contain_text("ready, nothing to change")
    screenshot(page, "01-prepare-confirm")
    page.get_by_role("button", name="Make 2 changes").click()

    # The operation page turns done without anyone reloading it.
    expect(page.get_by_role("heading", name="Prepare template VMs")).to_be_visible()
    expect(page.locator("[data-field=state]")).to_have_text("Succeeded", timeout=30_000)
    expect(page.locator("[data-result-changes]")).to_contain_text("Powered off esxi (DC0_H0_VM0).")
    screenshot(page, "02-prepare-done")
    info = client.vm_info(client.get(RUNNING_VM).moref)
    assert (info.power_state, info.nested_hv) == ("poweredOff", True)

    # Publish: v1 (no number was used up), live to the end; then it is not offered twice.
    page.get_by_role("link", name="Back to the template").click()
    page.get_by_role("button", name="Publish v1").click()
    expect(page.get_by_role("heading", name="Publish template")).to_be_visible()
    expect(page.locator("[data-field=state]")).to_have_text("Succeeded", timeout=60_000)
    expect(page.locator("[data-field=version-state]")).to_have_text("Published")
    screenshot(page, "03-publish-done")
    page.get_by_role("link", name="Back to the template").click()
    expect(page.get_by_role("button", name="Published as v1")).to_be_disabled()
    screenshot(page, "04-template-published")

    # A course on it with two students; provisioning the class asks first, naming them.
    version = template.versions.get()
    course = course_services.course_create(
        actor=instructor,
        title="ESXi upgrades",
        code="esxi-up",
        starts_on=TERM_START,
        ends_on=TERM_END,
        template_version=version,
    )
    course_services.course_update(course=course, actor=instructor, state=Course.State.OPEN)
    students = [StudentFactory(username=name) for name in ("ana", "ben")]
    for student in students:
        course_services.enrollment_add(course=course, actor=instructor, student=student)
    page.goto(f"{base}/labs/courses/{course.pk}/")
    page.get_by_role("button", name="Provision the class…").click()
    expect(page.get_by_role("heading", name="Start a lab for 2 students?")).to_be_visible()
    expect(page.locator("[data-provision-students]")).to_contain_text("ana")
    expect(page.locator("[data-provision-students]")).to_contain_text("ben")
    assert not Lab.objects.exists(), "nothing starts before the confirmation"
    screenshot(page, "05-provision-confirm")
    page.get_by_role("button", name="Start 2 labs").click()
    expect(page.locator(".flash-success")).to_contain_text("Started 2 labs")
    screenshot(page, "06-class-provisioning")
    assert Lab.objects.filter(course=course).count() == 2
