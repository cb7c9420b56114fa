"""courses/guides.py: writing a template's guide (steps, checks, variables), who may, the words
for bad input, and the guide frozen into a version with its guest accounts."""

from __future__ import annotations

import pytest
from django.core.exceptions import PermissionDenied, ValidationError

from courses import guides, services
from courses.models import GuideCheck, GuideStep, GuideVariable, LabTemplate
from tests.factories import EndpointFactory, InstructorFactory, StudentFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def owner():
    return InstructorFactory()


@pytest.fixture
def template(owner):
    template = services.template_create(actor=owner, endpoint=EndpointFactory(), name="Guided lab")
    services.template_vm_add(
        template=template, actor=owner, role="router", source_moref="vm-1", source_name="router", nic_networks=["lab"]
    )
    return template


def revision(template) -> int:
    return LabTemplate.objects.values_list("revision", flat=True).get(pk=template.pk)


def test_steps_are_added_in_order_moved_and_renumbered_on_removal(template, owner):
    first = guides.guide_step_add(template=template, actor=owner, title="One", body="**bold**")
    second = guides.guide_step_add(template=template, actor=owner, title="Two")
    third = guides.guide_step_add(template=template, actor=owner, title="Three")
    assert [first.position, second.position, third.position] == [1, 2, 3]
    assert "<strong>bold</strong>" in first.body_html

    guides.guide_step_update(step=third, actor=owner, position=1)
    assert list(template.guide_steps.values_list("title", flat=True)) == ["Three", "One", "Two"]
    guides.guide_step_remove(step=GuideStep.objects.get(title="One"), actor=owner)
    assert list(template.guide_steps.values_list("title", "position")) == [("Three", 1), ("Two", 2)]


def test_every_guide_edit_is_a_new_revision_of_the_draft(template, owner):
    before = revision(template)
    step = guides.guide_step_add(template=template, actor=owner, title="One")
    guides.guide_check_add(step=step, actor=owner, kind=GuideCheck.Kind.QUESTION, label="Q", prompt="?", answer="a")
    guides.guide_variable_add(template=template, actor=owner, name="code")
    assert revision(template) == before + 3


def test_only_the_templates_owners_edit_its_guide(template):
    for outsider in (InstructorFactory(), StudentFactory()):
        with pytest.raises(PermissionDenied):
            guides.guide_step_add(template=template, actor=outsider, title="Mine now")
    assert not template.guide_steps.exists()


@pytest.mark.parametrize(
    ("fields", "field", "words"),
    [
        ({"kind": GuideCheck.Kind.COMMAND, "label": "L", "vm_role": "router"}, "command", "Give the command"),
        ({"kind": GuideCheck.Kind.COMMAND, "label": "L", "command": "true"}, "vm_role", "Name the VM"),
        ({"kind": GuideCheck.Kind.COMMAND, "label": "L", "vm_role": "nosuch", "command": "true"}, "vm_role", "no VM"),
        (
            {
                "kind": GuideCheck.Kind.COMMAND,
                "label": "L",
                "vm_role": "router",
                "command": "true",
                "output_pattern": "(",
            },
            "output_pattern",
            "not a valid regular expression",
        ),
        (
            {
                "kind": GuideCheck.Kind.COMMAND,
                "label": "L",
                "vm_role": "router",
                "command": "true",
                "timeout_seconds": 0,
            },
            "timeout_seconds",
            "",
        ),
        ({"kind": GuideCheck.Kind.QUESTION, "label": "L", "prompt": "?"}, "answer", "Give the answer"),
        (
            {"kind": GuideCheck.Kind.QUESTION, "label": "L", "prompt": "?", "answer": "[", "answer_mode": "pattern"},
            "answer",
            "not a valid regular expression",
        ),
        ({"kind": GuideCheck.Kind.VM_STATE, "label": "L", "vm_role": "router"}, "vm_property", "Choose what to read"),
        (
            {
                "kind": GuideCheck.Kind.VM_STATE,
                "label": "L",
                "vm_role": "router",
                "vm_property": "power_state",
                "expected": "sideways",
            },
            "expected",
            "Say on or off",
        ),
        (
            {
                "kind": GuideCheck.Kind.VM_STATE,
                "label": "L",
                "vm_role": "router",
                "vm_property": "cpu_count",
                "expected": "four",
            },
            "expected",
            "whole number",
        ),
        ({"kind": "telepathy", "label": "L"}, "kind", ""),
    ],
)
def test_a_check_missing_what_its_kind_needs_is_refused_in_words(template, owner, fields, field, words):
    step = guides.guide_step_add(template=template, actor=owner, title="One")
    with pytest.raises(ValidationError) as refused:
        guides.guide_check_add(step=step, actor=owner, **fields)
    assert field in refused.value.message_dict
    assert words in " ".join(refused.value.message_dict[field])
    assert not GuideCheck.objects.exists()


def test_unknown_fields_and_out_of_bounds_values_are_refused(template, owner):
    with pytest.raises(ValidationError, match="Unknown field"):
        guides.guide_step_add(template=template, actor=owner, title="One", secret="x")
    with pytest.raises(ValidationError):
        guides.guide_step_add(template=template, actor=owner, title="One", points=100_000)
    with pytest.raises(ValidationError):
        guides.guide_step_add(template=template, actor=owner, title="One", body="x" * 20_000)
    with pytest.raises(ValidationError) as refused:
        guides.guide_variable_add(template=template, actor=owner, name="n", kind="number", minimum=5, maximum=1)
    assert "below the smallest" in str(refused.value)
    with pytest.raises(ValidationError):
        guides.guide_variable_add(template=template, actor=owner, name="Bad Name")
    with pytest.raises(ValidationError):
        guides.guide_variable_add(template=template, actor=owner, name="site", kind="choice", choices=[])
    guides.guide_variable_add(template=template, actor=owner, name="code")
    with pytest.raises(ValidationError, match="already has a variable called code"):
        guides.guide_variable_add(template=template, actor=owner, name="code")
    assert not template.guide_steps.exists()


def test_publishing_lists_what_stops_the_guide_in_words(template, owner):
    step = guides.guide_step_add(template=template, actor=owner, title="Sign", body="Code {{ code }}", points=10)
    guides.guide_check_add(
        step=step, actor=owner, kind=GuideCheck.Kind.COMMAND, label="Signed", vm_role="router", command="test -e /x"
    )
    guides.guide_step_add(template=template, actor=owner, title="Free points", points=5)
    with pytest.raises(ValidationError) as refused:
        services.template_version_create(template=template, actor=owner)
    words = " ".join(refused.value.messages)
    assert "runs a command in router, which has no guest account" in words
    assert "{{ code }}: no such variable" in words
    assert "Free points) is worth 5 points but has no check" in words


def test_a_version_freezes_the_guide_and_the_guest_accounts(template, owner):
    router = template.vms.get(role="router")
    services.template_vm_update(vm=router, actor=owner, guest_username="root", guest_password="s3cret")
    guides.guide_variable_add(template=template, actor=owner, name="code", kind=GuideVariable.Kind.STRING)
    step = guides.guide_step_add(template=template, actor=owner, title="Sign", body="Code {{ code }}", points=10)
    guides.guide_check_add(
        step=step, actor=owner, kind=GuideCheck.Kind.COMMAND, label="Signed", vm_role="router", command="test -e /x"
    )
    version = services.template_version_create(template=template, actor=owner)
    assert [s["title"] for s in version.guide["steps"]] == ["Sign"]
    assert version.guide["steps"][0]["checks"][0]["command"] == "test -e /x"
    assert version.guide["variables"][0]["name"] == "code"
    assert version.guest_accounts["router"]["username"] == "root"
    assert "s3cret" not in str(version.guest_accounts)
    assert "s3cret" not in str(version.spec)

    # A later edit of the draft changes nothing the version holds.
    guides.guide_step_update(step=step, actor=owner, title="Renamed")
    version.refresh_from_db()
    assert version.guide["steps"][0]["title"] == "Sign"


def test_a_guest_password_needs_a_user_name_and_an_empty_user_name_forgets_the_account(template, owner):
    router = template.vms.get(role="router")
    with pytest.raises(ValidationError, match="user name"):
        services.template_vm_update(vm=router, actor=owner, guest_password="pw")
    services.template_vm_update(vm=router, actor=owner, guest_username="root", guest_password="pw")
    assert router.has_guest_account
    services.template_vm_update(vm=router, actor=owner, guest_username="")
    router.refresh_from_db()
    assert not router.has_guest_account and router.guest_password_ciphertext == ""


# Images of the guide and the manual

PNG_1X1 = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d4944415478da63f8cfc0f01f0005000201a0b1f0b60000000049454e44ae426082"
)


def test_an_image_is_stored_checked_by_its_bytes_and_linked_from_markdown(template, owner):
    image = guides.guide_image_add(template=template, actor=owner, name="Topology.PNG", data=PNG_1X1)
    assert (image.name, image.content_type, image.size) == ("topology.png", "image/png", len(PNG_1X1))
    step = guides.guide_step_add(template=template, actor=owner, title="Look", body="![The lab](topology.png)")
    assert f'src="/templates/{template.pk}/images/topology.png"' in step.body_html
    services.template_update(template=template, actor=owner, manual="![The lab](topology.png)")
    template.refresh_from_db()
    assert f'src="/templates/{template.pk}/images/topology.png"' in template.manual_html


@pytest.mark.parametrize(
    ("name", "data", "words"),
    [
        ("evil.svg", b"<svg onload=alert(1)>", "Name it like"),
        ("evil.png", b"<svg onload=alert(1)>", "not a PNG, JPEG, GIF or WebP"),
        ("photo.jpg", PNG_1X1, "name it .png"),
        ("big.png", b"\x89PNG\r\n\x1a\n" + b"0" * (2 * 1024 * 1024), "at most"),
        ("empty.png", b"", "empty"),
        ("../../etc.png", PNG_1X1, "Name it like"),
    ],
)
def test_an_image_that_is_not_what_it_says_is_refused_in_words(template, owner, name, data, words):
    with pytest.raises(ValidationError, match=words):
        guides.guide_image_add(template=template, actor=owner, name=name, data=data)
    assert not template.guide_images.exists()


def test_an_image_a_published_version_shows_cannot_be_removed(template, owner):
    router = template.vms.get(role="router")
    services.template_vm_update(vm=router, actor=owner, guest_username="root", guest_password="pw")
    image = guides.guide_image_add(template=template, actor=owner, name="topology.png", data=PNG_1X1)
    guides.guide_step_add(template=template, actor=owner, title="Look", body="![The lab](topology.png)")
    version = services.template_version_create(template=template, actor=owner)
    spec = dict(version.spec)
    spec["vms"] = [{**vm, "num_cpu": 1, "memory_mb": 1024, "disk_gb": 1.0} for vm in spec["vms"]]
    services.template_version_publish_succeeded(version=version, spec=spec)
    with pytest.raises(ValidationError, match="shown by published version"):
        guides.guide_image_remove(image=image, actor=owner)
    with pytest.raises(ValidationError, match="upload the new one under another name"):
        guides.guide_image_add(template=template, actor=owner, name="topology.png", data=PNG_1X1)
    unused = guides.guide_image_add(template=template, actor=owner, name="unused.png", data=PNG_1X1)
    guides.guide_image_remove(image=unused, actor=owner)
    assert list(template.guide_images.values_list("name", flat=True)) == ["topology.png"]


def test_images_are_served_to_the_guides_readers_only(template, owner, client):
    from django.urls import reverse

    from tests.factories import open_course

    image = guides.guide_image_add(template=template, actor=owner, name="topology.png", data=PNG_1X1)
    assert reverse("courses:guide-image", args=[template.pk, "topology.png"]) == image.url
    course = open_course(students=2)
    insider, outsider = (enrollment.student for enrollment in course.enrollments.all())
    course.template_version.template = template  # the course's version is of this template
    course.template_version.save(update_fields=["template"])
    course.enrollments.filter(student=outsider).delete()

    client.force_login(insider)
    # An image no published version shows yet (a draft's next step, its answer perhaps): hidden.
    assert client.get(image.url).status_code == 404
    course.template_version.manual_html = f'<p><img src="{image.url}" alt="The lab"></p>'
    course.template_version.save(update_fields=["manual_html"])
    response = client.get(image.url)
    assert response.status_code == 200 and response.content == PNG_1X1
    assert response["Content-Type"] == "image/png" and response["X-Content-Type-Options"] == "nosniff"
    assert client.get(image.url, HTTP_IF_NONE_MATCH=response["ETag"]).status_code == 304
    client.force_login(outsider)
    assert client.get(image.url).status_code == 404
    assert client.get(image.url.replace("topology", "nothing")).status_code == 404
    client.logout()
    assert client.get(image.url).status_code == 302  # to sign in
