"""A person's own account in real Chromium: changing the password, setting a new one through the
reset e-mail (read off a real SMTP listener), and an API key shown once."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from core.rate_limit import forget_all
from portal.simulator import free_port
from tests.browser.conftest import log_in
from tests.factories import DEFAULT_PASSWORD, StudentFactory
from tests.support.processes import WebProcess

pytestmark = pytest.mark.browser
NEW_PASSWORD = "a-much-longer-secret-42"


@pytest.fixture
def mailing_server(transactional_db, celery_queue, smtp):
    """The portal with its e-mail going to the test's SMTP listener."""
    forget_all()
    server = WebProcess(
        port=free_port(),
        extra_env={"NESTLAB_CELERY_QUEUE": celery_queue, "EMAIL_HOST": "127.0.0.1", "EMAIL_PORT": str(smtp.port)},
    ).start()
    yield server
    server.stop()


def test_a_student_changes_their_password_and_makes_an_api_key(page, web_server, screenshot):
    forget_all()
    student = StudentFactory(first_name="Sam")
    log_in(page, web_server.url, student.username, DEFAULT_PASSWORD)
    page.goto(f"{web_server.url}/account/")
    expect(page.get_by_role("heading", name="Your account")).to_be_visible()
    page.get_by_role("link", name="Change your password").click()
    page.get_by_label("Old password").fill(DEFAULT_PASSWORD)
    page.get_by_label("New password", exact=True).fill(NEW_PASSWORD)
    page.get_by_label("New password confirmation").fill(NEW_PASSWORD)
    screenshot(page, "password-change")
    page.get_by_role("button", name="Change password").click()
    expect(page.get_by_text("Your password is changed.")).to_be_visible()

    page.get_by_label("Name").fill("grading notebook")
    page.get_by_role("button", name="Make a key").click()
    key = page.locator("[data-new-key]")
    expect(key).to_contain_text("nlk_")
    expect(page.get_by_role("cell", name="grading notebook")).to_be_visible()
    screenshot(page, "api-key-made")

    page.context.clear_cookies()
    log_in(page, web_server.url, student.username, NEW_PASSWORD)
    expect(page.get_by_role("heading", name="My labs")).to_be_visible()


def test_a_forgotten_password_is_set_again_through_the_e_mail(page, mailing_server, smtp, screenshot):
    student = StudentFactory(email="sam@example.edu")
    page.goto(f"{mailing_server.url}/login/")
    page.get_by_role("link", name="Forgot your password?").click()
    page.get_by_label("Email").fill("sam@example.edu")
    page.get_by_role("button", name="Send the link").click()
    expect(page.get_by_role("heading", name="Check your e-mail")).to_be_visible()

    mail = smtp.mailbox.wait_for("sam@example.edu")
    body = mail.get_body(preferencelist=("plain",)).get_content()
    link = re.search(r"(https?://\S+/password-reset/\S+/)", body).group(1)
    page.goto(link)
    page.get_by_label("New password", exact=True).fill(NEW_PASSWORD)
    page.get_by_label("New password confirmation").fill(NEW_PASSWORD)
    screenshot(page, "password-reset-confirm")
    page.get_by_role("button", name="Set password").click()
    expect(page.get_by_role("heading", name="Your password is set")).to_be_visible()

    log_in(page, mailing_server.url, student.username, NEW_PASSWORD)
    expect(page.get_by_role("heading", name="My labs")).to_be_visible()
    page.goto(link)
    expect(page.get_by_text("This link does not work any more")).to_be_visible()
