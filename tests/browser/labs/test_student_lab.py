"""A demo student starts their lab, snapshots it, breaks a VM, reverts, and sees every VM on
again; the instructor watches the class table. Real Chromium, daphne, a Celery worker and a
simulator of this test's own (lab names derive from the demo course and student)."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse
from playwright.sync_api import expect

from courses.models import VCenterEndpoint
from labs import services as lab_services
from labs.models import Lab
from portal import demo, simulator
from tests.browser.conftest import log_in

pytestmark = pytest.mark.browser

FINAL = {"ready", "error", "deleted"}  # the lab's data-state (its words depend on its VMs' power)


@pytest.fixture
def demo_course(transactional_db):
    """The demo class on a simulator of its own, seeded before any worker runs (the seed
    publishes in this process and nothing else may claim that operation)."""
    server = simulator.start(args=["-demo"])
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(lab_services.dispatch, "send_operation", lambda *args, **kwargs: None)
        course = demo.seed_demo(vcenter_url=server.url, vcenter_user=server.username, vcenter_password=server.password)
    course.simulator = server
    yield course
    server.stop()


def wait_idle(page, timeout_s: int = 90) -> str:
    """Until the lab is neither building nor busy, as the live layer shows it (no reloading)."""
    page.wait_for_function(
        """(final) => {
          const state = document.querySelector(".lab-head").getAttribute("data-state");
          return final.includes(state) && !document.querySelector("[data-operation-for-lab]:not([hidden])");
        }""",
        arg=sorted(FINAL),
        timeout=timeout_s * 1000,
    )
    return page.locator(".lab-head").get_attribute("data-state")


def power_of(page, role: str):
    return page.locator("tr[data-vm-id]", has_text=role).locator("[data-field=power_state]")


def test_student_snapshots_breaks_and_reverts_their_lab(
    demo_course, browser, page, web_server, celery_worker, screenshot
):
    base = web_server.url
    log_in(page, base, "student1", "nestlab-learn")
    card = page.locator("article.course-card", has_text=demo_course.title)
    screenshot(page, "01-home")
    card.get_by_role("button", name="Start my lab").click()

    lab = Lab.objects.get(course=demo_course, student__username="student1")
    expect(page.get_by_role("heading", name=lab.name)).to_be_visible()
    expect(page.locator(".flash-success")).to_contain_text("is being built")
    expect(page.locator("[data-operation-for-lab] progress")).to_be_visible()
    expect(page.get_by_role("button", name="Reset", exact=True)).to_be_disabled()
    screenshot(page, "02-building")

    assert wait_idle(page) == "ready"
    for role in ("router", "esxi-01", "esxi-02", "esxi-03", "vcsa"):
        expect(power_of(page, role)).to_have_text("On")
    expect(page.locator("li.current .snapshot-name")).to_have_text("Baseline")
    screenshot(page, "03-ready")

    page.get_by_label("Name").fill("cluster built")
    page.get_by_label("Description").fill("three hosts in a cluster")
    page.get_by_role("button", name="Take snapshot").click()
    expect(page.locator(".flash-success")).to_contain_text("Taking snapshot 'cluster built'")
    screenshot(page, "04-snapshotting")
    assert wait_idle(page) == "ready"
    expect(page.locator("li.current .snapshot-name")).to_have_text("cluster built")
    screenshot(page, "05-snapshot-taken")

    page.get_by_role("button", name="Power off esxi-02").click()
    expect(page.locator(".flash-success")).to_contain_text("Shutting down esxi-02.")
    assert wait_idle(page) == "ready"
    expect(power_of(page, "esxi-02")).to_have_text("Off")
    expect(page.get_by_role("button", name="Power on esxi-02")).to_be_visible()
    screenshot(page, "06-esxi-02-off")

    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Revert to cluster built").click()
    expect(page.locator(".flash-success")).to_contain_text("Reverting every VM")
    assert wait_idle(page) == "ready"
    for role in ("router", "esxi-01", "esxi-02", "esxi-03", "vcsa"):
        expect(power_of(page, role)).to_have_text("On")
    expect(page.locator("#operations tbody tr").first).to_contain_text("Revert to snapshot")
    expect(page.locator("#operations tbody tr").first).to_contain_text("Succeeded")
    screenshot(page, "07-reverted")

    page.set_viewport_size({"width": 390, "height": 844})
    screenshot(page, "08-phone-top", full_page=False)
    page.locator("#snapshots").scroll_into_view_if_needed()
    screenshot(page, "08-phone-snapshots", full_page=False)

    # The instructor's class table.
    page.set_viewport_size({"width": 1280, "height": 800})
    page.context.clear_cookies()
    log_in(page, base, "instructor", "nestlab-teach")
    page.goto(f"{base}/courses/{demo_course.pk}/")
    expect(page.locator("#class-labs")).to_contain_text("1 lab · 1 running")
    screenshot(page, "09-course-page", full_page=False)
    page.get_by_role("button", name="Class labs").click()
    row = page.locator(f"tr[data-lab-id='{lab.pk}']")
    expect(row).to_have_attribute("data-state", "ready")
    expect(row.locator("[data-field=state]")).to_have_text("Running")
    expect(row.locator("[data-field=vms_on]")).to_have_text("5/5")
    expect(page.locator("tr.no-lab")).to_have_count(2)
    screenshot(page, "10-class-table")
    page.set_viewport_size({"width": 390, "height": 844})
    screenshot(page, "11-class-table-phone")

    # A class provisioned at once waits for vCenter capacity, and the table says so.
    page.set_viewport_size({"width": 1280, "height": 800})
    VCenterEndpoint.objects.filter(labs__course=demo_course).update(concurrency_limit=1)
    demo_course.simulator.configure(task_durations={"CloneVM_Task": 2})
    page.get_by_role("button", name="Provision the class…").click()
    expect(page.get_by_role("heading", name="Start a lab for 2 students?")).to_be_visible()
    page.get_by_role("button", name="Start 2 labs").click()
    expect(page.locator(".flash-success")).to_contain_text("Started 2 labs: student2, student3.")
    expect(page.locator(".flash-info")).to_contain_text("Skipped student1: already has a lab.")
    waiting = page.locator(".operation-cell .waiting").first  # live: no reloading
    expect(waiting).to_contain_text("Waiting for vCenter capacity", timeout=30_000)
    # Its place in line, in words: how many clones are ahead, or that it is next (which of the two
    # depends on how far the first build got when the page is read).
    expect(waiting).to_contain_text(re.compile(r"clone\(s\) ahead|next in line"))
    screenshot(page, "12-class-waiting-for-capacity")

    # Reset asks first (issue 10): on a page of its own without JavaScript (Cancel leaves the lab
    # alone), in a dialog with it, which once accepted goes straight on.
    without_script = browser.new_context(viewport={"width": 1280, "height": 800}, java_script_enabled=False)
    plain = without_script.new_page()
    log_in(plain, base, "instructor", "nestlab-teach")
    plain.goto(page.url)
    plain.locator(f"tr[data-lab-id='{lab.pk}']").get_by_role("button", name=f"Reset {lab.name}").click()
    expect(plain.get_by_role("heading", name=f"Reset {lab.name}?")).to_be_visible()
    screenshot(plain, "13-reset-asks-without-javascript")
    plain.get_by_role("button", name="Cancel").click()
    expect(plain.locator(f"tr[data-lab-id='{lab.pk}']")).to_be_visible()
    without_script.close()
    assert not lab.operations.filter(kind="reset").exists()

    page.once("dialog", lambda dialog: dialog.accept())
    row.get_by_role("button", name=f"Reset {lab.name}").click()
    expect(page.locator(".flash-success")).to_contain_text(f"Resetting {lab.name} to how it was handed out.")
    assert page.url.endswith(reverse("labs:class-labs", args=[demo_course.pk]))
    assert lab.operations.filter(kind="reset").exists()
