"""Fixtures shared by every test tier."""

from __future__ import annotations

import uuid

import pytest

from portal import simulator


@pytest.fixture(scope="session")
def vcsim():
    """One vCenter simulator for the whole test session (built on first use).

    Yields a ``portal.simulator.Simulator``: ``.url``, ``.host``, ``.port``,
    ``.username``, ``.password``; ``.restart()`` for the 'vCenter restarted' fault.
    """
    server = simulator.start(args=["-demo"])
    yield server
    server.stop()


@pytest.fixture(scope="session")
def celery_queue() -> str:
    """A queue name of this test session's own, so stray messages never mix."""
    return f"nestlab-test-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def celery_worker(transactional_db, celery_queue, settings):
    """A real Celery worker process on Redis, reading the test database.

    Needs committed data, hence ``transactional_db``. Tasks sent from the test go to
    the session's own queue.
    """
    from portal.celery import app
    from tests.support.processes import WorkerProcess

    settings.CELERY_TASK_DEFAULT_QUEUE = celery_queue
    app.conf.task_default_queue = celery_queue
    worker = WorkerProcess(queue=celery_queue).start()
    yield worker
    worker.stop()


@pytest.fixture(scope="session", autouse=True)
def websocket_messages_follow_the_schema():
    """Every message any test makes the portal publish is checked against
    docs/websocket.schema.json where it is built, so a bad one fails its test."""
    from portal import realtime
    from tests.support.websocket_schema import check_message

    original = realtime.publish

    def checked(groups, message):
        check_message(message)
        return original(groups, message)

    patcher = pytest.MonkeyPatch()
    patcher.setattr(realtime, "publish", checked)
    yield
    patcher.undo()


@pytest.fixture
def watcher_process(transactional_db):
    """The vSphere watcher (`manage.py runwatcher`) as a child process on the test database."""
    from tests.support.processes import WatcherProcess

    watcher = WatcherProcess().start()
    yield watcher
    watcher.stop()


def pytest_collection_modifyitems(config, items):
    """Fast tiers first, browser tests last: Playwright's sync API keeps an event loop
    running in the main thread for the rest of the session once it has started, which
    async test helpers (channels' communicator, async_to_sync) cannot share."""
    tier = {"unit": 0, "integration": 1, "browser": 2}

    def rank(item) -> int:
        parts = item.path.relative_to(config.rootpath).parts
        return tier.get(parts[1], 1) if len(parts) > 1 and parts[0] == "tests" else 1

    items.sort(key=rank)
