"""Lab port groups on a standard vSwitch (every host) or a distributed switch."""

from __future__ import annotations

import pytest

from labs.vsphere import InvalidArgument, Kind, NotFound, PortGroupSpec

from .conftest import CLUSTER, CLUSTER_PATH, DATACENTER, DV_SWITCH, VSWITCH, unique

pytestmark = pytest.mark.integration

HOSTS = ["DC0_C0_H0", "DC0_C0_H1", "DC0_C0_H2"]


def make(client, switch, spec, **kwargs):
    return client.ensure_port_group(datacenter=DATACENTER, cluster=CLUSTER, switch=switch, spec=spec, **kwargs)


def remove(client, switch, name):
    return client.remove_port_group(datacenter=DATACENTER, cluster=CLUSTER, switch=switch, name=name)


def test_standard_port_group_on_every_host(client, vc):
    spec = PortGroupSpec(name=unique("lab-net"), vlan_id=123)
    progress = []

    info = make(client, VSWITCH, spec, on_progress=lambda percent, _: progress.append(percent))

    groups = vc.host_port_groups(CLUSTER_PATH)
    assert sorted(groups) == HOSTS
    # The simulator keeps one port group per name: the first host records it, the
    # others answer DuplicateName (which the driver takes as "already there").
    made = groups[HOSTS[0]][spec.name]
    assert (made.vlanId, made.vswitchName) == (123, VSWITCH)
    security = made.policy.security
    assert (security.allowPromiscuous, security.forgedTransmits, security.macChanges) == (True, True, True)
    assert info.kind == Kind.NETWORK and info.hosts == tuple(HOSTS)
    assert info.moref == vc.find(f"/DC0/network/{spec.name}")._moId
    assert progress == [33, 66, 100]
    assert client.find_network(DATACENTER, spec.name).moref == info.moref

    assert remove(client, VSWITCH, spec.name) is True
    assert all(spec.name not in groups for groups in vc.host_port_groups(CLUSTER_PATH).values())


def test_standard_port_group_twice_is_harmless(client, vc):
    spec = PortGroupSpec(name=unique("lab-net"), vlan_id=7, promiscuous=False)
    make(client, VSWITCH, spec)

    again = make(client, VSWITCH, spec)

    assert again.hosts == tuple(HOSTS)
    assert vc.host_port_groups(CLUSTER_PATH)[HOSTS[0]][spec.name].policy.security.allowPromiscuous is False
    remove(client, VSWITCH, spec.name)
    assert remove(client, VSWITCH, spec.name) is False


def test_distributed_port_group(client, vc):
    spec = PortGroupSpec(name=unique("lab-dv"), vlan_id=321)

    info = make(client, DV_SWITCH, spec)

    assert info.kind == Kind.DV_PORTGROUP
    assert info.moref == vc.find(f"/DC0/network/{spec.name}")._moId
    config = vc.read("dvpg", info.moref, "config")["config"]
    port = config.defaultPortConfig
    assert config.distributedVirtualSwitch._moId == vc.find("/DC0/network/DVS0")._moId
    assert port.vlan.vlanId == 321
    assert port.securityPolicy.allowPromiscuous.value is True
    assert port.securityPolicy.forgedTransmits.value is True
    assert port.securityPolicy.macChanges.value is True
    assert make(client, DV_SWITCH, spec).moref == info.moref  # already there

    assert remove(client, DV_SWITCH, spec.name) is True
    assert not vc.exists("dvpg", info.moref)
    assert remove(client, DV_SWITCH, spec.name) is False


def test_unknown_switch_is_not_found(client):
    with pytest.raises(NotFound) as caught:
        make(client, "vSwitch9", PortGroupSpec(name=unique("x")))
    assert "has no switch 'vSwitch9' (it has: vSwitch0)" in str(caught.value)


@pytest.mark.parametrize("spec", [PortGroupSpec(name="x", vlan_id=4095), PortGroupSpec(name=" ")])
def test_bad_specs_are_refused(client, spec):
    with pytest.raises(InvalidArgument):
        make(client, VSWITCH, spec)


def test_list_networks(client):
    names = {info.name: info.kind for info in client.list_networks(DATACENTER)}

    assert names["DC0_DVPG0"] == Kind.DV_PORTGROUP
    assert names["Nestlab-Lab-Template"] == Kind.NETWORK
    assert client.find_network(DATACENTER, "nope") is None
