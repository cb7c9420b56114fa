"""The warm pool's panel on the class page as an instructor uses it: the size set with the form
(htmx), the panel answering in words in place (a bad number: the browser's own bounds, then the
server's, tests/integration/labs/test_pool_views.py). The server runs in
this process (live_server); nothing is built (the operations are not sent)."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from labs import dispatch, services
from labs.models import WarmPool
from tests.browser.conftest import log_in
from tests.factories import DEFAULT_PASSWORD, open_course

pytestmark = pytest.mark.browser


def test_the_instructor_sizes_the_warm_pool_from_the_class_page(page, live_server, monkeypatch, screenshot):
    monkeypatch.setattr(services.dispatch, "send_operation", lambda *args, **kwargs: None)
    monkeypatch.setattr(dispatch, "pool_nudge", lambda course_id: None)
    course = open_course(students=3, quota={"pool_labs": 2})
    log_in(page, live_server.url, course.instructors.get().username, DEFAULT_PASSWORD)
    page.goto(f"{live_server.url}/labs/courses/{course.pk}/")
    panel = page.locator("#pool")
    expect(panel).to_contain_text("No warm pool: every Start builds a new lab.")

    panel.get_by_label("Labs kept ready").fill("5")
    panel.get_by_role("button", name="Set the pool").click()
    expect(page.locator("#pool")).to_contain_text("The warm pool keeps 5 labs ready.")
    expect(page.locator("#pool")).to_contain_text("the quota caps the pool at 2")
    assert WarmPool.objects.get(course=course).size == 5
    screenshot(page, "class-warm-pool")
