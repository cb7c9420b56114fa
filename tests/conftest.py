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
    from core import realtime
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


@pytest.fixture
def sim_vm(vcsim):
    """A powered-on VM of the test's own in the simulator: (endpoint, moref)."""
    from labs import vsphere
    from labs.endpoints import endpoint_config
    from tests.factories import simulator_endpoint

    endpoint = simulator_endpoint(vcsim)
    client = vsphere.get_client(endpoint_config(endpoint))
    moref = client.clone_vm(
        "/DC0/vm/DC0_H0_VM0", name=f"console-{uuid.uuid4().hex[:8]}", folder="/DC0/vm", pool="/DC0/host/DC0_H0"
    )
    client.power_on(moref)
    yield endpoint, moref
    if client.power_state(moref) == "poweredOn":
        client.power_off(moref)
    client.destroy_vm(moref)


@pytest.fixture
def console_lab(sim_vm):
    """A ready lab whose router is the simulator VM (its other VMs off): for the console."""
    from labs.models import LabVM
    from tests.factories import open_course
    from tests.integration.labs.api.conftest import ready_lab

    endpoint, moref = sim_vm
    course = open_course(students=2)
    lab = ready_lab(course)
    lab.endpoint = endpoint
    lab.save(update_fields=["endpoint"])
    LabVM.objects.filter(lab=lab, role="router").update(moref=moref, power_state="poweredOn")
    LabVM.objects.filter(lab=lab).exclude(role="router").update(power_state="poweredOff")
    return lab


@pytest.fixture
def smtp():
    """A real SMTP listener on a free port; ``.port``, ``.mailbox.wait_for(address)``."""
    from tests.support.smtp import SmtpServer

    server = SmtpServer().start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def ldap_directory():
    """Debian's slapd on a free port with a small school (tests/support/ldap.py)."""
    from tests.support.ldap import Directory

    directory = Directory().start()
    yield directory
    directory.stop()


@pytest.fixture(scope="session")
def saml_idp():
    """A SAML 2.0 identity provider (pysaml2) on a free port (tests/support/saml_idp.py)."""
    from tests.support.saml_idp import SamlIdp

    idp = SamlIdp().start()
    yield idp
    idp.stop()


@pytest.fixture(scope="session")
def lti_platform_server():
    """The LTI 1.3 test platform process (tests/support/lti_platform.py), one per session."""
    from tests.support.lti_platform import LtiPlatform

    platform = LtiPlatform().start()
    yield platform
    platform.stop()


@pytest.fixture
def lti_platform(lti_platform_server):
    """A real LTI 1.3 / Advantage platform (an LMS) with nothing prepared: ``.issuer``,
    ``.client_id``, ``.deployment_id``, ``.auth_login_url``, ``.auth_token_url``,
    ``.key_set_url``, ``.prepare_launch(...)``, ``.id_token_form(auth_url)``, ``.scores()`` ...
    Its keys stay for the session; everything a test prepared or the tool did is forgotten."""
    lti_platform_server.reset()
    lti_platform_server.target_link_uri = None
    yield lti_platform_server
    lti_platform_server.reset()
