"""courses/api/views.py: vCenter endpoints (admins only; the password is write-only)."""

import logging

import pytest

from courses.models import VCenterEndpoint
from labs import services as lab_services
from tests.factories import AdminFactory, EndpointFactory, InstructorFactory, StudentFactory
from tests.integration.courses.api.conftest import client_for, make_template

pytestmark = pytest.mark.django_db

URL = "/api/v1/endpoints/"
SECRET = "Zq8-vc-Secret-Do-Not-Echo"

NEW = {
    "name": "Lab vCenter",
    "url": "https://vc.example.edu",
    "username": "nestlab@vsphere.local",
    "password": SECRET,
    "verify_tls": True,
    "datacenter": "DC0",
    "compute_path": "/DC0/host/DC0_C0",
    "datastore": "LocalDS_0",
    "lab_switch": "vSwitch0",
    "vlan_min": 2000,
    "vlan_max": 2099,
    "concurrency_limit": 4,
}


@pytest.fixture(autouse=True)
def no_queue(monkeypatch):
    monkeypatch.setattr(lab_services.dispatch, "send_operation", lambda *args, **kwargs: None)


def test_an_admin_connects_a_vcenter_and_the_password_is_stored_encrypted():
    response = client_for(AdminFactory()).post(URL, NEW, format="json")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert "password" not in body and "password_ciphertext" not in body
    assert body["name"] == "Lab vCenter" and body["concurrency_limit"] == 4
    endpoint = VCenterEndpoint.objects.get(pk=body["id"])
    assert endpoint.get_password() == SECRET
    assert SECRET not in endpoint.password_ciphertext


def test_a_new_endpoint_needs_a_password():
    response = client_for(AdminFactory()).post(URL, {**NEW, "password": ""}, format="json")
    assert response.status_code == 400
    assert response.json()["errors"] == {"password": ["A new endpoint needs its password."]}
    assert not VCenterEndpoint.objects.exists()


def test_bad_fields_are_named():
    response = client_for(AdminFactory()).post(URL, {**NEW, "vlan_min": 3000, "vlan_max": 2000}, format="json")
    assert response.status_code == 400
    assert response.json()["errors"] == {"vlan_max": ["The VLAN range ends before it starts."]}

    response = client_for(AdminFactory()).post(URL, {**NEW, "vlan_max": 5000, "name": ""}, format="json")
    assert response.status_code == 400
    assert set(response.json()["errors"]) == {"vlan_max", "name"}


def test_an_empty_password_on_update_keeps_the_stored_one():
    endpoint = EndpointFactory(password="old-password")
    admin = client_for(AdminFactory())

    response = admin.patch(f"{URL}{endpoint.pk}/", {"datastore": "LocalDS_1", "password": ""}, format="json")
    assert response.status_code == 200, response.json()
    endpoint.refresh_from_db()
    assert endpoint.datastore == "LocalDS_1" and endpoint.get_password() == "old-password"

    # Same address and TLS check as stored: a changed one needs the password (finding 3).
    response = admin.put(f"{URL}{endpoint.pk}/", {**NEW, "verify_tls": False, "password": ""}, format="json")
    assert response.status_code == 200, response.json()
    endpoint.refresh_from_db()
    assert endpoint.name == "Lab vCenter" and endpoint.get_password() == "old-password"

    response = admin.patch(f"{URL}{endpoint.pk}/", {"password": "new-password"}, format="json")
    assert response.status_code == 200
    endpoint.refresh_from_db()
    assert endpoint.get_password() == "new-password"


def test_admins_list_and_read_endpoints():
    first, second = EndpointFactory(name="A"), EndpointFactory(name="B")
    admin = client_for(AdminFactory())
    listed = admin.get(URL).json()
    assert [row["id"] for row in listed["results"]] == [first.pk, second.pk]
    assert admin.get(f"{URL}{second.pk}/").json()["name"] == "B"
    assert admin.get(f"{URL}999999/").status_code == 404


def test_an_unused_endpoint_can_be_removed_and_a_used_one_cannot():
    admin = AdminFactory()
    unused, used = EndpointFactory(), EndpointFactory(name="Busy")
    make_template(InstructorFactory(), endpoint=used)
    client = client_for(admin)

    assert client.delete(f"{URL}{unused.pk}/").status_code == 204
    assert not VCenterEndpoint.objects.filter(pk=unused.pk).exists()

    response = client.delete(f"{URL}{used.pk}/")
    assert response.status_code == 400
    assert response.json()["detail"] == "Busy still hosts 1 template(s); delete or move them first."


def test_an_endpoint_with_recorded_operations_is_refused_in_words():
    admin = AdminFactory()
    endpoint = EndpointFactory(name="Checked")
    lab_services.endpoint_check_start(endpoint=endpoint, actor=admin)
    response = client_for(admin).delete(f"{URL}{endpoint.pk}/")
    assert response.status_code == 400
    assert "Checked" in response.json()["detail"] and "operation" in response.json()["detail"]
    assert VCenterEndpoint.objects.filter(pk=endpoint.pk).exists()


def test_an_endpoint_a_versions_baseline_is_on_is_refused_naming_the_baselines():
    """The refusal said "1 recorded operation(s) refer to it" when baselines, not operations, held it."""
    from courses.models import VersionBaseline
    from tests.integration.courses.api.conftest import make_published_version

    admin = AdminFactory()
    version = make_published_version(InstructorFactory())
    extra = EndpointFactory(name="Second")
    VersionBaseline.objects.create(version=version, endpoint=extra, state="ready")
    response = client_for(admin).delete(f"{URL}{extra.pk}/")
    assert response.status_code == 400
    assert response.json()["detail"] == "Second cannot be removed: 1 version baseline refers to it."
    assert VCenterEndpoint.objects.filter(pk=extra.pk).exists()


def test_instructors_list_endpoint_names_only_to_pick_one_for_a_template():
    first, second = EndpointFactory(name="A"), EndpointFactory(name="B")
    listed = client_for(InstructorFactory()).get(URL)
    assert listed.status_code == 200
    assert listed.json()["results"] == [{"id": first.pk, "name": "A"}, {"id": second.pk, "name": "B"}]
    student = client_for(StudentFactory()).get(URL)
    assert student.status_code == 403
    assert student.json()["detail"] == "Only admins can manage vCenters."


@pytest.mark.parametrize("factory", [InstructorFactory, StudentFactory, None], ids=["instructor", "student", "anon"])
def test_only_admins_touch_endpoints(factory):
    endpoint = EndpointFactory()
    client = client_for(factory() if factory else None)
    answers = [
        client.post(URL, NEW, format="json"),
        client.get(f"{URL}{endpoint.pk}/"),
        client.put(f"{URL}{endpoint.pk}/", NEW, format="json"),
        client.patch(f"{URL}{endpoint.pk}/", {"name": "x"}, format="json"),
        client.delete(f"{URL}{endpoint.pk}/"),
        client.post(f"{URL}{endpoint.pk}/check/"),
    ]
    assert [answer.status_code for answer in answers] == [403] * len(answers)
    if factory:
        assert answers[0].json()["detail"] == "Only admins can manage vCenters."
    if factory is not InstructorFactory:  # instructors list names (test above)
        assert client.get(URL).status_code == 403
    assert VCenterEndpoint.objects.get().name == endpoint.name
    assert VCenterEndpoint.objects.count() == 1


def test_the_password_is_in_no_answer_and_no_log(caplog):
    """Every endpoint route, good and bad answers alike (vCenter routes: tests/integration/labs/api)."""
    caplog.set_level(logging.DEBUG)
    admin = client_for(AdminFactory())
    created = admin.post(URL, NEW, format="json")
    endpoint = VCenterEndpoint.objects.get(pk=created.json()["id"])
    base = f"{URL}{endpoint.pk}/"
    answers = [
        created,
        admin.post(URL, NEW, format="json"),  # 400: the name is taken
        admin.post(URL, {**NEW, "vlan_max": 1}, format="json"),
        admin.get(URL),
        admin.get(base),
        admin.put(base, NEW, format="json"),
        admin.patch(base, {"password": SECRET, "vlan_min": 0}, format="json"),
        admin.patch(base, {"password": SECRET}, format="json"),
        admin.post(f"{base}check/"),
        client_for(InstructorFactory()).patch(base, {"password": SECRET}, format="json"),
    ]
    assert [answer.status_code for answer in answers] == [201, 400, 400, 200, 200, 200, 400, 200, 202, 403]
    for answer in answers:
        assert SECRET.encode() not in answer.content
        assert endpoint.password_ciphertext.encode() not in answer.content
        assert b"password_ciphertext" not in answer.content
    assert SECRET not in caplog.text


def test_a_changed_address_without_the_password_is_refused_and_nothing_changes():
    """Finding 3 (docs/security.md): the stored password followed a changed URL to a new host."""
    endpoint = EndpointFactory(url="https://vc.example.edu")
    client = client_for(AdminFactory())
    response = client.patch(f"{URL}{endpoint.pk}/", {"url": "https://attacker.example.net"}, format="json")
    assert response.status_code == 400
    assert response.json()["errors"] == {
        "password": ["The address changed: type the password again (it is sent only to this vCenter)."]
    }
    assert VCenterEndpoint.objects.get(pk=endpoint.pk).url == "https://vc.example.edu"
    again = client.patch(
        f"{URL}{endpoint.pk}/", {"url": "https://vc2.example.edu", "password": "new-secret"}, format="json"
    )
    assert again.status_code == 200, again.json()
    assert VCenterEndpoint.objects.get(pk=endpoint.pk).get_password() == "new-secret"


def test_plain_http_with_tls_verification_is_refused():
    response = client_for(AdminFactory()).post(URL, {**NEW, "url": "http://vc.example.edu"}, format="json")
    assert response.status_code == 400
    assert "http:// sends the password unencrypted" in response.json()["errors"]["url"][0]
