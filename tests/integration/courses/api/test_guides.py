"""courses/api/guides.py: a template's guide (steps, checks, variables) through the API, for its
owners and admins only; and the guide's guest account on a template VM (courses/api/serializers.py),
whose password is write-only."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from core import crypto
from courses.models import GuideCheck, GuideImage, GuideStep, GuideVariable, LabTemplate
from tests.factories import AdminFactory, InstructorFactory, StudentFactory
from tests.integration.courses.api.conftest import client_for, make_published_version, make_template

pytestmark = [pytest.mark.integration, pytest.mark.django_db]


@pytest.fixture
def owner():
    return InstructorFactory()


@pytest.fixture
def template(owner):
    return make_template(owner, vms=1)


def _steps(template) -> str:
    return f"/api/v1/templates/{template.pk}/guide/steps/"


def _add_step(client, template, **fields):
    response = client.post(_steps(template), {"title": "Step", **fields}, format="json")
    assert response.status_code == 201, response.json()
    return response.json()


COMMAND = {"kind": "command", "label": "Router signed", "vm_role": "esxi-01", "command": "grep -q x /lab-code"}
QUESTION = {"kind": "question", "label": "Address", "prompt": "Which address?", "answer": "10.0.0.1"}
VM_STATE = {
    "kind": "vm_state",
    "label": "Snapshot taken",
    "vm_role": "esxi-01",
    "vm_property": "snapshot_exists",
    "expected": "before-upgrade",
}


# Steps


def test_owners_add_list_move_edit_and_remove_steps(owner, template):
    client = client_for(owner)
    revision = template.revision
    first = _add_step(client, template, title="Build", body="Make **two** hosts", points=5)
    assert (first["position"], first["title"], first["points"], first["checks"]) == (1, "Build", 5, [])
    assert first["body_html"] == "<p>Make <strong>two</strong> hosts</p>\n"
    second = _add_step(client, template, title="Cluster", position=1)  # a new step goes last
    assert second["position"] == 2
    third = _add_step(client, template, title="Upgrade")

    moved = client.patch(f"{_steps(template)}{third['id']}/", {"position": 1}, format="json")
    assert moved.status_code == 200, moved.json()
    assert moved.json()["position"] == 1
    listed = client.get(_steps(template)).json()
    assert [step["title"] for step in listed["results"]] == ["Upgrade", "Build", "Cluster"]
    assert [step["position"] for step in listed["results"]] == [1, 2, 3]

    replaced = client.put(f"{_steps(template)}{first['id']}/", {"title": "Build it", "points": 7}, format="json")
    assert replaced.status_code == 200
    assert (replaced.json()["title"], replaced.json()["points"], replaced.json()["position"]) == ("Build it", 7, 2)
    assert client.get(f"{_steps(template)}{first['id']}/").json()["title"] == "Build it"

    assert client.delete(f"{_steps(template)}{third['id']}/").status_code == 204
    assert list(GuideStep.objects.filter(template=template).values_list("title", "position")) == [
        ("Build it", 1),
        ("Cluster", 2),
    ]
    assert LabTemplate.objects.get(pk=template.pk).revision == revision + 6  # every edit is a new revision


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        ({"position": 5}, "position", "Give a position from 1 to 1."),
        ({"points": 1001}, "points", "Ensure this value is less than or equal to 1000."),
        ({"title": ""}, "title", "This field may not be blank."),
        ({"title": "x" * 121}, "title", "Ensure this field has no more than 120 characters."),
    ],
)
def test_bad_step_input_is_400_in_words(owner, template, body, field, words):
    client = client_for(owner)
    step = _add_step(client, template)
    response = client.patch(f"{_steps(template)}{step['id']}/", body, format="json")
    assert response.status_code == 400
    assert response.json()["errors"] == {field: [words]}


# Checks


def test_owners_add_each_kind_of_check_and_read_its_answer(owner, template):
    client = client_for(owner)
    step = _add_step(client, template)
    checks = f"{_steps(template)}{step['id']}/checks/"
    made = [client.post(checks, body, format="json") for body in (COMMAND, QUESTION, VM_STATE)]
    assert [response.status_code for response in made] == [201, 201, 201], [r.json() for r in made]
    assert [response.json()["position"] for response in made] == [1, 2, 3]
    command, question, vm_state = (response.json() for response in made)
    assert command["command"] == "grep -q x /lab-code"  # authors see what they wrote
    assert question["answer"] == "10.0.0.1"
    assert vm_state["expected"] == "before-upgrade"
    assert client.get(f"{_steps(template)}{step['id']}/").json()["checks"][1]["answer"] == "10.0.0.1"

    changed = client.patch(f"{checks}{question['id']}/", {"answer_mode": "set", "answer": "a, b"}, format="json")
    assert changed.status_code == 200, changed.json()
    assert (changed.json()["answer_mode"], changed.json()["answer"]) == ("set", "a, b")
    assert client.delete(f"{checks}{command['id']}/").status_code == 204
    assert [check["position"] for check in client.get(checks).json()["results"]] == [1, 2]


@pytest.mark.parametrize(
    ("body", "errors"),
    [
        (
            {"kind": "command", "label": "x"},
            {
                "vm_role": ["Name the VM (its role in the template) this check reads."],
                "command": ["Give the command to run in the VM."],
            },
        ),
        (
            {"kind": "question", "label": "x"},
            {"prompt": ["Give the question."], "answer": ["Give the answer that passes."]},
        ),
        (
            {"kind": "vm_state", "label": "x", "vm_role": "esxi-01"},
            {"vm_property": ["Choose what to read from the VM."]},
        ),
        (
            {**VM_STATE, "vm_property": "power_state", "expected": "maybe"},
            {"expected": ["Say on or off."]},
        ),
        (
            {**COMMAND, "output_pattern": "([a-z"},
            {"output_pattern": ["That is not a valid regular expression: unterminated character set at position 5."]},
        ),
        (
            {**QUESTION, "answer_mode": "pattern", "answer": "(10"},
            {"answer": ["That is not a valid regular expression: missing ) at position 3."]},
        ),
        ({**COMMAND, "vm_role": "gateway"}, {"vm_role": ["The template has no VM called gateway (its VMs: esxi-01)."]}),
        (
            {"kind": "guess", "label": "x"},
            {"kind": ["“guess” is not one of the choices: command, question, vm_state."]},
        ),
        ({**COMMAND, "timeout_seconds": 301}, {"timeout_seconds": ["Ensure this value is less than or equal to 300."]}),
    ],
)
def test_a_check_missing_its_fields_or_with_a_bad_pattern_is_400_in_words(owner, template, body, errors):
    client = client_for(owner)
    step = _add_step(client, template)
    response = client.post(f"{_steps(template)}{step['id']}/checks/", body, format="json")
    assert response.status_code == 400
    assert response.json()["errors"] == errors
    assert not GuideCheck.objects.exists()


def test_a_check_of_a_step_of_another_template_is_not_there(owner, template):
    client = client_for(owner)
    other = make_template(owner, vms=1, name="Other")
    step = _add_step(client, other)
    check = client.post(f"{_steps(other)}{step['id']}/checks/", QUESTION, format="json").json()
    assert client.get(f"{_steps(template)}{step['id']}/checks/").status_code == 404
    assert client.get(f"{_steps(template)}{step['id']}/").status_code == 404
    assert client.delete(f"{_steps(other)}{step['id']}/checks/{check['id'] + 1000}/").status_code == 404
    assert client.get("/api/v1/templates/999999/guide/steps/").status_code == 404


# Variables


def test_owners_add_change_and_remove_variables(owner, template):
    client = client_for(owner)
    url = f"/api/v1/templates/{template.pk}/guide/variables/"
    made = client.post(url, {"name": "vlan", "kind": "number", "minimum": 100, "maximum": 199}, format="json")
    assert made.status_code == 201, made.json()
    assert made.json() == {
        "id": made.json()["id"],
        "name": "vlan",
        "kind": "number",
        "length": 8,
        "minimum": 100,
        "maximum": 199,
        "choices": [],
    }
    site = client.post(url, {"name": "site", "kind": "choice", "choices": ["paris", "oslo"]}, format="json")
    assert site.status_code == 201, site.json()
    assert [variable["name"] for variable in client.get(url).json()["results"]] == ["site", "vlan"]
    changed = client.patch(f"{url}{made.json()['id']}/", {"maximum": 150}, format="json")
    assert (changed.status_code, changed.json()["maximum"]) == (200, 150)
    assert client.delete(f"{url}{site.json()['id']}/").status_code == 204
    assert list(GuideVariable.objects.values_list("name", flat=True)) == ["vlan"]


@pytest.mark.parametrize(
    ("body", "errors"),
    [
        (
            {"name": "n", "kind": "number", "minimum": 10, "maximum": 5},
            {"maximum": ["The largest value is below the smallest."]},
        ),
        ({"name": "n", "kind": "choice"}, {"choices": ["Give 1 to 100 values, each 1 to 100 characters."]}),
        (
            {"name": "n", "kind": "choice", "choices": "a,b"},
            {"choices": ['Expected a list of items but got type "str".']},
        ),
        (
            {"name": "n", "kind": "string", "length": 2},
            {"length": ["Ensure this value is greater than or equal to 4."]},
        ),
        ({"name": "taken"}, {"name": ["The template already has a variable called taken."]}),
    ],
)
def test_a_bad_variable_is_400_in_words(owner, template, body, errors):
    client = client_for(owner)
    url = f"/api/v1/templates/{template.pk}/guide/variables/"
    assert client.post(url, {"name": "taken"}, format="json").status_code == 201
    response = client.post(url, body, format="json")
    assert response.status_code == 400
    assert response.json()["errors"] == errors
    assert GuideVariable.objects.count() == 1


def test_a_bad_variable_name_is_400(owner, template):
    response = client_for(owner).post(
        f"/api/v1/templates/{template.pk}/guide/variables/", {"name": "Has Space"}, format="json"
    )
    assert response.status_code == 400
    assert list(response.json()["errors"]) == ["name"]


# Who may read and write a guide


def test_students_and_other_instructors_are_refused_the_guide_and_admins_are_not(owner, template):
    step = GuideStep.objects.create(template=template, position=1, title="Secret step")
    GuideCheck.objects.create(step=step, kind="question", label="q", prompt="?", answer="SECRETANSWER")
    variable = GuideVariable.objects.create(template=template, name="code")
    base = f"/api/v1/templates/{template.pk}/guide"
    urls = [
        ("get", f"{base}/steps/", None),
        ("post", f"{base}/steps/", {"title": "Mine"}),
        ("get", f"{base}/steps/{step.pk}/", None),
        ("patch", f"{base}/steps/{step.pk}/", {"title": "Mine"}),
        ("delete", f"{base}/steps/{step.pk}/", None),
        ("get", f"{base}/steps/{step.pk}/checks/", None),
        ("post", f"{base}/steps/{step.pk}/checks/", QUESTION),
        ("get", f"{base}/variables/", None),
        ("put", f"{base}/variables/{variable.pk}/", {"name": "other"}),
    ]
    for who, words in (
        (StudentFactory(), "Only instructors and admins can use templates."),
        (InstructorFactory(), "Only the template's owners and admins can read and edit its guide."),
    ):
        for method, url, body in urls:
            response = getattr(client_for(who), method)(url, body, format="json")
            assert response.status_code == 403, (method, url)
            assert response.json()["detail"] == words
            assert "SECRETANSWER" not in response.content.decode()
    assert GuideStep.objects.get().title == "Secret step"
    assert client_for().get(f"{base}/steps/").status_code == 403
    admin = client_for(AdminFactory())
    listed = admin.get(f"{base}/steps/")
    assert listed.status_code == 200
    assert listed.json()["results"][0]["checks"][0]["answer"] == "SECRETANSWER"


# The guest account of a template VM


def test_the_guest_password_is_write_only_and_stored_encrypted(owner, template):
    client = client_for(owner)
    vm = template.vms.get()
    url = f"/api/v1/templates/{template.pk}/vms/{vm.pk}/"
    assert client.get(url).json()["guest_password_set"] is False

    response = client.patch(url, {"guest_username": "root", "guest_password": "Gu3st-SECRET"}, format="json")
    assert response.status_code == 200, response.json()
    assert (response.json()["guest_username"], response.json()["guest_password_set"]) == ("root", True)
    vm.refresh_from_db()
    assert vm.guest_password_ciphertext and "Gu3st-SECRET" not in vm.guest_password_ciphertext
    assert crypto.decrypt(vm.guest_password_ciphertext) == "Gu3st-SECRET"
    for answer in (
        response,
        client.get(url),
        client.get(f"/api/v1/templates/{template.pk}/vms/"),
        client.get(f"/api/v1/templates/{template.pk}/"),
    ):
        text = answer.content.decode()
        assert "Gu3st-SECRET" not in text and vm.guest_password_ciphertext not in text
        assert 'guest_password"' not in text

    kept = client.patch(url, {"guest_username": "admin", "guest_password": ""}, format="json")
    assert (kept.json()["guest_username"], kept.json()["guest_password_set"]) == ("admin", True)
    vm.refresh_from_db()
    assert crypto.decrypt(vm.guest_password_ciphertext) == "Gu3st-SECRET"

    forgotten = client.patch(url, {"guest_username": ""}, format="json")
    assert (forgotten.json()["guest_username"], forgotten.json()["guest_password_set"]) == ("", False)


def test_a_guest_password_without_a_user_name_is_400(owner, template):
    vm = template.vms.get()
    response = client_for(owner).patch(
        f"/api/v1/templates/{template.pk}/vms/{vm.pk}/", {"guest_password": "pw"}, format="json"
    )
    assert response.status_code == 400
    assert response.json()["errors"] == {"guest_username": ["Give the guest account's user name with its password."]}


def test_another_instructor_cannot_set_a_guest_account(owner, template):
    vm = template.vms.get()
    response = client_for(InstructorFactory()).patch(
        f"/api/v1/templates/{template.pk}/vms/{vm.pk}/",
        {"guest_username": "root", "guest_password": "x"},
        format="json",
    )
    assert response.status_code == 403
    vm.refresh_from_db()
    assert not vm.has_guest_account


# Images of the guide and the manual

PNG_1X1 = bytes.fromhex(
    "89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c4890000000d49444154789c6360000002"
    "000154a24f5d0000000049454e44ae426082"
)


def _upload(client, template, data=PNG_1X1, filename="Topology.PNG", **fields):
    return client.post(
        f"/api/v1/templates/{template.pk}/guide/images/",
        {"file": SimpleUploadedFile(filename, data, "image/png"), **fields},
        format="multipart",
    )


def test_owners_upload_list_use_and_remove_images(owner, template):
    client = client_for(owner)
    made = _upload(client, template)
    assert made.status_code == 201, made.json()
    image = made.json()
    assert (image["name"], image["content_type"], image["size"]) == ("topology.png", "image/png", len(PNG_1X1))
    assert image["url"] == f"/templates/{template.pk}/images/topology.png"
    renamed = _upload(client, template, name="lab-map.png")
    assert renamed.json()["name"] == "lab-map.png"
    listed = client.get(f"/api/v1/templates/{template.pk}/guide/images/").json()["results"]
    assert [row["name"] for row in listed] == ["lab-map.png", "topology.png"]
    step = _add_step(client, template, body="![The lab](topology.png)")
    assert f'src="/templates/{template.pk}/images/topology.png"' in step["body_html"]
    assert bytes(GuideImage.objects.get(template=template, name="topology.png").data) == PNG_1X1
    assert client.delete(f"/api/v1/templates/{template.pk}/guide/images/{renamed.json()['id']}/").status_code == 204
    assert client.delete(f"/api/v1/templates/{template.pk}/guide/images/{renamed.json()['id']}/").status_code == 404


@pytest.mark.parametrize(
    ("data", "filename", "fields", "errors"),
    [
        (b"<svg onload=alert(1)>", "x.png", {}, {"data": ["That is not a PNG, JPEG, GIF or WebP image."]}),
        (PNG_1X1, "topology.jpg", {}, {"name": ["The file is a PNG image: name it .png."]}),
        (
            PNG_1X1,
            "x.png",
            {"name": "../etc.png"},
            {"name": ["Name it like topology.png: small letters, digits, - and _, then .png, .jpg, .gif or .webp."]},
        ),
        (b"", "x.png", {}, {"file": ["The submitted file is empty."]}),
    ],
)
def test_a_bad_image_is_400_in_words(owner, template, data, filename, fields, errors):
    response = _upload(client_for(owner), template, data=data, filename=filename, **fields)
    assert response.status_code == 400
    assert response.json()["errors"] == errors


def test_images_are_for_the_templates_owners_and_admins(owner, template):
    _upload(client_for(owner), template)
    url = f"/api/v1/templates/{template.pk}/guide/images/"
    for who in (StudentFactory(), InstructorFactory()):
        assert client_for(who).get(url).status_code == 403
        assert _upload(client_for(who), template, name="mine.png").status_code == 403
    assert client_for(AdminFactory()).get(url).status_code == 200


def test_an_image_a_published_version_shows_is_not_removed(owner, template):
    client = client_for(owner)
    image = _upload(client, template).json()
    _add_step(client, template, body="![The lab](topology.png)")
    version = make_published_version(owner, template)
    response = client.delete(f"/api/v1/templates/{template.pk}/guide/images/{image['id']}/")
    assert response.status_code == 400
    assert response.json()["detail"] == (
        f"topology.png is shown by published version(s) v{version.number}: courses on them still need it."
    )
    assert GuideImage.objects.filter(pk=image["id"]).exists()
