"""Sessions: one logged-in vCenter session per endpoint and per thread, reused.

The simulator's (and, under load, vCenter's) default PropertyCollector misbehaves when
several threads wait on it, so a session belongs to the thread that made it. A daemon
thread keeps idle sessions alive (vCenter expires them after 30 minutes by default);
``close_all`` logs every session out, and runs at interpreter exit.
"""

from __future__ import annotations

import atexit
import logging
import threading
import time

from pyVmomi import vim, vmodl

from . import props
from .connection import ResilientStub, parse_url, probe, soap_stub, ssl_context
from .types import EndpointConfig

log = logging.getLogger(__name__)


class Session:
    """A connection to one vCenter, logged in lazily on first use."""

    def __init__(self, endpoint: EndpointConfig) -> None:
        self.endpoint = endpoint
        self.address = parse_url(endpoint.url)
        self.lock = threading.RLock()
        self.stub: ResilientStub | None = None
        self.thumbprint: str | None = None
        self.logins = 0
        self.last_used = time.monotonic()
        self.closed = False
        self._content: vim.ServiceInstanceContent | None = None
        self._session_manager_id: str | None = None

    def __repr__(self) -> str:
        return f"<Session {self.endpoint.username}@{self.address.netloc} logins={self.logins}>"

    @property
    def where(self) -> str:
        return self.address.netloc

    @property
    def connected(self) -> bool:
        return self._content is not None

    @property
    def content(self) -> vim.ServiceInstanceContent:
        if self._content is None:
            self.connect()
        assert self._content is not None
        return self._content

    def connect(self) -> None:
        """Negotiate the API version, log in, and read the service content."""
        endpoint = self.endpoint
        context = ssl_context(endpoint.verify_tls, endpoint.ca_pem)
        version, self.thumbprint = probe(self.address, context, endpoint.connect_timeout)
        soap = soap_stub(self.address, version, context, endpoint.request_timeout)
        self.stub = ResilientStub(soap, self._login)
        self._login()
        self._content = vim.ServiceInstance("ServiceInstance", self.stub).RetrieveContent()
        self.closed = False

    def _login(self) -> None:
        """Log in on the raw SOAP stub (not the resilient one: no recursion)."""
        assert self.stub is not None
        soap = self.stub.soap
        if self._session_manager_id is None:
            content = vim.ServiceInstance("ServiceInstance", soap).RetrieveContent()
            self._session_manager_id = content.sessionManager._moId
        manager = vim.SessionManager(self._session_manager_id, soap)
        manager.Login(self.endpoint.username, self.endpoint.password)
        self.logins += 1
        log.info("Logged in to vCenter %s as %s (login #%d)", self.where, self.endpoint.username, self.logins)

    def touch(self) -> None:
        self.last_used = time.monotonic()

    def idle_for(self) -> float:
        return time.monotonic() - self.last_used

    def keep_alive(self) -> None:
        """A cheap authenticated read; logs in again when the session is gone."""
        content = self.content
        current = props.read(self, content.sessionManager, ["currentSession"]).get("currentSession")
        if current is None:
            self._login()
        self.touch()

    def close(self) -> None:
        """Log out (best effort) and forget the connection."""
        self.closed = True
        stub, self.stub, self._content = self.stub, None, None
        if stub is None or self._session_manager_id is None:
            return
        try:
            vim.SessionManager(self._session_manager_id, stub.soap).Logout()
        except (vmodl.MethodFault, OSError, Exception):
            log.debug("Logout from %s failed", self.where, exc_info=True)
        finally:
            stub.DropConnections()


_lock = threading.Lock()
_sessions: dict[tuple[int, EndpointConfig], tuple[threading.Thread, Session]] = {}
_keepalive_thread: threading.Thread | None = None
_stop = threading.Event()
_wake = threading.Event()  # a new session may need a shorter keepalive period


def session_for(endpoint: EndpointConfig) -> Session:
    """The calling thread's session for this endpoint (created, not yet connected, if new)."""
    thread = threading.current_thread()
    key = (thread.ident or 0, endpoint)
    stale: list[Session] = []
    with _lock:
        entry = _sessions.get(key)
        if entry is not None and entry[0] is thread and not entry[1].closed:
            return entry[1]
        session = Session(endpoint)
        _sessions[key] = (thread, session)
        for other_key, (other_thread, other) in list(_sessions.items()):
            if not other_thread.is_alive():
                stale.append(other)
                del _sessions[other_key]
        _start_keepalive()
    _wake.set()
    for old in stale:
        old.close()
    return session


def sessions() -> list[Session]:
    """Every live session of this process (for diagnostics and tests)."""
    with _lock:
        return [session for _, session in _sessions.values()]


def close_all(endpoint: EndpointConfig | None = None) -> None:
    """Log out every session (of one endpoint, or all) of every thread."""
    with _lock:
        keys = [key for key in _sessions if endpoint is None or key[1] == endpoint]
        closing = [_sessions.pop(key)[1] for key in keys]
    for session in closing:
        with session.lock:
            session.close()


def _keepalive_period() -> float:
    with _lock:
        idle_limits = [session.endpoint.keepalive_after for _, session in _sessions.values()]
    return max(0.1, min([60.0, *(limit / 2 for limit in idle_limits)]))


def _keepalive_loop() -> None:
    while not _stop.is_set():
        _wake.wait(_keepalive_period())
        _wake.clear()
        if _stop.is_set():
            break
        for session in sessions():
            if not session.connected or session.idle_for() < session.endpoint.keepalive_after:
                continue
            if not session.lock.acquire(blocking=False):
                continue  # in use: it is alive
            try:
                session.keep_alive()
            except Exception:
                log.debug("Keepalive for %s failed", session.where, exc_info=True)
            finally:
                session.lock.release()


def _start_keepalive() -> None:
    global _keepalive_thread
    if _keepalive_thread is None or not _keepalive_thread.is_alive():
        _keepalive_thread = threading.Thread(target=_keepalive_loop, name="vsphere-keepalive", daemon=True)
        _keepalive_thread.start()


def _at_exit() -> None:
    _stop.set()
    _wake.set()
    close_all()


atexit.register(_at_exit)
