"""Browser tests: real Chromium (Debian's) driven by Playwright, against a real stack:
daphne and a Celery worker in child processes, on the test database and Redis."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from portal.simulator import free_port
from tests.support.processes import WebProcess

CHROMIUM = os.environ.get("NESTLAB_CHROMIUM", "/usr/bin/chromium")
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"


@pytest.fixture(scope="session", autouse=True)
def allow_orm_beside_playwright():
    """Playwright's sync API runs an event loop in the test thread; the tests' own ORM
    calls are plain synchronous code all the same. Only for browser tests, and undone after."""
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    yield
    if previous is None:
        del os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"]
    else:
        os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail(f"Chromium is missing at {CHROMIUM}: run `make system-deps` (apt-get install chromium).")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        yield chromium
        chromium.close()


@pytest.fixture
def web_server(transactional_db, celery_queue):
    server = WebProcess(port=free_port(), extra_env={"NESTLAB_CELERY_QUEUE": celery_queue}).start()
    yield server
    server.stop()


def content_security_policy_violations(page) -> list[str]:
    """Start collecting what Chromium refuses under the content security policy on ``page``
    (it reports each refusal on the console); returns the list it fills."""
    refused: list[str] = []

    def note(message) -> None:
        if "Content Security Policy" in message.text:
            refused.append(f"{page.url}: {message.text}")

    page.on("console", note)
    return refused


@pytest.fixture
def page(browser, request):
    """A fresh browser context; the test fails if any page it opened broke the content
    security policy (an inline script or style the production header would block)."""
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    page.set_default_timeout(15_000)
    refused = content_security_policy_violations(page)
    yield page
    context.close()
    assert not refused, "The content security policy refused:\n" + "\n".join(refused)


@pytest.fixture
def screenshot(request):
    """``screenshot(page, "name")`` saves test-artifacts/screenshots/<test>-<name>.png."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    test_name = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.name)

    def take(page, name: str, *, full_page: bool = True) -> Path:
        path = SCREENSHOTS / f"{test_name}-{name}.png"
        page.screenshot(path=str(path), full_page=full_page)
        return path

    return take


def log_in(page, base_url: str, username: str, password: str) -> None:
    page.goto(f"{base_url}/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_load_state("networkidle")
