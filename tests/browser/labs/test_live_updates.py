"""Live status in real Chromium, pushed over Channels: a demo student builds, snapshots, reverts
and clones their lab and watches it happen without reloading; the instructor's class table
follows the same changes in a second browser context; a VM powered off behind the portal's
back (pyVmomi) shows "Off" within seconds; a lost connection says "Reconnecting…" and comes
back. A real Celery worker, the real watcher process, daphne and a simulator of the test's own.

"Without reloading": after each page load (the click that starts an operation posts a form
and lands on the page again) the test sets a marker on ``window`` and counts main-frame
navigations; both must be unchanged when the live changes have arrived. A MutationObserver
installed before any page script records every progress value the panels showed."""

from __future__ import annotations

import pytest
from django.utils import timezone
from playwright.sync_api import expect
from pyVim.connect import Disconnect, SmartConnect
from pyVmomi import vim

from courses import services as course_services
from labs import services as lab_services
from labs.models import Lab, LabSnapshot, LabVM, Operation
from portal import demo, simulator
from tests.browser.conftest import log_in
from tests.factories import DEFAULT_PASSWORD, InstructorFactory, open_course

pytestmark = pytest.mark.browser

ROLES = ("router", "esxi-01", "esxi-02", "esxi-03", "vcsa")
SLOW = 90_000

RECORDER = """
(() => {
  const seen = (window.__seen = {progress: [], kinds: [], disabledAtLoad: null, toasts: []});
  const record = () => {
    document.querySelectorAll("[data-operation-for-lab]:not([hidden])").forEach((panel) => {
      const bar = panel.querySelector("progress");
      if (bar && !seen.progress.includes(Number(bar.value))) seen.progress.push(Number(bar.value));
      const kind = panel.querySelector("[data-field=kind]");
      if (kind && !seen.kinds.includes(kind.textContent.trim())) seen.kinds.push(kind.textContent.trim());
    });
    document.querySelectorAll("#toasts .toast").forEach((toast) => {
      if (!seen.toasts.includes(toast.firstChild.textContent)) seen.toasts.push(toast.firstChild.textContent);
    });
  };
  document.addEventListener("DOMContentLoaded", () => {
    const button = document.querySelector("#lab-actions [data-busy-disable]");
    seen.disabledAtLoad = button ? button.disabled : null;
    record();
    new MutationObserver(record).observe(document.documentElement, {
      subtree: true, childList: true, attributes: true, characterData: true,
    });
  });
})();
"""


class Watched:
    """A page whose reloads are counted: ``settle()`` after a navigation, ``assert_no_reload()`` later."""

    def __init__(self, page):
        self.page = page
        self.navigations = 0
        self.marked_at = 0
        page.add_init_script(RECORDER)
        page.on("framenavigated", lambda frame: self._navigated(frame))

    def _navigated(self, frame) -> None:
        if frame == self.page.main_frame:
            self.navigations += 1

    def settle(self) -> None:
        self.page.wait_for_load_state("domcontentloaded")
        self.page.evaluate("window.__marker = 'still the same page'")
        self.marked_at = self.navigations
        expect(self.page.locator("[data-live-status]").first).to_have_text("Live")

    def assert_no_reload(self) -> None:
        assert self.page.evaluate("window.__marker") == "still the same page", "the page was reloaded"
        assert self.navigations == self.marked_at, "the page navigated"

    def seen(self, what: str):
        return self.page.evaluate(f"window.__seen.{what}")

    def progress_between(self) -> set[int]:
        return {value for value in self.seen("progress") if 0 < value < 100}


@pytest.fixture
def sim():
    server = simulator.start(
        args=["-demo", "-task-duration", "CloneVM_Task=1500ms,CreateSnapshot_Task=1500ms,RevertToSnapshot_Task=1500ms"]
    )
    yield server
    server.stop()


@pytest.fixture
def demo_course(sim, celery_worker):
    return demo.seed_demo(vcenter_url=sim.url, vcenter_user=sim.username, vcenter_password=sim.password)


def wait_for_progress(page, *, above: int, below: int) -> None:
    """Until the operation panel's bar shows a value strictly between the two."""
    page.wait_for_function(
        f"() => {{ const v = document.querySelector('[data-operation-for-lab] progress').value;"
        f" return v > {above} && v < {below}; }}",
        timeout=SLOW,
    )


def power_of(page, role: str):
    return page.locator("tr[data-vm-id]", has_text=role).locator("[data-field=power_state]")


def lab_state(page):
    return page.locator(".lab-head [data-field=state]")


def expect_idle(page, timeout: int = SLOW) -> None:
    """The lab is back to Ready, no operation panel shows and the buttons are back."""
    expect(page.locator(".lab-head")).to_have_attribute("data-state", "ready", timeout=timeout)
    expect(page.locator("[data-operation-for-lab]")).to_be_hidden(timeout=timeout)
    expect(page.get_by_role("button", name="Reset", exact=True)).to_be_enabled()


def power_off_in_vcenter(sim, moref: str) -> None:
    si = SmartConnect(host=sim.host, port=sim.port, protocol="http", user=sim.username, pwd=sim.password)
    try:
        vim.VirtualMachine(moref, si._stub).PowerOffVM_Task()
    finally:
        Disconnect(si)


def test_a_student_and_the_instructor_watch_the_lab_change_live(
    demo_course, sim, browser, web_server, celery_worker, watcher_process, screenshot
):
    base = web_server.url
    student_context = browser.new_context(viewport={"width": 1280, "height": 900})
    teacher_context = browser.new_context(viewport={"width": 1280, "height": 900})
    student = Watched(student_context.new_page())
    teacher = Watched(teacher_context.new_page())
    page, table = student.page, teacher.page
    for each in (page, table):
        each.set_default_timeout(15_000)
    try:
        # The student starts their lab and watches it being built, without reloading.
        log_in(page, base, "student1", "nestlab-learn")
        page.locator("article.course-card", has_text=demo_course.title).get_by_role(
            "button", name="Start my lab"
        ).click()
        lab = Lab.objects.get(course=demo_course, student__username="student1")
        expect(page.get_by_role("heading", name=lab.name)).to_be_visible()
        student.settle()
        assert student.seen("disabledAtLoad") is True, "the server renders the buttons disabled while it builds"
        expect(page.locator("[data-operation-for-lab] [data-field=kind]")).to_have_text("Provision lab")
        wait_for_progress(page, above=10, below=90)
        screenshot(page, "01-student-building")
        expect_idle(page)
        for role in ROLES:
            expect(power_of(page, role)).to_have_text("On")
        expect(page.locator("tr[data-vm-id] [data-field=overall_status]").first).to_have_text("OK")
        expect(page.locator("li.current .snapshot-name")).to_have_text("Baseline")
        student.assert_no_reload()
        assert len(student.progress_between()) >= 2, student.seen("progress")
        screenshot(page, "02-student-ready")

        # The instructor opens the class table and ticks student1's lab.
        log_in(table, base, "instructor", "nestlab-teach")
        table.goto(f"{base}/labs/courses/{demo_course.pk}/")
        teacher.settle()
        row = table.locator(f"tr[data-lab-id='{lab.pk}']")
        expect(row.locator("[data-field=vms_on]")).to_have_text("5/5")
        row.get_by_role("checkbox").check()

        # Snapshot: the progress moves, the tree and the history refresh, both pages follow.
        page.get_by_label("Name").fill("cluster built")
        page.get_by_label("Description").fill("three hosts in a cluster")
        page.get_by_role("button", name="Take snapshot").click()
        expect(page.locator(".flash-success")).to_contain_text("Taking snapshot 'cluster built'")
        student.settle()
        assert student.seen("disabledAtLoad") is True
        expect(row.locator("[data-operation-for-lab]")).to_be_visible()
        expect(row.locator("[data-field=kind]")).to_have_text("Take snapshot")
        expect(row.get_by_role("button", name=f"Reset {lab.name}")).to_be_disabled()
        wait_for_progress(page, above=0, below=100)
        screenshot(page, "03-student-snapshotting")
        screenshot(table, "04-teacher-sees-the-snapshot")
        expect_idle(page)
        expect(page.locator("li.current .snapshot-name")).to_have_text("cluster built")
        expect(page.locator("[data-snapshots-taken]")).to_have_text("1")
        history = page.locator("#operations tbody tr").first
        expect(history).to_contain_text("Take snapshot")
        expect(history).to_contain_text("Succeeded")
        student.assert_no_reload()
        assert len(student.progress_between()) >= 2, student.seen("progress")
        assert "Take snapshot" in student.seen("kinds")
        expect(row.locator("[data-operation-for-lab]")).to_be_hidden()
        expect(row.get_by_role("button", name=f"Reset {lab.name}")).to_be_enabled()
        expect(row).to_have_attribute("data-state", "ready")
        teacher.assert_no_reload()
        assert "Take snapshot" in teacher.seen("kinds")
        screenshot(page, "05-student-snapshot-taken")

        # A VM powered off behind the portal's back shows Off on both pages within seconds.
        router = lab.vms.get(role="router")
        power_off_in_vcenter(sim, router.moref)
        expect(power_of(page, "router")).to_have_text("Off", timeout=5_000)
        expect(page.get_by_role("button", name="Power on router")).to_be_visible()
        expect(row.locator("[data-field=vms_on]")).to_have_text("4/5", timeout=5_000)
        student.assert_no_reload()
        teacher.assert_no_reload()
        screenshot(page, "06-student-router-off-in-vcenter")
        screenshot(table, "07-teacher-4-of-5-on")

        # Revert: every VM back as it was in the snapshot, the router on again.
        page.once("dialog", lambda dialog: dialog.accept())
        page.get_by_role("button", name="Revert to cluster built").click()
        expect(page.locator(".flash-success")).to_contain_text("Reverting every VM")
        student.settle()
        wait_for_progress(page, above=0, below=100)
        expect(page.locator("[data-operation-for-lab] [data-field=kind]")).to_have_text("Revert to snapshot")
        screenshot(page, "08-student-reverting")
        expect_idle(page)
        expect(power_of(page, "router")).to_have_text("On")
        expect(row.locator("[data-field=vms_on]")).to_have_text("5/5")
        expect(page.locator("#operations tbody tr").first).to_contain_text("Revert to snapshot")
        student.assert_no_reload()
        assert len(student.progress_between()) >= 2, student.seen("progress")
        teacher.assert_no_reload()
        assert "Revert to snapshot" in teacher.seen("kinds")
        screenshot(page, "09-student-reverted")

        # A snapshot that fails says why in a toast; the lab stays ready.
        with sim.rules(fail=["CreateSnapshot_Task"]):
            page.get_by_label("Name").fill("doomed")
            page.get_by_role("button", name="Take snapshot").click()
            expect(page.locator(".flash-success")).to_contain_text("Taking snapshot 'doomed'")
            student.settle()
            expect(page.locator("#toasts .toast-error")).to_contain_text("Take snapshot failed.", timeout=SLOW)
        expect_idle(page)
        expect(page.locator("li.current .snapshot-name")).to_have_text("cluster built")
        student.assert_no_reload()
        screenshot(page, "10-student-snapshot-failed-toast", full_page=False)
        page.locator("#toasts .toast-close").first.click()

        # Clone: the source lab is busy while the copy is made, on its page and in the table;
        # the new lab appears in the table (which keeps the ticked box) and both end up ready.
        page.get_by_role("button", name="Clone").click()
        expect(page.locator(".flash-success")).to_contain_text("Copying")
        student.settle()
        clone = Lab.objects.get(course=demo_course, student__username="student1", source_lab=lab)
        expect(page.locator("[data-operation-for-lab] [data-field=busy_reason]")).to_contain_text(
            f"being copied into {clone.name}"
        )
        expect(page.get_by_role("button", name="Reset", exact=True)).to_be_disabled()
        clone_row = table.locator(f"tr[data-lab-id='{clone.pk}']")
        expect(clone_row).to_be_visible()
        expect(row.locator("[data-operation-for-lab]")).to_be_visible()
        expect(row.get_by_role("button", name=f"Reset {lab.name}")).to_be_disabled()
        expect(row.get_by_role("checkbox")).to_be_checked()
        screenshot(page, "11-student-source-busy-while-cloning")
        screenshot(table, "12-teacher-clone-appears")
        expect_idle(page)
        # The clone may still be finishing when the source is free again (CI once saw it building).
        own_clone = page.locator(f"#own-labs [data-lab-id='{clone.pk}']")
        expect(own_clone).to_have_attribute("data-state", "ready", timeout=SLOW)
        expect(clone_row).to_have_attribute("data-state", "ready", timeout=SLOW)
        expect(clone_row.locator("[data-field=vms_on]")).to_have_text("5/5")
        expect(row.get_by_role("button", name=f"Reset {lab.name}")).to_be_enabled()
        expect(row.get_by_role("checkbox")).to_be_checked()
        expect(table.locator("[data-summary=busy]")).to_have_text("0 busy")
        expect(table.locator("[data-summary=running]")).to_have_text("2 running")
        expect(table.locator("[data-summary=labs]")).to_have_text("2 labs")
        student.assert_no_reload()
        teacher.assert_no_reload()
        screenshot(page, "13-student-clone-done")
        screenshot(table, "14-teacher-clone-done")

        # The server goes away: the pages say so and come back by themselves.
        web_server.stop()
        expect(page.locator("[data-live-status]")).to_have_text("Reconnecting…", timeout=10_000)
        screenshot(page, "15-student-reconnecting", full_page=False)
        web_server.start()
        expect(page.locator("[data-live-status]")).to_have_text("Live", timeout=40_000)
        expect(table.locator("[data-live-status]")).to_have_text("Live", timeout=40_000)
        student.assert_no_reload()
        teacher.assert_no_reload()
    finally:
        student_context.close()
        teacher_context.close()


def ready_lab(course) -> Lab:
    """A lab as if built (no vCenter, no worker): VMs on, the baseline taken."""
    student = course.enrollments.get().student
    lab = lab_services.lab_start(course=course, student=student, actor=student).lab
    Operation.objects.filter(lab=lab).update(state=Operation.State.SUCCEEDED, progress=100, step="Done")
    for index, vm in enumerate(lab.vms.all()):
        LabVM.objects.filter(pk=vm.pk).update(
            moref=f"vm-{lab.pk}{index}", power_state="poweredOn", overall_status="green"
        )
    baseline = LabSnapshot.objects.create(lab=lab, name="Baseline", is_baseline=True)
    Lab.objects.filter(pk=lab.pk).update(state=Lab.State.READY, running_since=timezone.now(), current_snapshot=baseline)
    lab.refresh_from_db()
    return lab


def test_cancelling_a_queued_operation_frees_the_lab_on_every_open_page(browser, web_server, screenshot):
    """No worker runs, so the snapshot stays queued until the student cancels it; the student's
    other tab sees it end and the buttons come back without reloading. The instructor, who did
    not start it, gets no Cancel button."""
    course = open_course(students=1)
    lab = ready_lab(course)
    base = web_server.url
    student_context = browser.new_context(viewport={"width": 1280, "height": 900})
    teacher_context = browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        first = Watched(student_context.new_page())
        log_in(first.page, base, lab.student.username, DEFAULT_PASSWORD)
        first.page.goto(f"{base}/labs/{lab.pk}/")
        first.settle()
        first.page.get_by_label("Name").fill("before the exam")
        first.page.get_by_role("button", name="Take snapshot").click()
        expect(first.page.locator(".flash-success")).to_contain_text("Taking snapshot 'before the exam'")
        first.settle()
        panel = first.page.locator("[data-operation-for-lab]")
        expect(panel.locator("[data-field=state]")).to_have_text("Queued")
        expect(panel.locator("[data-field=step]")).to_have_text("Queued: waiting for a free worker.")
        expect(first.page.get_by_role("button", name="Reset", exact=True)).to_be_disabled()

        second = Watched(student_context.new_page())
        second.page.goto(f"{base}/labs/{lab.pk}/")
        second.settle()
        expect(second.page.locator("[data-operation-for-lab] [data-field=kind]")).to_have_text("Take snapshot")
        teacher = Watched(teacher_context.new_page())
        log_in(teacher.page, base, course.instructors.get().username, DEFAULT_PASSWORD)
        teacher.page.goto(f"{base}/labs/{lab.pk}/")
        teacher.settle()
        expect(teacher.page.locator("[data-operation-for-lab]")).to_be_visible()
        expect(teacher.page.locator("[data-cancel-form]")).to_be_hidden()
        expect(second.page.get_by_role("button", name="Cancel")).to_be_visible()
        screenshot(second.page, "01-queued-with-cancel", full_page=False)
        second.page.set_viewport_size({"width": 390, "height": 844})
        screenshot(second.page, "01-queued-with-cancel-phone", full_page=False)
        second.page.set_viewport_size({"width": 1280, "height": 900})
        operation = Operation.objects.get(lab=lab, kind="snapshot")
        detail = Watched(student_context.new_page())
        detail.page.goto(f"{base}/labs/operations/{operation.pk}/")
        detail.settle()
        expect(detail.page.locator("#operation [data-field=state]")).to_have_text("Queued")

        first.page.once("dialog", lambda dialog: dialog.accept())
        first.page.get_by_role("button", name="Cancel").click()
        expect(first.page.locator(".flash-success")).to_contain_text("Cancelled take snapshot: it had not started.")
        first.settle()
        expect(first.page.locator("[data-operation-for-lab]")).to_be_hidden()
        expect(first.page.get_by_role("button", name="Reset", exact=True)).to_be_enabled()

        for other in (second, teacher):
            expect(other.page.locator("#toasts")).to_contain_text("Take snapshot was cancelled.")
            expect(other.page.locator("[data-operation-for-lab]")).to_be_hidden()
            expect(other.page.get_by_role("button", name="Reset", exact=True)).to_be_enabled()
            expect(other.page.locator("#operations tbody tr").first).to_contain_text("Cancelled")
            other.assert_no_reload()
        screenshot(second.page, "02-cancelled-seen-in-the-other-tab", full_page=False)
        expect(detail.page.locator("#operation [data-field=state]")).to_have_text("Cancelled")
        expect(detail.page.locator("#operation")).to_have_attribute("data-state", "cancelled")
        detail.assert_no_reload()
        screenshot(detail.page, "03-operation-page-cancelled", full_page=False)
        operation.refresh_from_db()
        assert operation.state == Operation.State.CANCELLED
    finally:
        student_context.close()
        teacher_context.close()


def test_losing_access_reaches_open_pages_without_reloading(browser, web_server, screenshot):
    """The student is removed from the course while their lab page is open: its buttons go and
    the page says why (they still read it); an instructor removed from the course while the class
    table is open is cut off ("Not allowed"). Nobody reloads or clicks anything."""
    course = open_course(students=1)
    lab = ready_lab(course)
    leaving, staying = course.instructors.get(), InstructorFactory()
    course_services.course_instructor_add(course=course, actor=leaving, instructor=staying)
    base = web_server.url
    student_context = browser.new_context(viewport={"width": 1280, "height": 900})
    teacher_context = browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        student = Watched(student_context.new_page())
        log_in(student.page, base, lab.student.username, DEFAULT_PASSWORD)
        student.page.goto(f"{base}/labs/{lab.pk}/")
        student.settle()
        expect(student.page.locator("#lab-actions")).to_be_visible()
        expect(student.page.get_by_role("button", name="Revert to Baseline")).to_be_visible()
        expect(student.page.locator("[data-read-only-note]")).to_be_hidden()
        teacher = Watched(teacher_context.new_page())
        log_in(teacher.page, base, leaving.username, DEFAULT_PASSWORD)
        teacher.page.goto(f"{base}/labs/courses/{course.pk}/")
        teacher.settle()

        course_services.enrollment_remove(enrollment=course.enrollments.get(), actor=staying)
        expect(student.page.locator("#lab-actions")).to_be_hidden()
        expect(student.page.locator("#take-snapshot")).to_be_hidden()
        expect(student.page.get_by_role("button", name="Revert to Baseline")).to_be_hidden()
        expect(student.page.locator("[data-read-only-note]")).to_be_visible()
        expect(student.page.locator("[data-read-only-note]")).to_contain_text(
            f"You are no longer enrolled in {course.title}"
        )
        expect(student.page.locator("#toasts")).to_contain_text("no longer enrolled")
        expect(student.page.locator("[data-live-status]").first).to_have_text("Live")
        student.assert_no_reload()
        screenshot(student.page, "01-student-removed-reads-only", full_page=False)

        course_services.course_instructor_remove(course=course, actor=staying, instructor=leaving)
        expect(teacher.page.locator("[data-live-status]").first).to_have_text("Not allowed")
        teacher.assert_no_reload()
        screenshot(teacher.page, "02-instructor-removed-cut-off", full_page=False)
    finally:
        student_context.close()
        teacher_context.close()
