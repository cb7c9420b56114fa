""" "Test connection": each placement check passes or fails with words."""

from __future__ import annotations

import pytest

from labs import vsphere
from portal import simulator

from .conftest import DATACENTER, DATASTORE, DV_SWITCH, VSWITCH, endpoint_for

pytestmark = pytest.mark.integration


def checks(report):
    return {check.name: check for check in report.checks}


def test_everything_there_with_a_distributed_switch(client, vc):
    report = client.check_placement(datacenter=DATACENTER, compute="DC0_C0", datastore=DATASTORE, switch=DV_SWITCH)

    assert report.ok, report.failures()
    found = checks(report)
    assert list(found) == ["vCenter", "datacenter", "compute", "datastore", "switch"]
    assert found["datacenter"].moref == vc.find("/DC0")._moId
    assert found["compute"].moref == vc.find("/DC0/host/DC0_C0")._moId
    assert "3 host(s)" in found["compute"].detail
    assert found["datastore"].moref == vc.find("/DC0/datastore/LocalDS_0")._moId
    assert "free of" in found["datastore"].detail
    assert found["switch"].detail == "Distributed switch DVS0."


def test_a_standard_vswitch_on_every_host_and_a_resource_pool(client):
    report = client.check_placement(
        datacenter="/DC0", compute="/DC0/host/DC0_C0/Resources", datastore=DATASTORE, switch=VSWITCH
    )

    assert report.ok, report.failures()
    found = checks(report)
    assert "resource pool" in found["compute"].detail
    assert found["switch"].detail == "Standard vSwitch vSwitch0 on all 3 host(s)."


def test_each_missing_piece_fails_with_words(client):
    report = client.check_placement(datacenter=DATACENTER, compute="DC9_C9", datastore="SAN-1", switch="vSwitch7")

    assert not report.ok
    found = checks(report)
    assert found["vCenter"].ok and found["datacenter"].ok
    assert found["compute"].detail == "No cluster, host or resource pool 'DC9_C9' in /DC0."
    assert found["datastore"].detail == "No datastore 'SAN-1' (this datacenter has: LocalDS_0)."
    assert "vSwitch7" in found["switch"].detail and not found["switch"].ok
    assert [check.name for check in report.failures()] == ["compute", "datastore", "switch"]


def test_a_standard_switch_missing_on_the_hosts(client):
    report = client.check_placement(datacenter=DATACENTER, compute="DC0_C0", datastore=DATASTORE, switch="vSwitch9")

    switch = checks(report)["switch"]
    assert not switch.ok
    assert "no such vSwitch on: DC0_C0_H0, DC0_C0_H1, DC0_C0_H2" in switch.detail


def test_a_missing_datacenter_skips_the_rest(client):
    report = client.check_placement(datacenter="DC7", compute="DC0_C0", datastore=DATASTORE, switch=DV_SWITCH)

    found = checks(report)
    assert found["datacenter"].detail == "No datacenter 'DC7'."
    assert all(not found[name].ok and "not checked" in found[name].detail for name in ("compute", "switch"))


def test_no_connection_is_a_failed_check_not_an_exception(vcsim):
    url = f"http://127.0.0.1:{simulator.free_port()}/sdk"
    client = vsphere.get_client(endpoint_for(vcsim, url=url))

    report = client.check_placement(datacenter=DATACENTER, compute="DC0_C0", datastore=DATASTORE, switch=DV_SWITCH)

    found = checks(report)
    assert not found["vCenter"].ok and "refused" in found["vCenter"].detail
    assert [check.ok for check in report.checks] == [False] * 5


def test_a_wrong_password_is_a_failed_check(vcsim):
    client = vsphere.get_client(endpoint_for(vcsim, password="wrong"))

    report = client.check_placement(datacenter=DATACENTER, compute="DC0_C0", datastore=DATASTORE, switch=DV_SWITCH)

    assert "user name or password" in checks(report)["vCenter"].detail


def test_a_vcenter_gone_since_the_session_logged_in_is_a_failed_check_not_an_exception():
    """The session remembers what vCenter said at login; the check must ask again."""
    own = simulator.start(args=["-demo"])
    try:
        client = vsphere.get_client(endpoint_for(own))
        assert (
            client.check_placement(datacenter=DATACENTER, compute="DC0_C0", datastore=DATASTORE, switch=DV_SWITCH)
            .checks[0]
            .ok
        )
    finally:
        own.stop()
    report = client.check_placement(datacenter=DATACENTER, compute="DC0_C0", datastore=DATASTORE, switch=DV_SWITCH)
    found = checks(report)
    assert not found["vCenter"].ok and "refused" in found["vCenter"].detail
    assert [check.ok for check in report.checks] == [False] * 5
