"""Lab guides in Chromium (issue 15): a demo student reads their guide beside the lab, marks the
first step done, moves on to "Sign your router", types the command into the router's in-page
console (the simulator's guest shell runs it on Enter), clicks Check my work and sees the step
pass live; the instructor's progress grid, open in a second browser context, follows without
reloading. A real Celery worker, daphne and a simulator of the test's own. The screenshots (the
lab page at 1280 px and on a phone, the console with the guide, the grid, the template's guide
editor) are kept in test-artifacts/screenshots/ and /tmp/guide-shots/."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from playwright.sync_api import expect

from labs import services as lab_services
from labs.models import Lab, StepResult
from portal import demo, simulator
from tests.browser.conftest import content_security_policy_violations, log_in

pytestmark = pytest.mark.browser

SLOW = 90_000
SHOTS = Path("/tmp/guide-shots")
# Set on window after a page loads: still there later means the page did not reload.
MARK = "() => { window.__notReloaded = true; }"
NOT_RELOADED = "() => window.__notReloaded === true"


@pytest.fixture
def sim():
    server = simulator.start(args=["-demo"])
    yield server
    server.stop()


@pytest.fixture
def demo_course(sim, celery_worker):
    return demo.seed_demo(vcenter_url=sim.url, vcenter_user=sim.username, vcenter_password=sim.password)


def ready_lab(course, username: str) -> Lab:
    student = get_user_model().objects.get(username=username)
    operation = lab_services.lab_start(course=course, student=student, actor=student)
    deadline = time.monotonic() + SLOW / 1000
    while time.monotonic() < deadline:
        lab = Lab.objects.get(pk=operation.lab_id)
        if lab.state == Lab.State.READY and not lab.operations.filter(state__in=["queued", "running"]).exists():
            return lab
        assert lab.state != Lab.State.ERROR, lab.error
        time.sleep(0.5)
    raise AssertionError("the demo lab was not ready in time")


def test_a_student_checks_their_work_in_the_console_and_the_grid_follows_live(
    demo_course, sim, browser, web_server, celery_worker, screenshot
):
    base = web_server.url
    SHOTS.mkdir(parents=True, exist_ok=True)

    def shot(page, name: str, *, full_page: bool = True) -> None:
        shutil.copy(screenshot(page, name, full_page=full_page), SHOTS / f"{name}.png")

    lab = ready_lab(demo_course, "student1")
    code = lab.variables["lab_code"]
    student_context = browser.new_context(viewport={"width": 1280, "height": 900})
    teacher_context = browser.new_context(viewport={"width": 1280, "height": 900})
    page, grid = student_context.new_page(), teacher_context.new_page()
    # No inline script or style the production header would block, on either side.
    refused = [content_security_policy_violations(page), content_security_policy_violations(grid)]
    for each in (page, grid):
        each.set_default_timeout(20_000)
    try:
        log_in(grid, base, "instructor", "nestlab-teach")
        grid.goto(f"{base}/labs/courses/{demo_course.pk}/progress/")
        expect(grid.locator("[data-live-status]")).to_have_text("Live")
        grid.evaluate(MARK)
        row = grid.locator("tr[data-student=student1]")
        expect(row.locator("td.cell").nth(1)).to_have_attribute("data-cell", "untried")

        # The guide beside the lab: the first step has no checks, the student marks it done.
        log_in(page, base, "student1", "nestlab-learn")
        page.goto(f"{base}/labs/{lab.pk}/")
        panel = page.locator("#guide")
        expect(panel.get_by_role("heading", name="Lab guide")).to_be_visible()
        expect(panel.get_by_role("heading", name="Meet your lab")).to_be_visible()
        expect(panel.locator("[data-guide-score]")).to_have_text("0 of 25 points")
        panel.get_by_role("button", name="Mark as done").click()
        expect(panel.locator(".step-verdict")).to_have_text("✓ Done")
        expect(row.locator("td.cell").nth(0)).to_have_attribute("data-cell", "done")

        # Next: the student's place is kept (the console page opens the guide there).
        panel.get_by_role("button", name="Next →").click()
        expect(panel.get_by_role("heading", name="Sign your router")).to_be_visible()
        assert Lab.objects.get(pk=lab.pk).guide_position == 2
        expect(panel.locator(".guide-check")).to_contain_text("Not checked yet.")
        shown = panel.inner_html()  # (the demo's manual lists the gateway's address: the guide must not)
        assert "192.168.10.1" not in shown and "$NESTLAB_LAB_CODE" not in shown  # no answer, no command

        # A check before the work is done fails in words, live.
        panel.get_by_role("button", name="Check my work").click()
        expect(panel.locator(".guide-check[data-result=failed]")).to_be_visible(timeout=SLOW)
        expect(panel.locator(".step-verdict")).to_contain_text("Not done yet")
        expect(row.locator("td.cell").nth(1)).to_have_attribute("data-cell", "failed")
        panel.get_by_text("What the check printed").click()
        shot(page, "01-lab-page-with-guide")

        # The router's console, with the guide beside it, open at the same step.
        page.get_by_role("button", name="Console of router").click()
        expect(page.locator("[data-console-status]")).to_have_text("Connected", timeout=20_000)
        guide = page.locator("#guide")
        expect(guide.get_by_role("heading", name="Sign your router")).to_be_visible()
        page.wait_for_function("document.querySelector('[data-console-screen] canvas').width === 720")
        page.locator("[data-console-screen] canvas").click()
        page.keyboard.type(f"echo {code} > /lab-code")
        page.keyboard.press("Enter")
        page.wait_for_timeout(1000)  # the simulated shell runs the line on Enter
        page.evaluate(MARK)
        guide.get_by_role("button", name="Check my work").click()
        expect(guide.locator(".step-verdict")).to_have_text("✓ Done: 10 points earned", timeout=SLOW)
        expect(guide.locator("[data-guide-score]")).to_have_text("10 of 25 points")
        expect(guide.locator(".guide-check[data-result=passed]")).to_be_visible()
        assert page.evaluate(NOT_RELOADED), "the console page reloaded"
        shot(page, "02-console-with-guide", full_page=False)
        assert StepResult.objects.get(lab=lab, step_key=guide_step_key(lab, "Sign your router")).completed_at

        # The grid followed both steps without reloading.
        expect(row.locator("td.cell").nth(1)).to_have_attribute("data-cell", "done", timeout=SLOW)
        expect(row.locator("[data-score]")).to_have_text("10 / 25")
        assert grid.evaluate(NOT_RELOADED), "the grid reloaded"
        shot(grid, "03-progress-grid")

        # The same lab page on a phone: the guide stacks under the lab.
        page.goto(f"{base}/labs/{lab.pk}/")
        page.set_viewport_size({"width": 390, "height": 844})
        expect(page.locator("#guide").get_by_role("heading", name="Sign your router")).to_be_visible()
        shot(page, "04-lab-page-narrow")

        # The template's guide editor, as its owner sees it.
        grid.goto(f"{base}/templates/{demo_course.template_version.template_id}/#guide")
        editor = grid.locator("#guide")
        editor.locator("details.guide-step-card summary", has_text="Sign your router").click()
        editor.get_by_text("Add a check to step 2").click()
        shot(grid, "05-template-page")
        editor.screenshot(path=str(SHOTS / "06-template-guide-editor.png"))
        assert refused == [[], []], f"The content security policy refused: {refused}"
    finally:
        student_context.close()
        teacher_context.close()


def guide_step_key(lab: Lab, title: str) -> str:
    return next(step["key"] for step in lab.template_version.guide["steps"] if step["title"] == title)
