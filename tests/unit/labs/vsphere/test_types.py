"""The dataclasses at the driver's edge."""

from __future__ import annotations

import dataclasses

import pytest

from labs.vsphere import EndpointConfig, PlacementCheck, PlacementReport, SnapshotInfo, VMInfo


def test_endpoint_config_hides_the_password_and_is_hashable():
    endpoint = EndpointConfig(url="https://vc.example.edu", username="svc-nestlab", password="hunter2")

    assert "hunter2" not in repr(endpoint)
    assert {endpoint: 1}[EndpointConfig(url="https://vc.example.edu", username="svc-nestlab", password="hunter2")]
    assert endpoint.verify_tls is True
    assert endpoint.keepalive_after < 30 * 60  # vCenter's default idle timeout
    with pytest.raises(dataclasses.FrozenInstanceError):
        endpoint.url = "x"  # type: ignore[misc]


def test_placement_report():
    report = PlacementReport(
        (PlacementCheck("vCenter", True, "ok"), PlacementCheck("datastore", False, "No datastore 'x'."))
    )

    assert report.ok is False
    assert [check.name for check in report.failures()] == ["datastore"]
    assert PlacementReport((PlacementCheck("vCenter", True, "ok"),)).ok


def test_vm_info_walks_all_snapshots():
    leaf = SnapshotInfo("snapshot-3", "c", "", None, "poweredOn")
    tree = SnapshotInfo(
        "snapshot-1",
        "a",
        "",
        None,
        "poweredOff",
        children=(SnapshotInfo("snapshot-2", "b", "", None, "poweredOff", children=(leaf,)),),
    )
    info = VMInfo(
        moref="vm-1",
        name="x",
        path="/DC0/vm/x",
        power_state="poweredOff",
        num_cpu=1,
        memory_mb=1024,
        disk_gb=0.0,
        nested_hv=False,
        is_template=False,
        guest_ip=None,
        overall_status="green",
        annotation="",
        custom_values={},
        nics=(),
        snapshots=(tree,),
    )

    assert [s.name for s in info.all_snapshots()] == ["a", "b", "c"]
