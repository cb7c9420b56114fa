"""Sessions: login, wrong password, unreachable vCenter, restarts, idle timeouts, keepalive."""

from __future__ import annotations

import http.server
import threading
import time

import pytest

from labs import vsphere
from labs.vsphere import AuthenticationFailed, Unreachable
from labs.vsphere.session import session_for, sessions
from portal import simulator

from .conftest import ESXI, endpoint_for

pytestmark = pytest.mark.integration


def test_login_and_server_info(client, vcsim, vc):
    info = client.server_info()

    assert info.instance_uuid == vc.content.about.instanceUuid
    assert info.full_name == vc.content.about.fullName
    assert info.username == vcsim.username
    users = [s.userName for s in vc.sessions()]
    assert users.count(vcsim.username) >= 2  # the readback session and the driver's


def test_wrong_password_is_authentication_failed(vcsim):
    client = vsphere.get_client(endpoint_for(vcsim, password="not-the-password"))

    with pytest.raises(AuthenticationFailed) as caught:
        client.server_info()

    assert "user name or password" in str(caught.value)
    assert "types." not in str(caught.value)


def test_password_never_in_repr(vcsim):
    endpoint = endpoint_for(vcsim, password="s3cr3t-value")
    client = vsphere.get_client(endpoint)

    assert "s3cr3t-value" not in repr(endpoint)
    assert "s3cr3t-value" not in repr(client)
    assert "s3cr3t-value" not in repr(client.session)


def test_closed_port_is_unreachable_with_words():
    client = vsphere.get_client(
        vsphere.EndpointConfig(url=f"http://127.0.0.1:{simulator.free_port()}/sdk", username="u", password="p")
    )

    with pytest.raises(Unreachable) as caught:
        client.server_info()

    assert "refused" in str(caught.value)
    assert "127.0.0.1" in str(caught.value)


def test_unknown_host_is_unreachable():
    client = vsphere.get_client(
        vsphere.EndpointConfig(url="https://vcenter.nestlab.invalid", username="u", password="p", connect_timeout=3)
    )

    with pytest.raises(Unreachable) as caught:
        client.server_info()

    assert "vcenter.nestlab.invalid:443" in str(caught.value)


def test_a_web_server_that_is_not_vcenter_is_unreachable():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), http.server.SimpleHTTPRequestHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/sdk"
        client = vsphere.get_client(vsphere.EndpointConfig(url=url, username="u", password="p"))
        with pytest.raises(Unreachable) as caught:
            client.server_info()
        assert "does not look like a vCenter" in str(caught.value)
    finally:
        server.shutdown()
        server.server_close()


def test_silent_server_times_out_within_connect_timeout():
    import socket

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)  # accepts the TCP connection, never answers
    try:
        endpoint = vsphere.EndpointConfig(
            url=f"http://127.0.0.1:{listener.getsockname()[1]}/sdk",
            username="u",
            password="p",
            connect_timeout=1,
        )
        started = time.monotonic()
        with pytest.raises(Unreachable) as caught:
            vsphere.get_client(endpoint).server_info()
        assert time.monotonic() - started < 5
        assert "did not answer in time" in str(caught.value)
    finally:
        listener.close()


def test_one_session_per_thread_and_endpoint(client, endpoint):
    mine = client.session
    assert session_for(endpoint) is mine
    other: list = []

    def work():
        other.append((client.session, client.server_info()))

    thread = threading.Thread(target=work)
    thread.start()
    thread.join()

    other_session, info = other[0]
    assert other_session is not mine
    assert info.instance_uuid == client.server_info().instance_uuid


@pytest.fixture
def own_simulator():
    servers = []

    def start(*args: str):
        server = simulator.start(args=["-demo", *args])
        servers.append(server)
        return server

    yield start
    for server in servers:
        vsphere.close_all(endpoint_for(server))
        server.stop()


def test_vcenter_restart_reconnects_and_logs_in_again(own_simulator):
    server = own_simulator()
    client = vsphere.get_client(endpoint_for(server))
    moref = client.get(ESXI).moref
    assert client.session.logins == 1

    server.restart()

    # The next call works: the broken connection is replaced and the session made anew.
    assert client.vm_info(moref).name == "esxi-01"
    assert client.session.logins == 2
    # Writes work too after the restart.
    folder = client.ensure_folder("/DC0/vm", "after-restart")
    assert client.get(folder).path == "/DC0/vm/after-restart"


def test_vcenter_down_is_unreachable_then_recovers(own_simulator):
    server = own_simulator()
    client = vsphere.get_client(endpoint_for(server))
    client.server_info()

    server.stop()
    with pytest.raises(Unreachable) as caught:
        client.get(ESXI)
    assert "refused" in str(caught.value)

    server.start()
    assert client.get(ESXI).name == "esxi-01"


def test_expired_session_logs_in_again(own_simulator):
    server = own_simulator("-idle-timeout", "1s")
    client = vsphere.get_client(endpoint_for(server))
    client.server_info()
    assert client.session.logins == 1

    time.sleep(2.2)

    assert client.get(ESXI).name == "esxi-01"
    assert client.session.logins == 2


def test_keepalive_keeps_an_idle_session(own_simulator):
    server = own_simulator("-idle-timeout", "1s")
    client = vsphere.get_client(endpoint_for(server, keepalive_after=0.3))
    client.server_info()
    session = client.session

    time.sleep(2.5)  # more than twice the idle timeout, no call of our own

    assert session.logins == 1  # the keepalive thread kept it alive: no second login
    assert client.get(ESXI).name == "esxi-01"
    assert session.logins == 1


def test_close_all_logs_out(own_simulator):
    server = own_simulator()
    endpoint = endpoint_for(server)
    client = vsphere.get_client(endpoint)
    client.server_info()
    from .readback import VCenter

    reader = VCenter(server)
    try:
        assert len(reader.sessions()) == 2
        vsphere.close_all(endpoint)
        assert len(reader.sessions()) == 1  # only the reader's own
        assert all(s.endpoint != endpoint for s in sessions())
        # A client made before still works: it logs in again.
        assert client.get(ESXI).name == "esxi-01"
    finally:
        reader.close()


def test_a_fresh_thread_can_act_on_a_moref_as_its_first_call(vcsim):
    """A new thread's session is connected before a moref handle is bound to it."""
    import threading

    from labs import vsphere

    endpoint = vsphere.EndpointConfig(url=vcsim.url, username=vcsim.username, password=vcsim.password)
    client = vsphere.get_client(endpoint)
    vm = client.get("/DC0/vm/DC0_H0_VM0").moref
    outcome: list[object] = []

    def first_call_in_thread() -> None:
        try:
            # A method invoked on the handle itself (not a property read) needs its stub.
            outcome.append(client.reconfigure_vm(vm, annotation="touched by a fresh thread"))
        except Exception as error:  # noqa: BLE001 - reported below
            outcome.append(error)

    thread = threading.Thread(target=first_call_in_thread)
    thread.start()
    thread.join()
    assert outcome == [True]
