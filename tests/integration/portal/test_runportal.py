"""`manage.py runportal --demo` (what `make run` calls) on a bare setup: embedded Redis,
a SQLite file, the simulator; it serves the login page and the demo accounts log in."""

import contextlib
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from http.cookiejar import CookieJar
from pathlib import Path
from urllib.parse import urlencode

import pytest

from portal.simulator import free_port

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture
def portal_process(tmp_path):
    process, web_port, redis_port, vcsim_port, output = _start_portal(tmp_path)
    yield process, web_port, redis_port, vcsim_port, output
    _stop_portal(process)


def _stop_portal(process):
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)


def _start_portal(tmp_path, *extra):
    web_port, redis_port, vcsim_port = free_port(), free_port(), free_port()
    env = {key: value for key, value in os.environ.items() if key not in {"DATABASE_URL", "REDIS_URL"}}
    env.update(
        NESTLAB_VAR_DIR=str(tmp_path / "var"),
        NESTLAB_EMBEDDED_REDIS_PORT=str(redis_port),
        DEBUG="1",
        PYTHONUNBUFFERED="1",
    )
    process = subprocess.Popen(
        [
            sys.executable,
            "manage.py",
            "runportal",
            "--demo",
            "--port",
            str(web_port),
            "--vcsim-port",
            str(vcsim_port),
            "--workers",
            "1",
            "--checkers",
            "1",
            *extra,
        ],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    output: list[str] = []
    threading.Thread(target=lambda: output.extend(process.stdout), daemon=True).start()
    return process, web_port, redis_port, vcsim_port, output


def _get(url, opener=None):
    opener = opener or urllib.request.build_opener()
    with opener.open(url, timeout=5) as response:
        return response.status, response.read().decode()


def _wait_for_login_page(port, process, output, timeout=90):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, "runportal exited:\n" + "".join(output[-40:])
        try:
            return _get(f"http://127.0.0.1:{port}/login/")
        except OSError:
            time.sleep(0.5)
    raise AssertionError("no login page:\n" + "".join(output[-40:]))


def _assert_demo_templates_have_nested_hv(port):
    """Straight through pyVmomi, not the driver: what a newcomer with govc or pyVmomi would see."""
    from pyVim.connect import Disconnect, SmartConnect
    from pyVmomi import vim, vmodl

    si = SmartConnect(host="127.0.0.1", port=port, protocol="http", user="administrator@vsphere.local", pwd="nestlab")
    try:
        content = si.RetrieveContent()
        folder = content.searchIndex.FindByInventoryPath("DC0/vm/Nestlab Templates/Nested vSphere 8 Lab")
        assert folder is not None, "the demo template folder exists"
        view = content.viewManager.CreateContainerView(folder, [vim.VirtualMachine], True)
        spec = vmodl.query.PropertyCollector.FilterSpec(
            objectSet=[
                vmodl.query.PropertyCollector.ObjectSpec(
                    obj=view,
                    skip=True,
                    selectSet=[
                        vmodl.query.PropertyCollector.TraversalSpec(
                            name="view", path="view", skip=False, type=vim.view.ContainerView
                        )
                    ],
                )
            ],
            propSet=[
                vmodl.query.PropertyCollector.PropertySpec(
                    type=vim.VirtualMachine, pathSet=["name", "config.nestedHVEnabled"]
                )
            ],
        )
        found = {}
        for item in content.propertyCollector.RetrieveContents([spec]):
            props = {prop.name: prop.val for prop in item.propSet}
            found[props["name"]] = props.get("config.nestedHVEnabled")
        assert {"esxi-01", "esxi-02", "esxi-03", "vcsa", "router"} <= found.keys()
        assert all(found[name] is True for name in ("esxi-01", "esxi-02", "esxi-03")), found
    finally:
        Disconnect(si)


def _assert_each_queue_has_its_workers(pid):
    """Quick operations, builds and guide checks each have a Celery worker of their own."""
    import psutil

    queues = {}
    for child in psutil.Process(pid).children(recursive=True):
        command = child.cmdline()
        if "celery" in " ".join(command) and "worker" in command and "--queues" in command:
            hostname = command[command.index("--hostname") + 1].split("@")[0]
            queues[hostname] = command[command.index("--queues") + 1]
    assert queues["checker"].endswith("-checks") and queues["builder"].endswith("-build"), queues
    assert queues["worker"] == queues["checker"].removesuffix("-checks"), queues


def _listening(port):
    import socket

    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def test_runportal_demo_serves_logs_in_and_stops_everything(portal_process):
    process, web_port, redis_port, vcsim_port, output = portal_process
    status, body = _wait_for_login_page(web_port, process, output)
    assert status == 200 and "Log in to Nestlab" in body
    printed = "".join(output)
    assert re.search(r"admin\s+admin\s+nestlab-admin", printed), printed
    assert "student1" in printed

    jar = CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    _, login_page = _get(f"http://127.0.0.1:{web_port}/login/", opener)
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', login_page).group(1)
    data = urlencode({"username": "admin", "password": "nestlab-admin", "csrfmiddlewaretoken": token}).encode()
    request = urllib.request.Request(
        f"http://127.0.0.1:{web_port}/login/",
        data=data,
        headers={"Referer": f"http://127.0.0.1:{web_port}/login/"},
    )
    with opener.open(request, timeout=10) as response:
        home = response.read().decode()
    assert "Administration" in home
    assert "Demo vCenter (simulator)" in home

    # Only runportal itself is signalled: it must stop what it started.
    _assert_demo_templates_have_nested_hv(vcsim_port)
    _assert_each_queue_has_its_workers(process.pid)

    os.kill(process.pid, signal.SIGTERM)
    process.wait(timeout=30)
    time.sleep(0.5)
    for port in (web_port, redis_port, vcsim_port):
        assert not _listening(port), f"port {port} still open after stop"


def _login(port, username, password):
    """Sign in through the login page; the cookie jar's cookies by name."""
    jar = CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    _, login_page = _get(f"http://127.0.0.1:{port}/login/", opener)
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', login_page).group(1)
    data = urlencode({"username": username, "password": password, "csrfmiddlewaretoken": token}).encode()
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/login/", data=data, headers={"Referer": f"http://127.0.0.1:{port}/login/"}
    )
    with opener.open(request, timeout=30):
        pass
    return {cookie.name: cookie.value for cookie in jar}


def _serving_pid(daphnes, web_port, client_port):
    """The daphne process that accepted the connection from ``client_port``."""
    import psutil

    for pid in daphnes:
        for socket_ in psutil.Process(pid).net_connections(kind="tcp"):
            if socket_.laddr.port == web_port and socket_.raddr and socket_.raddr.port == client_port:
                return pid
    return None


def test_two_web_processes_serve_one_address_and_clients_on_either_see_the_same_pushes(tmp_path):
    """Issue 16: `runportal --web-processes 2` runs two daphnes on one listening socket. A
    WebSocket client on each and an API client on the second: the lab the API client starts
    reaches both WebSockets as the same messages (channels_redis groups span processes)."""
    import http.client
    import json

    import psutil
    from websockets.sync.client import connect

    process, web_port, _, _, output = _start_portal(tmp_path, "--web-processes", "2", "--builders", "1")
    sockets = contextlib.ExitStack()
    try:
        _wait_for_login_page(web_port, process, output)
        daphnes = [
            child.pid
            for child in psutil.Process(process.pid).children(recursive=True)
            if "daphne" in " ".join(child.cmdline()) and "--fd" in child.cmdline()
        ]
        assert len(daphnes) == 2, "".join(output[-40:])
        assert "with 2 web processes" in "".join(output)
        instructor = _login(web_port, "instructor", "nestlab-teach")
        student = _login(web_port, "student1", "nestlab-learn")
        origin = f"http://127.0.0.1:{web_port}"
        cookie = "; ".join(f"{name}={value}" for name, value in instructor.items())
        request = urllib.request.Request(f"{origin}/api/v1/courses/", headers={"Cookie": cookie})
        with urllib.request.urlopen(request, timeout=30) as response:
            listed = json.loads(response.read())
        course = (listed["results"] if isinstance(listed, dict) else listed)[0]["id"]

        # The kernel hands each connection to whichever daphne accepts first: open until one is on each.
        on: dict[int, object] = {}
        for _ in range(40):
            ws = sockets.enter_context(
                connect(
                    f"ws://127.0.0.1:{web_port}/ws/courses/{course}/",
                    origin=origin,
                    additional_headers={"Cookie": cookie},
                    open_timeout=30,
                )
            )
            assert json.loads(ws.recv(timeout=30))["type"] == "course.full"
            pid = _serving_pid(daphnes, web_port, ws.socket.getsockname()[1])
            if pid in on:
                ws.close()
            else:
                on[pid] = ws
            if len(on) == 2:
                break
        assert set(on) == set(daphnes), f"WebSockets reached {set(on)}, not both of {daphnes}"
        first, second = daphnes

        for _ in range(40):
            api = http.client.HTTPConnection("127.0.0.1", web_port, timeout=30)
            api.connect()
            if _serving_pid(daphnes, web_port, api.sock.getsockname()[1]) == second:
                break
            api.close()
        else:
            raise AssertionError("no API connection reached the second daphne")
        body = json.dumps({"course": course})
        api.request(
            "POST",
            "/api/v1/labs/",
            body=body,
            headers={
                "Content-Type": "application/json",
                "Cookie": "; ".join(f"{name}={value}" for name, value in student.items()),
                "X-CSRFToken": student["csrftoken"],
                "Referer": origin + "/",
            },
        )
        answer = api.getresponse()
        started = json.loads(answer.read())
        assert answer.status == 202, started
        assert _serving_pid(daphnes, web_port, api.sock.getsockname()[1]) == second, "kept alive on the same daphne"
        api.close()

        def lab_messages(ws):
            seen = []
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and not any(m["type"] == "lab.state" for m in seen):
                message = json.loads(ws.recv(timeout=deadline - time.monotonic()))
                lab = message.get("lab")
                if (lab.get("id") if isinstance(lab, dict) else lab) == started["lab"]:
                    seen.append(message)
            return seen

        on_first, on_second = lab_messages(on[first]), lab_messages(on[second])
        pushed = [m for m in on_first if m["type"] == "lab.state"]
        assert pushed, f"no lab.state for lab {started['lab']} on the first daphne's WebSocket: {on_first}"
        assert pushed[0] in on_second, "the second daphne's WebSocket got the same message"
    finally:
        sockets.close()
        _stop_portal(process)
    time.sleep(0.5)
    assert not _listening(web_port), "the shared port is closed once runportal has stopped"
