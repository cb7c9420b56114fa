"""labs/vsphere/watch.py against the simulator: live changes, full resync, restarts."""

from __future__ import annotations

import threading
import time

import pytest

from labs import vsphere
from portal import simulator

pytestmark = pytest.mark.integration
FOLDER = "/DC0/vm/Watched"


class Collector:
    def __init__(self) -> None:
        self.batches: list[tuple[list[vsphere.VMUpdate], bool]] = []
        self.lock = threading.Lock()

    def __call__(self, updates, full) -> None:
        with self.lock:
            self.batches.append((updates, full))

    def full_resyncs(self) -> int:
        with self.lock:
            return sum(1 for _, full in self.batches if full)

    def wait_for(self, predicate, timeout=10.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                for updates, full in self.batches:
                    for update in updates:
                        if predicate(update, full):
                            return update
            time.sleep(0.05)
        raise AssertionError(f"no matching update in {self.batches}")


@pytest.fixture
def sim():
    server = simulator.start(args=["-demo"])
    yield server
    server.stop()


@pytest.fixture
def client(sim):
    return vsphere.get_client(vsphere.EndpointConfig(url=sim.url, username=sim.username, password=sim.password))


@pytest.fixture
def watching(client):
    collector, stop = Collector(), threading.Event()
    thread = threading.Thread(target=client.watch_vms, args=(FOLDER, collector, stop), kwargs={"max_wait": 1})
    thread.start()
    yield collector
    stop.set()
    thread.join(timeout=10)
    assert not thread.is_alive()


def _clone(client, name):
    source = client.get("/DC0/vm/Nestlab Templates/Nested vSphere 8 Lab/router").moref
    folder = client.ensure_folder("/DC0/vm", "Watched")
    return client.clone_vm(source, name=name, folder=folder, pool="/DC0/host/DC0_C0/Resources")


def test_a_power_change_made_elsewhere_arrives_within_a_second(client, watching):
    vm = _clone(client, "w1")
    watching.wait_for(lambda u, full: u.moref == vm and u.values.get("name") == "w1")
    client.power_on(vm)
    started = time.monotonic()
    watching.wait_for(lambda u, full: u.moref == vm and u.values.get("power_state") == "poweredOn")
    assert time.monotonic() - started < 1.5


def test_the_first_batch_is_a_full_resync_with_every_vm(client):
    vm = _clone(client, "w0")
    collector, stop = Collector(), threading.Event()
    thread = threading.Thread(target=client.watch_vms, args=(FOLDER, collector, stop), kwargs={"max_wait": 1})
    thread.start()
    try:
        update = collector.wait_for(lambda u, full: full and u.moref == vm)
        assert update.values["power_state"] == "poweredOff" and update.values["name"] == "w0"
    finally:
        stop.set()
        thread.join(timeout=10)


def test_a_destroyed_vm_is_reported_removed(client, watching):
    vm = _clone(client, "w2")
    watching.wait_for(lambda u, full: u.moref == vm)
    client.destroy_vm(vm)
    watching.wait_for(lambda u, full: u.moref == vm and u.removed)


def test_the_watcher_survives_a_vcenter_restart_and_resyncs(sim, client, watching):
    deadline = time.monotonic() + 10
    while watching.full_resyncs() < 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert watching.full_resyncs() == 1
    sim.restart()  # run-time objects are gone; the watcher must reconnect and rebuild its filter
    # After the restart the folder is made again and a new full resync arrives.
    client2 = vsphere.get_client(vsphere.EndpointConfig(url=sim.url, username=sim.username, password=sim.password))
    deadline = time.monotonic() + 20
    while watching.full_resyncs() < 2 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert watching.full_resyncs() >= 2, "a second full resync after the restart"
    vm = _clone(client2, "after-restart")
    client2.power_on(vm)
    watching.wait_for(lambda u, full: u.moref == vm and u.values.get("power_state") == "poweredOn", timeout=15)
