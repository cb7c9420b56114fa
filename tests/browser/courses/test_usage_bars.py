"""Usage bars as people see them: green, yellow from 80 %, red at 100 %, a limit lowered
below usage explained, no limit and none allowed. The server runs in this process
(live_server) so the usage source can be set the way the labs app will register it."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from courses import services, usage
from tests.browser.conftest import log_in
from tests.factories import DEFAULT_PASSWORD, TERM_END, TERM_START, AdminFactory, InstructorFactory, StudentFactory

pytestmark = pytest.mark.browser


@pytest.fixture
def measured(monkeypatch):
    monkeypatch.setattr(
        usage,
        "_source",
        lambda course: usage.Usage(
            running_labs=9,
            labs=24,
            max_labs_per_student=2,
            max_snapshots_per_lab=1,
            vcpu=20,
            memory_gb=51.2,
            storage_gb=300,
            max_lab_hours_per_student=12,
        ),
    )
    monkeypatch.setattr(
        usage,
        "_student_source",
        lambda course, student: usage.StudentUsage(labs=2, max_snapshots_per_lab=1, lab_hours=9),
    )


def test_bars_show_each_level_and_explain_a_lowered_limit(page, live_server, measured, screenshot):
    instructor = InstructorFactory()
    admin = AdminFactory()
    student = StudentFactory()
    course = services.course_create(
        actor=instructor,
        title="vSphere 8: install, configure, manage",
        code="vsp8-bars",
        starts_on=TERM_START,
        ends_on=TERM_END,
    )
    services.enrollment_add(course=course, actor=instructor, student=student)
    services.quota_update(
        course=course,
        actor=admin,
        running_labs=10,
        labs_per_student=2,
        snapshots_per_lab=0,
        vcpu_total=16,
        memory_gb_total=64,
        storage_gb_total=None,
        lab_hours_per_student=40,
    )
    services.top_up_grant(course=course, actor=instructor, student=student, extra_lab_hours=10, reason="outage")

    log_in(page, live_server.url, admin.username, DEFAULT_PASSWORD)
    page.goto(f"{live_server.url}/courses/{course.pk}/")
    expect(page.locator('[data-bar="running_labs"]')).to_have_class("usage level-warn")
    expect(page.locator('[data-bar="memory_gb_total"]')).to_have_class("usage level-warn")
    expect(page.locator('[data-bar="labs_per_student"]')).to_have_class("usage level-full")
    expect(page.locator('[data-bar="vcpu_total"]')).to_contain_text("blocked until usage drops below 16 vCPU")
    expect(page.locator('[data-bar="snapshots_per_lab"]')).to_contain_text("None are allowed now")
    expect(page.locator('[data-bar="storage_gb_total"]')).to_contain_text("300 GB · no limit")
    expect(page.get_by_role("alert")).to_contain_text("Over quota.")
    page.locator("#quota").scroll_into_view_if_needed()
    screenshot(page, "admin-bars", full_page=False)

    page.context.clear_cookies()
    log_in(page, live_server.url, student.username, DEFAULT_PASSWORD)
    page.goto(f"{live_server.url}/courses/{course.pk}/")
    expect(page.locator('[data-bar="lab_hours_per_student"]')).to_contain_text("9 of 50 h")
    expect(page.locator('[data-bar="labs_per_student"]')).to_have_class("usage level-full")
    screenshot(page, "student-bars")
