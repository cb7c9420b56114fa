"""The in-page console in Chromium: noVNC on the console page, through the portal's relay, to a
real VM's WebMKS console in the simulator. Pixels are read from noVNC's canvas; what reached
the VM is read from the simulator's screen state."""

from __future__ import annotations

import time

import pytest
from playwright.sync_api import expect

from labs.models import ConsoleSession, LabVM
from tests.browser.conftest import log_in
from tests.factories import DEFAULT_PASSWORD

pytestmark = pytest.mark.browser

BACKGROUND = [0x1B, 0x2A, 0x3A]
# Pixels of the console's canvas (720x400 inside, whatever its size on the page): how many in a
# band of rows differ from the background, i.e. carry text.
INK_IN_ROWS = """([top, bottom]) => {
  const canvas = document.querySelector('[data-console-screen] canvas');
  const data = canvas.getContext('2d').getImageData(0, top, canvas.width, bottom - top).data;
  let ink = 0;
  for (let i = 0; i < data.length; i += 4) {
    if (data[i] !== 0x1b || data[i + 1] !== 0x2a || data[i + 2] !== 0x3a) ink += 1;
  }
  return ink;
}"""
PIXEL = """([x, y]) => Array.from(document.querySelector('[data-console-screen] canvas')
  .getContext('2d').getImageData(x, y, 1, 1).data.slice(0, 3))"""


def router(lab):
    return lab.vms.get(role="router")


def screen_state(vcsim, lab) -> dict:
    return vcsim.consoles()["screens"].get(router(lab).moref, {})


def wait_until(condition, timeout=10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return False


def test_a_student_uses_the_console_and_others_cannot(browser, page, web_server, vcsim, console_lab, screenshot):
    lab = console_lab
    base = web_server.url
    log_in(page, base, lab.student.username, DEFAULT_PASSWORD)
    page.goto(f"{base}/labs/{lab.pk}/")
    clicked = time.monotonic()
    page.get_by_role("button", name="Console of router").click()
    expect(page.locator("[data-console-status]")).to_have_text("Connected", timeout=15_000)
    page.wait_for_function("document.querySelector('[data-console-screen] canvas').width === 720")
    first_frame = time.monotonic() - clicked
    assert page.evaluate(PIXEL, [2, 398]) == BACKGROUND
    assert page.evaluate(INK_IN_ROWS, [0, 16]) > 50, "the VM's name is drawn on the first line"
    screenshot(page, "01-student-console")
    assert first_frame < 15

    # Keys typed in the page reach the VM and come back as pixels.
    text_rows = [80, 96]
    before = page.evaluate(INK_IN_ROWS, text_rows)
    page.locator("[data-console-screen] canvas").click()
    page.keyboard.type("hello from chromium")
    assert wait_until(lambda: screen_state(vcsim, lab).get("text") == "hello from chromium")
    page.wait_for_function(f"({INK_IN_ROWS})([80, 96]) > {before + 100}")
    screenshot(page, "02-typed")

    # Type text: 1 KB of the clipboard as keystrokes, with progress.
    page.keyboard.press("Enter")
    pasted = ("abcdefghijklmnopqrstuvwxyz0123456789 " * 30)[:1024]
    page.get_by_role("button", name="Type text").click()
    page.locator("[data-console-type-text]").fill(pasted)
    page.get_by_role("button", name="Type it").click()
    expect(page.locator("[data-console]")).to_have_attribute("data-typed", "1024", timeout=20_000)
    assert wait_until(lambda: screen_state(vcsim, lab).get("text", "").endswith(pasted), timeout=20)

    # Ctrl-Alt-Del reaches the VM.
    page.get_by_role("button", name="Ctrl-Alt-Del").click()
    assert wait_until(lambda: screen_state(vcsim, lab).get("ctrlAltDel") == 1)
    screenshot(page, "03-after-paste-and-ctrl-alt-del")

    # A classmate gets no console page; an anonymous client not even the page.
    classmate = lab.course.enrollments.exclude(student=lab.student).first().student
    other = browser.new_context()
    try:
        stranger = other.new_page()
        log_in(stranger, base, classmate.username, DEFAULT_PASSWORD)
        response = stranger.goto(f"{base}/labs/{lab.pk}/vms/{router(lab).pk}/console/")
        assert response.status == 404
        anonymous = browser.new_context().new_page()
        anonymous.goto(f"{base}/labs/{lab.pk}/vms/{router(lab).pk}/console/")
        assert "/login/" in anonymous.url
        anonymous.context.close()
    finally:
        other.close()

    # Leaving the page ends the session, with its record.
    page.goto(f"{base}/labs/{lab.pk}/")
    assert wait_until(lambda: not ConsoleSession.objects.filter(user=lab.student).exclude(state="closed").exists())
    record = ConsoleSession.objects.filter(user=lab.student).latest("pk")
    assert record.bytes_to_vm > 1024 and record.bytes_from_vm > 720 * 400 * 4


def test_an_instructor_observes_read_only_then_takes_control(browser, page, web_server, vcsim, console_lab, screenshot):
    lab = console_lab
    base = web_server.url
    instructor = lab.course.instructors.first()
    student_context = browser.new_context()
    student_page = student_context.new_page()
    log_in(student_page, base, lab.student.username, DEFAULT_PASSWORD)
    student_page.goto(f"{base}/labs/{lab.pk}/vms/{router(lab).pk}/console/")
    expect(student_page.locator("[data-console-status]")).to_have_text("Connected", timeout=15_000)
    presence = student_page.locator(f"[data-lab-consoles='{lab.pk}']")
    expect(presence).to_be_hidden()
    log_in(page, base, instructor.username, DEFAULT_PASSWORD)
    page.goto(f"{base}/labs/{lab.pk}/")
    page.get_by_role("button", name="Observe the console of router").click()
    expect(page.locator("[data-console-status]")).to_have_text("Connected, read-only", timeout=15_000)
    page.wait_for_function("document.querySelector('[data-console-screen] canvas').width === 720")
    assert page.evaluate(INK_IN_ROWS, [0, 16]) > 50
    page.locator("[data-console-screen] canvas").click()
    page.keyboard.type("observer")
    time.sleep(1)
    assert screen_state(vcsim, lab).get("keyEvents", 0) == 0, "an observer's keys never reach the VM"
    screenshot(page, "01-observing")

    page.get_by_role("button", name="Take control").click()
    expect(page.locator("[data-console-status]")).to_have_text("Connected", timeout=15_000)
    page.wait_for_function("document.querySelector('[data-console-screen] canvas').width === 720")
    page.locator("[data-console-screen] canvas").click()
    page.keyboard.type("teacher")
    assert wait_until(lambda: screen_state(vcsim, lab).get("text") == "teacher")
    modes = list(ConsoleSession.objects.filter(user=instructor).order_by("pk").values_list("mode", flat=True))
    assert modes == ["observe", "control"]
    screenshot(page, "02-in-control")
    # The student sees, on their console page, that their instructor is on it and can type.
    name = instructor.get_full_name()
    expect(presence).to_have_text(f"On this lab's consoles now: {name} (router, can type).", timeout=10_000)
    toast = f"{name} is connected to the console of router and can type in it."
    expect(student_page.get_by_text(toast)).to_be_visible()
    expect(student_page.locator("[data-console-status]")).to_have_text("Connected")  # theirs stays open
    screenshot(student_page, "03-student-sees-the-instructor")
    page.goto(f"{base}/labs/{lab.pk}/")  # the instructor leaves: the line goes
    expect(presence).to_be_hidden(timeout=10_000)
    student_context.close()


def test_the_class_consoles_show_every_labs_vm_live_and_read_only(page, web_server, vcsim, console_lab, screenshot):
    lab = console_lab
    base = web_server.url
    instructor = lab.course.instructors.first()
    log_in(page, base, instructor.username, DEFAULT_PASSWORD)
    page.goto(f"{base}/labs/courses/{lab.course.pk}/")
    page.get_by_role("button", name="Consoles", exact=True).click()
    page.get_by_label("VM").select_option("router")
    page.get_by_role("button", name="Show").click()
    tile = page.locator("[data-tile][data-connected]")
    expect(tile).to_have_count(1, timeout=15_000)
    page.wait_for_function("document.querySelector('[data-tile-screen] canvas')?.width === 720")
    ink = page.evaluate(INK_IN_ROWS.replace("[data-console-screen]", "[data-tile-screen]"), [0, 16])
    assert ink > 50, "the VM's name is on the tile"
    assert ConsoleSession.objects.filter(user=instructor, mode="observe", state="open").count() == 1
    expect(page.locator("h1 + p")).to_contain_text("every lab's router")
    page.wait_for_timeout(300)  # noVNC paints on the next animation frame
    screenshot(page, "01-class-consoles")


def test_a_vm_that_is_off_shows_power_on_and_its_console_opens_once_it_runs(
    page, web_server, vcsim, console_lab, screenshot
):
    lab = console_lab
    base = web_server.url
    vm = router(lab)
    LabVM.objects.filter(pk=vm.pk).update(power_state="poweredOff")
    log_in(page, base, lab.student.username, DEFAULT_PASSWORD)
    page.goto(f"{base}/labs/{lab.pk}/vms/{vm.pk}/console/")
    expect(page.get_by_text("router is powered off.")).to_be_visible()
    expect(page.get_by_role("button", name="Power on router")).to_be_visible()
    screenshot(page, "01-powered-off")
    # It comes on (as the power operation ends): the page opens the console by itself.
    LabVM.objects.filter(pk=vm.pk).update(power_state="poweredOn")
    expect(page.locator("[data-console-status]")).to_have_text("Connected", timeout=15_000)
    expect(page.get_by_text("router is powered off.")).to_be_hidden()
