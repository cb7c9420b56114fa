"""labs/api/views.py: operations, the endpoint check, the vCenter picker and publishing."""

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from courses import services as course_services
from courses.models import TemplateVersion
from labs import services
from labs.models import Operation
from portal.simulator import free_port
from tests.factories import (
    AdminFactory,
    EndpointFactory,
    InstructorFactory,
    StudentFactory,
    open_course,
    simulator_endpoint,
)
from tests.integration.labs.api.conftest import ready_lab

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def no_queue(monkeypatch):
    monkeypatch.setattr(services.dispatch, "send_operation", lambda *args, **kwargs: None)


def _client(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def test_admin_starts_an_endpoint_check_and_gets_202_with_the_operation():
    endpoint = EndpointFactory()
    response = _client(AdminFactory()).post(f"/api/v1/endpoints/{endpoint.pk}/check/")
    assert response.status_code == 202
    assert response.json()["state"] == "queued"
    assert response.json()["kind"] == "endpoint_check"
    assert Operation.objects.get(pk=response.json()["id"]).endpoint == endpoint


def test_a_student_gets_403_with_words():
    endpoint = EndpointFactory()
    response = _client(StudentFactory()).post(f"/api/v1/endpoints/{endpoint.pk}/check/")
    assert response.status_code == 403
    assert response.json()["detail"] == "Only admins can check vCenter connections."


def test_an_unknown_endpoint_is_404():
    assert _client(AdminFactory()).post("/api/v1/endpoints/999999/check/").status_code == 404


def test_anonymous_callers_are_refused():
    assert APIClient().get("/api/v1/operations/").status_code == 403


def test_people_see_their_own_operations_and_admins_all():
    admin, other_admin = AdminFactory(), AdminFactory()
    mine = services.endpoint_check_start(endpoint=EndpointFactory(), actor=admin)
    theirs = services.endpoint_check_start(endpoint=EndpointFactory(), actor=other_admin)
    ids = {row["id"] for row in _client(admin).get("/api/v1/operations/").json()["results"]}
    assert ids == {mine.pk, theirs.pk}

    student = StudentFactory()
    assert _client(student).get("/api/v1/operations/").json()["results"] == []
    assert _client(student).get(f"/api/v1/operations/{mine.pk}/").status_code == 404


def test_cancel_through_the_api():
    admin = AdminFactory()
    operation = services.endpoint_check_start(endpoint=EndpointFactory(), actor=admin)
    response = _client(admin).post(f"/api/v1/operations/{operation.pk}/cancel/")
    assert response.status_code == 200
    assert response.json()["state"] == "cancelled"
    again = _client(admin).post(f"/api/v1/operations/{operation.pk}/cancel/")
    assert again.status_code == 400
    assert "already ended" in again.json()["detail"]


def test_page_and_api_share_the_service(client):
    endpoint = EndpointFactory()
    client.force_login(StudentFactory())
    response = client.post(reverse("labs:endpoint-check", args=[endpoint.pk]), follow=True)
    assert b"Only admins can check vCenter connections." in response.content
    assert not Operation.objects.exists()


# The picker: GET endpoints/{id}/inventory/ and endpoints/{id}/vms/{moref}/ against the simulator

LAB_FOLDER = "/DC0/vm/Nestlab Templates/Nested vSphere 8 Lab"


def test_an_instructor_browses_the_vm_folder_and_opens_a_subfolder(vcsim):
    endpoint = simulator_endpoint(vcsim)
    client = _client(InstructorFactory())
    root = client.get(f"/api/v1/endpoints/{endpoint.pk}/inventory/")
    assert root.status_code == 200, root.json()
    folders = {item["name"]: item for item in root.json() if item["kind"] == "folder"}
    assert folders["Nestlab Templates"]["path"] == "/DC0/vm/Nestlab Templates"

    lab = client.get(f"/api/v1/endpoints/{endpoint.pk}/inventory/", {"path": LAB_FOLDER}).json()
    assert sorted(item["name"] for item in lab) == ["esxi-01", "esxi-02", "esxi-03", "router", "vcsa"]
    assert {item["kind"] for item in lab} == {"vm"}
    assert all(item["moref"].startswith("vm-") and item["path"].startswith(LAB_FOLDER) for item in lab)


def test_a_search_finds_vms_anywhere_below_the_folder(vcsim):
    endpoint = simulator_endpoint(vcsim)
    response = _client(AdminFactory()).get(f"/api/v1/endpoints/{endpoint.pk}/inventory/", {"search": "esxi"})
    assert response.status_code == 200
    assert sorted(item["name"] for item in response.json()) == ["esxi-01", "esxi-02", "esxi-03"]


def test_a_vm_is_described_for_the_picker(vcsim):
    endpoint = simulator_endpoint(vcsim)
    client = _client(InstructorFactory())
    lab = client.get(f"/api/v1/endpoints/{endpoint.pk}/inventory/", {"path": LAB_FOLDER}).json()
    esxi = next(item for item in lab if item["name"] == "esxi-01")

    response = client.get(f"/api/v1/endpoints/{endpoint.pk}/vms/{esxi['moref']}/")
    assert response.status_code == 200, response.json()
    body = response.json()
    assert set(body) == {
        "name", "moref", "path", "power_state", "num_cpu", "memory_mb", "disk_gb", "nested_hv", "is_template", "nics"
    }  # fmt: skip
    assert (body["name"], body["moref"], body["path"]) == ("esxi-01", esxi["moref"], esxi["path"])
    assert body["power_state"] == "poweredOff" and body["nested_hv"] is True and body["is_template"] is False
    assert body["num_cpu"] >= 1 and body["memory_mb"] >= 1024
    assert len(body["nics"]) == 2
    assert set(body["nics"][0]) == {"label", "network", "mac_address", "connected"}


def test_missing_folders_and_vms_are_404_in_words(vcsim):
    endpoint = simulator_endpoint(vcsim)
    client = _client(InstructorFactory())
    folder = client.get(f"/api/v1/endpoints/{endpoint.pk}/inventory/", {"path": "/DC0/vm/Nowhere"})
    assert folder.status_code == 404
    assert folder.json() == {"detail": "No folder or datacenter '/DC0/vm/Nowhere' in vCenter."}
    vm = client.get(f"/api/v1/endpoints/{endpoint.pk}/vms/vm-999999/")
    assert vm.status_code == 404
    assert vm.json() == {"detail": "No vm 'vm-999999' in vCenter."}
    assert client.get("/api/v1/endpoints/999999/inventory/").status_code == 404


def test_a_wrong_stored_password_is_a_502_in_words_without_the_password(vcsim):
    endpoint = simulator_endpoint(vcsim, password="Wrong-Stored-Pw-77")
    client = _client(InstructorFactory())
    for url in (f"/api/v1/endpoints/{endpoint.pk}/inventory/", f"/api/v1/endpoints/{endpoint.pk}/vms/vm-72/"):
        response = client.get(url)
        assert response.status_code == 502
        assert "vCenter rejected the user name or password" in response.json()["detail"]
        assert b"Wrong-Stored-Pw-77" not in response.content


def test_an_unreachable_vcenter_is_a_503_in_words():
    endpoint = EndpointFactory(url=f"http://127.0.0.1:{free_port()}/sdk")
    response = _client(InstructorFactory()).get(f"/api/v1/endpoints/{endpoint.pk}/inventory/")
    assert response.status_code == 503
    assert response.json()["detail"].startswith("Cannot talk to vCenter at 127.0.0.1:")


def test_students_cannot_browse_vcenter():
    endpoint = EndpointFactory()
    client = _client(StudentFactory())
    for url in (f"/api/v1/endpoints/{endpoint.pk}/inventory/", f"/api/v1/endpoints/{endpoint.pk}/vms/vm-1/"):
        response = client.get(url)
        assert response.status_code == 403
        assert response.json()["detail"] == "Only instructors and admins can browse vCenter."
    assert APIClient().get(f"/api/v1/endpoints/{endpoint.pk}/inventory/").status_code == 403


# Publishing: POST templates/{id}/publish/ (the worker's side: test_publish.py)


def _template(owner, *, vms: int = 1):
    template = course_services.template_create(actor=owner, endpoint=EndpointFactory(), name="Lab")
    for index in range(vms):
        course_services.template_vm_add(
            template=template,
            actor=owner,
            role=f"esxi-0{index + 1}",
            source_moref=f"vm-{100 + index}",
            source_name=f"esxi-0{index + 1}",
            nic_networks=["lab"],
        )
    return template


def test_an_owner_publishes_and_gets_202_with_the_operation():
    owner = InstructorFactory()
    template = _template(owner)
    response = _client(owner).post(f"/api/v1/templates/{template.pk}/publish/")
    assert response.status_code == 202, response.json()
    body = response.json()
    assert (body["kind"], body["state"], body["actor"]) == ("publish", "queued", owner.username)
    version = TemplateVersion.objects.get(pk=body["template_version"])
    assert (version.template, version.number, version.state) == (template, 1, "publishing")
    assert _client(owner).get(f"/api/v1/operations/{body['id']}/").json()["template_version"] == version.pk


def test_a_draft_that_cannot_be_published_is_400_in_words():
    owner = InstructorFactory()
    empty = _template(owner, vms=0)
    response = _client(owner).post(f"/api/v1/templates/{empty.pk}/publish/")
    assert response.status_code == 400
    assert response.json()["detail"] == "The template has no VMs yet."

    template = _template(owner)
    assert _client(owner).post(f"/api/v1/templates/{template.pk}/publish/").status_code == 202
    again = _client(owner).post(f"/api/v1/templates/{template.pk}/publish/")
    assert again.status_code == 400
    assert again.json()["detail"] == "This template is being published already; wait for that to finish."
    assert TemplateVersion.objects.filter(template=template).count() == 1
    assert Operation.objects.filter(kind="publish").count() == 1


def test_only_owners_and_admins_publish():
    template = _template(InstructorFactory())
    other = _client(InstructorFactory()).post(f"/api/v1/templates/{template.pk}/publish/")
    assert other.status_code == 403
    assert other.json()["detail"] == "You cannot publish this template."
    student = _client(StudentFactory()).post(f"/api/v1/templates/{template.pk}/publish/")
    assert student.status_code == 403
    assert APIClient().post(f"/api/v1/templates/{template.pk}/publish/").status_code == 403
    assert _client(InstructorFactory()).post("/api/v1/templates/999999/publish/").status_code == 404
    assert not TemplateVersion.objects.exists()
    assert _client(AdminFactory()).post(f"/api/v1/templates/{template.pk}/publish/").status_code == 202


# Operations on labs: who sees them, and the filters


def test_students_see_operations_on_their_labs_and_instructors_those_on_their_courses_labs():
    course, other = open_course(students=2), open_course()
    lab, classmates = ready_lab(course, 0), ready_lab(course, 1)
    instructor = course.instructors.get()
    by_instructor = services.lab_power(lab=lab, actor=instructor, action="off")
    by_student = services.lab_snapshot_create(lab=classmates, actor=classmates.student, name="mine")

    def seen(user, **query):
        response = _client(user).get("/api/v1/operations/", query)
        assert response.status_code == 200, response.json()
        return {row["id"] for row in response.json()["results"]}

    assert by_instructor.pk in seen(lab.student)
    assert by_student.pk not in seen(lab.student)
    assert {by_instructor.pk, by_student.pk} <= seen(instructor)
    assert seen(other.instructors.get()) == set()
    assert _client(lab.student).get(f"/api/v1/operations/{by_instructor.pk}/").json()["lab"] == lab.pk
    assert _client(other.instructors.get()).get(f"/api/v1/operations/{by_student.pk}/").status_code == 404


def test_operations_filter_by_lab_state_and_kind():
    course = open_course(students=2)
    lab, classmates = ready_lab(course, 0), ready_lab(course, 1)
    power = services.lab_power(lab=lab, actor=lab.student, action="off")
    admin = _client(AdminFactory())

    def ids(**query):
        response = admin.get("/api/v1/operations/", query)
        assert response.status_code == 200, response.json()
        return [row["id"] for row in response.json()["results"]]

    provisions = list(Operation.objects.filter(kind="provision").order_by("-id").values_list("id", flat=True))
    assert ids(lab=lab.pk) == [power.pk, provisions[1]]
    assert ids(state="queued") == [power.pk]
    assert ids(kind="provision") == provisions
    assert ids(lab=classmates.pk, kind="power") == []
    bad = admin.get("/api/v1/operations/", {"kind": "teleport", "lab": "x"})
    assert bad.status_code == 400 and set(bad.json()["errors"]) == {"kind", "lab"}


def test_admins_reconcile_an_endpoint_and_a_second_request_is_409():
    endpoint = EndpointFactory()
    admin = AdminFactory()
    response = _client(admin).post(f"/api/v1/endpoints/{endpoint.pk}/reconcile/")
    assert response.status_code == 202 and response.json()["kind"] == "reconcile"
    again = _client(admin).post(f"/api/v1/endpoints/{endpoint.pk}/reconcile/")
    assert again.status_code == 409 and "being reconciled already" in again.json()["detail"]
    assert _client(StudentFactory()).post(f"/api/v1/endpoints/{endpoint.pk}/reconcile/").status_code == 403


def test_a_student_extends_their_running_labs_lease_once():
    from courses import services as course_services
    from tests.factories import open_course

    course = open_course(students=1)
    course_services.quota_update(course=course, actor=AdminFactory(), lease_hours=2, lease_extensions=1)
    lab = ready_lab(course)
    from labs.models import Lab

    Lab.objects.filter(pk=lab.pk).update(running_since=None)  # powered on again: a lease starts
    lab.vms.update(power_state="poweredOn")
    services.lab_power_changed(lab=lab)
    client = _client(lab.student)
    first = client.post(f"/api/v1/labs/{lab.pk}/extend/")
    assert first.status_code == 200, first.json()
    assert first.json()["lease_extensions_used"] == 1 and first.json()["expires_at"]
    second = client.post(f"/api/v1/labs/{lab.pk}/extend/")
    assert second.status_code == 403 and "extended 1 time" in second.json()["detail"]


def test_admin_and_picker_routes_refuse_other_roles_before_looking_the_endpoint_up():
    """Nobody probes which endpoint ids exist: a known and an unknown id get the same 403."""
    known = EndpointFactory().pk
    for endpoint_id in (known, 999999):
        for user in (StudentFactory(), InstructorFactory()):
            for url, words in (
                (f"/api/v1/endpoints/{endpoint_id}/check/", "Only admins can check vCenter connections."),
                (f"/api/v1/endpoints/{endpoint_id}/reconcile/", "Only admins can reconcile vCenter with Nestlab."),
            ):
                response = _client(user).post(url)
                assert (response.status_code, response.json()["detail"]) == (403, words), (user, url)
        for url in (f"/api/v1/endpoints/{endpoint_id}/inventory/", f"/api/v1/endpoints/{endpoint_id}/vms/vm-1/"):
            response = _client(StudentFactory()).get(url)
            assert (response.status_code, response.json()["detail"]) == (
                403,
                "Only instructors and admins can browse vCenter.",
            )
    assert _client(InstructorFactory()).get("/api/v1/endpoints/999999/inventory/").status_code == 404


def test_operations_on_a_lab_are_seen_by_those_who_see_the_lab_only():
    course = open_course(students=1)
    lab = ready_lab(course)
    leaving = course.instructors.get()
    staying = InstructorFactory()
    course_services.course_instructor_add(course=course, actor=leaving, instructor=staying)
    power = services.lab_power(lab=lab, actor=leaving, action="off")
    check = services.endpoint_check_start(endpoint=EndpointFactory(), actor=AdminFactory())
    assert _client(leaving).get(f"/api/v1/operations/{power.pk}/").status_code == 200

    course_services.course_instructor_remove(course=course, actor=staying, instructor=leaving)
    assert _client(leaving).get(f"/api/v1/operations/{power.pk}/").status_code == 404
    assert power.pk not in {row["id"] for row in _client(leaving).get("/api/v1/operations/").json()["results"]}
    assert _client(leaving).post(f"/api/v1/operations/{power.pk}/cancel/").status_code == 404
    assert _client(staying).get(f"/api/v1/operations/{power.pk}/").status_code == 200
    # Work on no lab stays visible to whoever started it.
    assert _client(check.actor).get(f"/api/v1/operations/{check.pk}/").status_code == 200


def test_a_student_removed_from_the_course_cannot_cancel_work_on_their_lab():
    course = open_course(students=1)
    lab = ready_lab(course)
    power = services.lab_power(lab=lab, actor=lab.student, action="off")
    course_services.enrollment_remove(enrollment=course.enrollments.get(), actor=course.instructors.get())
    response = _client(lab.student).post(f"/api/v1/operations/{power.pk}/cancel/")
    assert response.status_code == 403
    assert response.json()["detail"] == (
        f"You are no longer enrolled in {course.code}: you can see {lab.name} but not use it."
    )
    assert _client(lab.student).get(f"/api/v1/operations/{power.pk}/").json()["state"] == "queued"


def test_admins_see_each_vcenters_load_and_a_course_shows_and_sets_its_vcenters():
    from labs import placement

    course = open_course(students=2)
    home = course.template_version.template.endpoint
    spare = EndpointFactory(in_maintenance=True, max_running_vms=10)
    ready_lab(course, 0)
    placement.endpoint_reachable_mark(endpoint_id=home.pk)
    placement.endpoint_reachable_mark(endpoint_id=spare.pk)

    response = _client(AdminFactory()).get("/api/v1/endpoint-loads/")
    assert response.status_code == 200
    loads = {row["id"]: row for row in response.json()}
    assert (
        loads[home.pk]["takes_new_labs"] is True
        and loads[home.pk]["labs_running"] + loads[home.pk]["labs_building"] <= 1
    )
    assert loads[spare.pk]["refusal"] == f"{spare.name} is in maintenance"
    assert loads[spare.pk]["max_running_vms"] == 10
    refused = _client(InstructorFactory()).get("/api/v1/endpoint-loads/")
    assert refused.status_code == 403 and "Only admins can see the vCenters' load." in refused.json()["detail"]

    instructor = course.instructors.get()
    shown = _client(instructor).get(f"/api/v1/courses/{course.pk}/").json()
    assert (shown["endpoints"], shown["endpoints_in_use"]) == ([], [home.name])
    refused = _client(instructor).patch(f"/api/v1/courses/{course.pk}/", {"endpoints": [spare.pk]}, format="json")
    assert refused.status_code == 400
    assert f"is not published to {spare.name}" in str(refused.json())
    kept = _client(instructor).patch(f"/api/v1/courses/{course.pk}/", {"endpoints": [home.pk]}, format="json")
    assert kept.status_code == 200 and kept.json()["endpoints"] == [home.pk]

    bad = _client(AdminFactory()).patch(f"/api/v1/endpoints/{spare.pk}/", {"max_memory_gb": 0}, format="json")
    assert bad.status_code == 400 and "max_memory_gb" in bad.json()["errors"]
