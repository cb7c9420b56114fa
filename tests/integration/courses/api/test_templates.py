"""courses/api/views.py: lab templates, their networks, VMs and versions."""

import pytest

from courses.models import LabTemplate, TemplateNetwork, TemplateVM
from tests.factories import AdminFactory, EndpointFactory, InstructorFactory, StudentFactory
from tests.integration.courses.api.conftest import client_for, make_published_version, make_template

pytestmark = pytest.mark.django_db

URL = "/api/v1/templates/"

ESXI = {
    "role": "esxi-01",
    "source_moref": "vm-72",
    "source_name": "esxi-01",
    "source_path": "/DC0/vm/Nestlab Templates/Nested vSphere 8 Lab/esxi-01",
    "boot_order": 2,
    "nested_hv_required": True,
    "nic_networks": ["lab", "lab"],
}


def test_an_instructor_creates_a_template_and_owns_it():
    instructor, endpoint = InstructorFactory(), EndpointFactory()
    response = client_for(instructor).post(
        URL, {"name": "vSphere 8", "endpoint": endpoint.pk, "description": "Three hosts"}, format="json"
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["owners"] == [instructor.username]
    assert body["endpoint"] == endpoint.pk and body["endpoint_name"] == endpoint.name
    assert [network["name"] for network in body["networks"]] == ["lab"]
    assert body["vms"] == [] and body["vm_count"] == 0
    assert body["latest_version"] is None and body["unpublished_changes"] is True


def test_networks_can_be_named_at_creation():
    response = client_for(AdminFactory()).post(
        URL, {"name": "Storage", "endpoint": EndpointFactory().pk, "networks": ["lab", "storage"]}, format="json"
    )
    assert response.status_code == 201
    assert [network["name"] for network in response.json()["networks"]] == ["lab", "storage"]


def test_bad_template_input_is_named():
    response = client_for(InstructorFactory()).post(
        URL, {"name": "", "endpoint": 999999, "networks": ["not a slug"]}, format="json"
    )
    assert response.status_code == 400
    assert set(response.json()["errors"]) == {"name", "endpoint", "networks"}


def test_instructors_read_every_template_and_students_none():
    mine, theirs = InstructorFactory(), InstructorFactory()
    own = make_template(mine, vms=2, name="A")
    other = make_template(theirs, name="B")

    listed = client_for(mine).get(URL).json()["results"]
    assert [(row["id"], row["vm_count"]) for row in listed] == [(own.pk, 2), (other.pk, 0)]
    detail = client_for(mine).get(f"{URL}{other.pk}/")
    assert detail.status_code == 200 and detail.json()["owners"] == [theirs.username]

    student = client_for(StudentFactory())
    for response in (student.get(URL), student.get(f"{URL}{own.pk}/")):
        assert response.status_code == 403
        assert response.json()["detail"] == "Only instructors and admins can use templates."
    assert client_for().get(URL).status_code == 403
    assert client_for(mine).get(f"{URL}999999/").status_code == 404


def test_owners_and_admins_edit_and_other_instructors_cannot():
    owner = InstructorFactory()
    template = make_template(owner)
    revision = template.revision

    response = client_for(owner).patch(f"{URL}{template.pk}/", {"manual": "# Step 1"}, format="json")
    assert response.status_code == 200
    assert response.json()["manual"] == "# Step 1" and response.json()["revision"] == revision + 1

    response = client_for(AdminFactory()).put(
        f"{URL}{template.pk}/",
        {"name": "Renamed", "endpoint": template.endpoint_id, "linked_clones": False},
        format="json",
    )
    assert response.status_code == 200
    assert response.json()["name"] == "Renamed" and response.json()["linked_clones"] is False

    response = client_for(InstructorFactory()).patch(f"{URL}{template.pk}/", {"name": "Mine now"}, format="json")
    assert response.status_code == 403
    assert response.json()["detail"] == "You cannot edit this template."
    assert LabTemplate.objects.get().name == "Renamed"


def test_a_template_with_vms_cannot_move_to_another_vcenter():
    owner = InstructorFactory()
    template = make_template(owner, vms=1)
    response = client_for(owner).patch(f"{URL}{template.pk}/", {"endpoint": EndpointFactory().pk}, format="json")
    assert response.status_code == 400
    assert response.json()["errors"] == {"endpoint": ["Remove the template's VMs before moving it to another vCenter."]}


# Networks


def test_networks_are_added_and_removed_by_owners():
    owner = InstructorFactory()
    template = make_template(owner)
    client = client_for(owner)
    base = f"{URL}{template.pk}/networks/"

    response = client.post(base, {"name": "storage", "description": "iSCSI"}, format="json")
    assert response.status_code == 201
    network_id = response.json()["id"]
    assert [row["name"] for row in client.get(base).json()["results"]] == ["lab", "storage"]

    again = client.post(base, {"name": "storage"}, format="json")
    assert again.status_code == 400
    assert again.json()["errors"] == {"name": ["The template already has a network called storage."]}

    assert client.delete(f"{base}{network_id}/").status_code == 204
    assert not TemplateNetwork.objects.filter(pk=network_id).exists()


def test_a_network_in_use_stays():
    owner = InstructorFactory()
    template = make_template(owner, vms=1)
    lab = template.networks.get(name="lab")
    response = client_for(owner).delete(f"{URL}{template.pk}/networks/{lab.pk}/")
    assert response.status_code == 400
    assert response.json()["detail"] == "Network lab is still used by esxi-01."


def test_others_cannot_change_networks():
    template = make_template(InstructorFactory())
    lab = template.networks.get()
    other = client_for(InstructorFactory())
    assert other.get(f"{URL}{template.pk}/networks/").status_code == 200
    assert other.post(f"{URL}{template.pk}/networks/", {"name": "x"}, format="json").status_code == 403
    assert other.delete(f"{URL}{template.pk}/networks/{lab.pk}/").status_code == 403
    student = client_for(StudentFactory())
    assert student.get(f"{URL}{template.pk}/networks/").status_code == 403
    assert other.delete(f"{URL}999999/networks/{lab.pk}/").status_code == 404
    assert TemplateNetwork.objects.count() == 1


# VMs


def test_an_owner_adds_a_picked_vm_with_its_networks():
    owner = InstructorFactory()
    template = make_template(owner)
    response = client_for(owner).post(f"{URL}{template.pk}/vms/", ESXI, format="json")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert {key: body[key] for key in ESXI} == ESXI
    assert body["cpu_override"] is None and body["memory_mb_override"] is None
    vm = TemplateVM.objects.get(pk=body["id"])
    assert [nic.network.name for nic in vm.nics.all()] == ["lab", "lab"]

    detail = client_for(owner).get(f"{URL}{template.pk}/").json()
    assert [row["role"] for row in detail["vms"]] == ["esxi-01"]
    assert detail["vms"][0]["nic_networks"] == ["lab", "lab"]


def test_bad_vms_are_refused_with_the_field_named():
    owner = InstructorFactory()
    template = make_template(owner, vms=1)
    client = client_for(owner)
    base = f"{URL}{template.pk}/vms/"

    unknown = client.post(base, {**ESXI, "role": "esxi-02", "nic_networks": ["storage"]}, format="json")
    assert unknown.status_code == 400
    assert unknown.json()["errors"] == {
        "nic_networks": ["No template network called storage; add it to the template first."]
    }
    duplicate = client.post(base, {**ESXI, "source_moref": "vm-999"}, format="json")
    assert duplicate.status_code == 400
    assert duplicate.json()["errors"] == {"role": ["The template already has a VM with the role esxi-01."]}
    sizes = client.post(base, {**ESXI, "role": "big", "cpu_override": 0, "memory_mb_override": 64}, format="json")
    assert sizes.status_code == 400
    assert set(sizes.json()["errors"]) == {"cpu_override", "memory_mb_override"}
    missing = client.post(base, {"role": "router"}, format="json")
    assert missing.status_code == 400
    assert set(missing.json()["errors"]) == {"source_moref", "source_name"}
    assert TemplateVM.objects.count() == 1


def test_an_owner_changes_a_vm_but_not_its_source():
    owner = InstructorFactory()
    template = make_template(owner, vms=1)
    template.networks.create(name="storage")
    vm = template.vms.get()
    url = f"{URL}{template.pk}/vms/{vm.pk}/"

    response = client_for(owner).patch(
        url,
        {"role": "host-a", "cpu_override": 8, "nic_networks": ["lab", "storage"], "source_moref": "vm-1"},
        format="json",
    )
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["role"] == "host-a" and body["cpu_override"] == 8
    assert body["nic_networks"] == ["lab", "storage"]
    assert body["source_moref"] == "vm-100", "the source VM is read-only"

    response = client_for(owner).put(url, {"role": "host-b", "boot_order": 3}, format="json")
    assert response.status_code == 200
    assert response.json()["nic_networks"] == ["lab", "storage"], "PUT without nic_networks keeps them"
    assert client_for(owner).get(url).json()["role"] == "host-b"


def test_others_cannot_change_vms():
    template = make_template(InstructorFactory(), vms=1)
    vm = template.vms.get()
    other = client_for(InstructorFactory())
    base = f"{URL}{template.pk}/vms/"
    assert other.get(base).json()["count"] == 1
    assert other.post(base, {**ESXI, "role": "x"}, format="json").status_code == 403
    assert other.patch(f"{base}{vm.pk}/", {"role": "x"}, format="json").status_code == 403
    assert other.delete(f"{base}{vm.pk}/").status_code == 403
    assert client_for(StudentFactory()).get(base).status_code == 403
    other_template = make_template(InstructorFactory())
    assert other.get(f"{URL}{other_template.pk}/vms/{vm.pk}/").status_code == 404
    assert TemplateVM.objects.get().role == "esxi-01"


def test_an_owner_removes_a_vm():
    owner = InstructorFactory()
    template = make_template(owner, vms=2)
    vm = template.vms.first()
    assert client_for(owner).delete(f"{URL}{template.pk}/vms/{vm.pk}/").status_code == 204
    assert template.vms.count() == 1


# Versions


def test_versions_are_listed_newest_first_with_their_sizes():
    owner = InstructorFactory()
    template = make_template(owner, vms=2)
    first = make_published_version(owner, template)
    client_for(owner).patch(f"{URL}{template.pk}/", {"description": "v2"}, format="json")
    second = make_published_version(owner, template)

    reader = client_for(InstructorFactory())
    rows = reader.get(f"{URL}{template.pk}/versions/").json()["results"]
    assert [row["number"] for row in rows] == [2, 1]
    assert rows[0]["id"] == second.pk
    assert rows[0]["state"] == "published" and rows[0]["published_at"]
    assert (rows[0]["vcpu_total"], rows[0]["memory_mb_total"], rows[0]["disk_gb_total"]) == (8, 16384, 40.0)
    assert rows[0]["created_by"] == owner.username and rows[0]["error"] == ""
    assert [vm["role"] for vm in rows[0]["spec"]["vms"]] == ["esxi-01", "esxi-02"]

    detail = reader.get(f"{URL}{template.pk}/versions/{first.pk}/")
    assert detail.status_code == 200 and detail.json()["number"] == 1
    assert client_for(owner).get(f"{URL}{template.pk}/").json()["latest_version"] == 2
    assert client_for(owner).get(f"{URL}{template.pk}/").json()["unpublished_changes"] is False
    assert client_for(StudentFactory()).get(f"{URL}{template.pk}/versions/").status_code == 403
    assert reader.post(f"{URL}{template.pk}/versions/", {}, format="json").status_code == 405


def test_a_300_kb_manual_is_a_400_in_words_and_changes_nothing():
    """Finding 4: 300 KB of nested markup tied a web server up for 15 s on every page view."""
    owner = InstructorFactory()
    template = make_template(owner)
    response = client_for(owner).patch(f"{URL}{template.pk}/", {"manual": "[" * 300_000}, format="json")
    assert response.status_code == 400
    assert "no more than 65536 characters" in " ".join(response.json()["errors"]["manual"])
    template.refresh_from_db()
    assert template.manual == "" and template.manual_html == ""


def test_publish_errors_and_guest_user_names_are_for_those_who_may_edit_the_template():
    """Any instructor may read a template (to base a course on it); why a publish failed (vCenter's
    words, its host) and the guest account's user name (a credential hint) are for its owners
    and admins, on the API and the page alike."""
    from django.test import Client

    from courses import services
    from courses.models import VersionBaseline

    owner, other = InstructorFactory(), InstructorFactory()
    version = make_published_version(owner)
    template = version.template
    extra = EndpointFactory()
    failure = "Cannot talk to vCenter at vc-b.internal.example.edu:443: the connection was refused."
    VersionBaseline.objects.create(version=version, endpoint=extra, state="failed", error=failure)
    vm = template.vms.get()
    services.template_vm_update(vm=vm, actor=owner, guest_username="labgrader", guest_password="Gu3st-SECRET")
    LabTemplate.objects.filter(pk=template.pk).update(last_publish_failure=[failure])

    def seen(user) -> str:
        api = client_for(user)
        vms = api.get(f"{URL}{template.pk}/vms/")
        versions = api.get(f"{URL}{template.pk}/versions/")
        detail = api.get(f"{URL}{template.pk}/")
        assert {vms.status_code, versions.status_code, detail.status_code} == {200}
        page = Client()
        page.force_login(user)
        return (
            str([vms.json(), versions.json(), detail.json()]) + page.get(f"/templates/{template.pk}/").content.decode()
        )

    hidden = seen(other)
    assert "vc-b.internal.example.edu" not in hidden and "labgrader" not in hidden
    assert "the template's owners and admins see why" in hidden
    assert client_for(other).get(f"{URL}{template.pk}/vms/").json()["results"][0]["guest_username"] is None
    for user in (owner, AdminFactory()):
        shown = seen(user)
        assert "vc-b.internal.example.edu:443" in shown and "labgrader" in shown
