"""labs/api/views.py template_publish end to end: the API, a real Celery worker and the simulator."""

import pytest
from rest_framework.test import APIClient

from labs import vsphere
from tests.factories import InstructorFactory, simulator_endpoint
from tests.support.processes import wait_for

pytestmark = pytest.mark.integration

LAB_FOLDER = "/DC0/vm/Nestlab Templates/Nested vSphere 8 Lab"
FINAL = {"succeeded", "failed", "cancelled"}


def _client(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def _finished(client: APIClient, operation_id: int) -> dict:
    def check():
        operation = client.get(f"/api/v1/operations/{operation_id}/").json()
        return operation if operation["state"] in FINAL else None

    return wait_for(check, timeout=120, message=f"operation {operation_id} to finish")


@pytest.fixture
def baselines_removed(vcsim):
    """Remove the baseline snapshots a test's publish took: the simulator is shared by the session."""
    taken: list[dict] = []
    yield taken
    client = vsphere.get_client(
        vsphere.EndpointConfig(url=vcsim.url, username=vcsim.username, password=vcsim.password, verify_tls=False)
    )
    for vm in taken:
        client.remove_snapshot(vm["source_moref"], vm["baseline_snapshot"], deadline=60)


def test_the_demo_lab_is_published_through_the_api(celery_worker, vcsim, baselines_removed):
    client = _client(InstructorFactory())
    endpoint = simulator_endpoint(vcsim)
    template = client.post("/api/v1/templates/", {"name": "Nested vSphere 8 Lab", "endpoint": endpoint.pk}).json()

    picked = client.get(f"/api/v1/endpoints/{endpoint.pk}/inventory/", {"path": LAB_FOLDER}).json()
    infos = {}
    for item in picked:
        info = client.get(f"/api/v1/endpoints/{endpoint.pk}/vms/{item['moref']}/").json()
        infos[item["name"]] = info
        added = client.post(
            f"/api/v1/templates/{template['id']}/vms/",
            {
                "role": item["name"],
                "source_moref": item["moref"],
                "source_name": item["name"],
                "source_path": item["path"],
                "boot_order": 1 if item["name"] == "router" else 2,
                "nested_hv_required": info["nested_hv"],
                "nic_networks": ["lab"] * len(info["nics"]),
            },
            format="json",
        )
        assert added.status_code == 201, added.json()
    assert sorted(infos) == ["esxi-01", "esxi-02", "esxi-03", "router", "vcsa"]

    response = client.post(f"/api/v1/templates/{template['id']}/publish/")
    assert response.status_code == 202, response.json()
    operation = _finished(client, response.json()["id"])
    version = client.get(f"/api/v1/templates/{template['id']}/versions/{operation['template_version']}/").json()
    baselines_removed.extend(vm for vm in version["spec"]["vms"] if vm.get("baseline_snapshot"))

    assert operation["state"] == "succeeded", operation["error"]
    assert operation["progress"] == 100
    assert version["state"] == "published" and version["published_at"] and version["error"] == ""
    assert version["vcpu_total"] == sum(info["num_cpu"] for info in infos.values())
    assert version["memory_mb_total"] == sum(info["memory_mb"] for info in infos.values())
    assert version["disk_gb_total"] == round(sum(info["disk_gb"] for info in infos.values()), 1)
    assert len(baselines_removed) == 5, "every VM has its baseline snapshot recorded"
    assert {vm["role"]: vm["guest_nested_hv"] for vm in version["spec"]["vms"]}["esxi-01"] is True
    detail = client.get(f"/api/v1/templates/{template['id']}/").json()
    assert detail["latest_version"] == version["number"] and detail["unpublished_changes"] is False


def test_a_picked_vm_that_vanished_fails_the_publish_and_is_named(celery_worker, vcsim):
    client = _client(InstructorFactory())
    endpoint = simulator_endpoint(vcsim)
    template = client.post("/api/v1/templates/", {"name": "Stale", "endpoint": endpoint.pk}).json()
    added = client.post(
        f"/api/v1/templates/{template['id']}/vms/",
        {"role": "esxi-04", "source_moref": "vm-999999", "source_name": "old-esxi-04", "nic_networks": ["lab"]},
        format="json",
    )
    assert added.status_code == 201

    response = client.post(f"/api/v1/templates/{template['id']}/publish/")
    assert response.status_code == 202
    operation = _finished(client, response.json()["id"])
    assert operation["state"] == "failed"
    assert "esxi-04 (old-esxi-04) is no longer in vCenter" in operation["error"]
    assert operation["template_version"] is None
    assert client.get(f"/api/v1/templates/{template['id']}/versions/").json()["results"] == [], (
        "a failed publish leaves no version (and uses up no number)"
    )
