"""The simulator under load (issue 16: it stopped accepting connections during a 500-student run).

Each test starts a simulator of its own: these make it write a lot, kill it, or load it, which
the session's shared simulator must not see. Sizes are bounded (a few seconds each).
"""

from __future__ import annotations

import os
import signal
import urllib.request

import pytest

from portal import simulator

pytestmark = pytest.mark.integration


@pytest.fixture
def own_vcsim(tmp_path):
    server = simulator.start(args=["-demo"], log_path=tmp_path / "vcsim.log")
    yield server
    server.stop()


def test_a_line_that_is_not_utf8_does_not_stop_the_simulator(own_vcsim):
    """The launcher echoes a rules body as it got it. Its reader used to die on the first byte
    that is not UTF-8; then nobody read the pipe, and once its 64 KB were full every goroutine
    that logs blocked: the simulator stopped answering (after about 700 rule changes here)."""
    request = urllib.request.Request(
        own_vcsim.base_url + simulator.CONFIG_PATH, data=b'{"fail": ["CloneVM_Task:caf\xe9"]}', method="PUT"
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200
    # Each change is a log line of about 100 bytes: 3000 of them are far more than a pipe holds.
    for number in range(3000):
        own_vcsim.configure(fail=[f"CloneVM_Task:lab-{number}"])
    assert own_vcsim.get_config()["fail"] == ["CloneVM_Task:lab-2999"]
    log = own_vcsim.log_path.read_text(encoding="utf-8")
    assert "caf\ufffd" in log  # the odd byte, replaced
    assert "lab-2999" in log
    assert simulator.URL_MARKER in log


def test_a_launcher_that_dies_is_reported_and_keeps_its_log(tmp_path):
    server = simulator.start(log_path=tmp_path / "vcsim.log")
    try:
        server.check()  # running: nothing to say
        os.killpg(server.process.pid, signal.SIGKILL)  # our own launcher, as a crash would end it
        server.process.wait(timeout=10)
        assert not server.alive
        with pytest.raises(simulator.SimulatorError, match=r"killed by signal 9; its log is .*vcsim\.log"):
            server.check()
    finally:
        server.stop()
    assert simulator.URL_MARKER in (tmp_path / "vcsim.log").read_text()  # kept: it is the evidence


def test_a_clean_stop_removes_the_log(tmp_path):
    server = simulator.start(log_path=tmp_path / "vcsim.log")
    assert (tmp_path / "vcsim.log").exists()
    server.stop()
    assert not (tmp_path / "vcsim.log").exists()
