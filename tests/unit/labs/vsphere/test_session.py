"""The session cache: one per endpoint and thread, made lazily, closed on demand."""

from __future__ import annotations

import threading

import pytest

from labs import vsphere
from labs.vsphere import session as session_module
from labs.vsphere.session import Session, close_all, session_for, sessions


@pytest.fixture
def endpoint(request):
    # A distinct endpoint per test; never connected (sessions log in lazily).
    endpoint = vsphere.EndpointConfig(url=f"https://vc-{request.node.name[:30]}.invalid", username="u", password="p")
    yield endpoint
    close_all(endpoint)


def test_same_thread_same_session(endpoint):
    first = session_for(endpoint)

    assert session_for(endpoint) is first
    assert isinstance(first, Session)
    assert not first.connected  # nothing was sent yet


def test_another_thread_gets_its_own(endpoint):
    mine = session_for(endpoint)
    theirs = []
    thread = threading.Thread(target=lambda: theirs.append(session_for(endpoint)))
    thread.start()
    thread.join()

    assert theirs[0] is not mine
    assert theirs[0].endpoint == mine.endpoint


def test_sessions_of_finished_threads_are_dropped(endpoint):
    theirs = []
    thread = threading.Thread(target=lambda: theirs.append(session_for(endpoint)))
    thread.start()
    thread.join()
    assert theirs[0] in sessions()

    session_for(endpoint)  # any new session prunes the dead thread's

    assert theirs[0] not in sessions()
    assert theirs[0].closed


def test_endpoints_with_other_credentials_get_other_sessions(endpoint):
    other = vsphere.EndpointConfig(url=endpoint.url, username="u", password="other")
    try:
        assert session_for(other) is not session_for(endpoint)
    finally:
        close_all(other)


def test_close_all_for_one_endpoint(endpoint):
    other = vsphere.EndpointConfig(url=endpoint.url + "x", username="u", password="p")
    mine, kept = session_for(endpoint), session_for(other)

    close_all(endpoint)

    assert mine.closed and mine not in sessions()
    assert kept in sessions() and not kept.closed
    assert session_for(endpoint) is not mine  # a fresh one
    close_all(other)


def test_keepalive_period_follows_the_shortest_idle_limit(endpoint, monkeypatch):
    # Only this test's sessions: integration tests may leave quicker ones registered.
    monkeypatch.setattr(session_module, "_sessions", {})
    quick = vsphere.EndpointConfig(url=endpoint.url, username="u", password="p", keepalive_after=1.0)
    session_for(quick)
    try:
        assert session_module._keepalive_period() == 0.5
    finally:
        close_all(quick)


def test_session_repr_has_no_password():
    endpoint = vsphere.EndpointConfig(url="https://vc.invalid", username="u", password="s3cr3t-pw")
    try:
        assert "s3cr3t-pw" not in repr(session_for(endpoint))
        assert "s3cr3t-pw" not in repr(endpoint)
    finally:
        close_all(endpoint)
