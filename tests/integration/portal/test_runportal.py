"""`manage.py runportal --demo` (what `make run` calls) on a bare setup: embedded Redis,
a SQLite file, the simulator; it serves the login page and the demo accounts log in."""

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
    yield process, web_port, redis_port, vcsim_port, output
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)


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

    os.kill(process.pid, signal.SIGTERM)
    process.wait(timeout=30)
    time.sleep(0.5)
    for port in (web_port, redis_port, vcsim_port):
        assert not _listening(port), f"port {port} still open after stop"
