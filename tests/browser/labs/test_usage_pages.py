"""The usage pages as people see them: a class with weeks of lab use, its charts drawn
(inline SVG) beside its table, and the admin's page across courses. The server runs in this
process (live_server): the pages only read the database."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from courses import services as course_services
from labs.models import LabRun, LabSnapshot
from tests.browser.conftest import log_in
from tests.factories import DEFAULT_PASSWORD, AdminFactory, StudentFactory, lab_row, open_course

pytestmark = pytest.mark.browser

NAMES = ["ada", "alan", "barbara", "claude", "donald", "edsger", "frances", "grace", "john", "katherine", "linus"]


def busy_class():
    """Eleven students over the last five weeks: one to three runs a day on weekdays, more for some."""
    course = open_course(
        students=0,
        code="vsp8-fall26",
        title="vSphere 8: install, configure, manage",
        quota={"vcpu_total": 64, "memory_gb_total": 200, "storage_gb_total": 400, "lab_hours_per_student": 40},
    )
    instructor = course.instructors.get()
    now = timezone.now().replace(minute=0, second=0, microsecond=0)
    for index, name in enumerate(NAMES):
        student = StudentFactory(username=name)
        course_services.enrollment_add(course=course, actor=instructor, student=student)
        if index == len(NAMES) - 1:
            continue  # one student never started a lab
        lab = lab_row(course, student, created_at=now - timedelta(days=36))
        hours = 0.0
        for day in range(35):
            start = now - timedelta(days=35 - day, hours=-(9 + index % 5))
            if start.weekday() >= 5 or (day + index) % 3 == 0:
                continue
            length = timedelta(minutes=45 + 20 * ((day * 7 + index * 3) % 7))
            LabRun.objects.create(lab=lab, started_at=start, ended_at=start + length)
            hours += length.total_seconds() / 3600
        running = index % 4 == 0
        lab.hours_used, lab.running_since = hours, (now - timedelta(hours=1) if running else None)
        lab.save(update_fields=["hours_used", "running_since"])
        for number in range(index % 3):
            LabSnapshot.objects.create(lab=lab, name=f"step {number + 1}")
    return course


def test_the_course_usage_page_draws_its_charts(page, live_server, screenshot):
    course = busy_class()
    log_in(page, live_server.url, course.instructors.get().username, DEFAULT_PASSWORD)
    page.goto(f"{live_server.url}/courses/{course.pk}/")
    page.locator("#class-labs").get_by_role("button", name="Usage").click()
    expect(page.get_by_role("heading", name="Usage", level=1)).to_be_visible()

    per_student = page.get_by_role("img", name="Lab hours in the period, per student")
    expect(per_student).to_be_visible()
    expect(per_student.locator("rect.chart-bar")).to_have_count(len(NAMES))
    per_day = page.get_by_role("img", name="Lab hours per day, all students")
    expect(per_day.locator("rect.chart-bar")).not_to_have_count(0)
    expect(per_day.locator("line.chart-today")).to_have_count(1)
    expect(page.locator('[data-chart="in-use-chart"]')).to_contain_text("50 of 64 vCPU · 78 %")
    expect(page.locator('tr[data-student="linus"]')).to_contain_text("0")
    box = per_student.bounding_box()
    assert box["width"] > 600 and box["height"] > 200  # drawn at its size, not collapsed
    screenshot(page, "course-usage")

    page.context.clear_cookies()
    admin = AdminFactory()
    log_in(page, live_server.url, admin.username, DEFAULT_PASSWORD)
    page.get_by_role("link", name="Usage").first.click()
    expect(page.get_by_role("heading", name="Usage", level=1)).to_be_visible()
    expect(page.locator('tr[data-course="vsp8-fall26"]')).to_be_visible()
    expect(page.get_by_role("img", name="Lab hours per day, every course")).to_be_visible()
    screenshot(page, "admin-usage")
