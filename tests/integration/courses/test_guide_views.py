"""courses/guide_views.py: the template page's lab guide editor. Steps (add, edit, move, remove),
their checks by kind, variables and guest accounts go through courses.guides and
courses.services; a rule broken is a 400 with the words on the form and what was typed kept;
only the template's owners edit it; a guest password is never written back into the page."""

from __future__ import annotations

import pytest
from django.urls import reverse

from courses import guides
from courses.models import GuideCheck, GuideStep, GuideVariable
from tests.factories import InstructorFactory
from tests.integration.courses.test_views import add_vm, make_template

pytestmark = pytest.mark.django_db


@pytest.fixture
def owner():
    return InstructorFactory()


@pytest.fixture
def template(owner):
    template = make_template(owner)
    add_vm(template, owner, role="router", moref="vm-72")
    return template


def url(name, template, *args):
    return reverse(f"courses:{name}", args=[template.pk, *args])


def test_the_owner_sees_the_guide_editor(client, owner, template):
    step = guides.guide_step_add(
        template=template, actor=owner, title="Sign your router", body="Type **it**", points=10
    )
    guides.guide_check_add(
        step=step, actor=owner, kind="command", label="Signed", vm_role="router", command="grep x /y"
    )
    client.force_login(owner)
    page = client.get(url("template-detail", template)).content.decode()
    assert 'id="guide"' in page and "1. Sign your router" in page
    assert "<strong>it</strong>" in page  # the body's preview as students see it
    assert "Add a check to step 1" in page and "Add a step" in page and "Add a variable" in page
    assert url("template-vm-guest", template, template.vms.get().pk) in page
    assert "password not set" in page


def test_steps_are_added_edited_moved_and_removed(client, owner, template):
    client.force_login(owner)
    response = client.post(url("guide-step-add", template), {"title": "Meet your lab", "points": 0, "body": "Hi"})
    assert response.status_code == 302 and response.url.endswith("#guide")
    client.post(url("guide-step-add", template), {"title": "Sign", "points": 0, "body": ""})
    first, second = GuideStep.objects.filter(template=template).order_by("position")
    client.post(
        url("guide-step-edit", template, second.pk), {"title": "Sign your router", "points": 0, "body": "**x**"}
    )
    second.refresh_from_db()
    assert second.title == "Sign your router" and "<strong>x</strong>" in second.body_html
    client.post(url("guide-step-move", template, second.pk), {"direction": "up"})
    assert list(template.guide_steps.order_by("position").values_list("title", flat=True)) == [
        "Sign your router",
        "Meet your lab",
    ]
    moved = client.post(url("guide-step-move", template, second.pk), {"direction": "up"}, follow=True)
    assert any("did not move" in str(message) for message in moved.context["messages"])
    client.post(url("guide-step-remove", template, first.pk))
    assert list(template.guide_steps.values_list("title", flat=True)) == ["Sign your router"]


def test_a_step_refused_by_the_service_is_a_400_with_words_keeping_what_was_typed(client, owner, template):
    client.force_login(owner)
    response = client.post(url("guide-step-add", template), {"title": "", "points": 5, "body": "my draft text"})
    assert response.status_code == 400
    page = response.content.decode()
    assert "This field is required." in page and "my draft text" in page


def test_checks_of_each_kind_are_added_with_their_fields_and_refused_in_words(client, owner, template):
    step = guides.guide_step_add(template=template, actor=owner, title="Know your network", points=5)
    client.force_login(owner)
    base = {"exit_code": 0, "timeout_seconds": 30, "answer_mode": "exact"}
    missing = client.post(
        url("guide-check-add", template, step.pk), {**base, "kind": "question", "label": "Gateway", "prompt": "Which?"}
    )
    assert missing.status_code == 400 and "Give the answer that passes." in missing.content.decode()
    assert 'value="Gateway"' in missing.content.decode()
    added = client.post(
        url("guide-check-add", template, step.pk),
        {**base, "kind": "question", "label": "Gateway", "prompt": "Which?", "answer": "192.168.10.1"},
    )
    assert added.status_code == 302
    check = GuideCheck.objects.get()
    assert (check.kind, check.answer) == ("question", "192.168.10.1")
    edited = client.post(
        url("guide-check-edit", template, check.pk),
        {
            **base,
            "kind": "vm_state",
            "label": "Snapshot",
            "vm_role": "router",
            "vm_property": "power_state",
            "expected": "maybe",
        },
    )
    assert edited.status_code == 400 and "Say on or off." in edited.content.decode()
    client.post(url("guide-check-remove", template, check.pk))
    assert not GuideCheck.objects.exists()


def test_variables_are_added_edited_and_removed(client, owner, template):
    client.force_login(owner)
    client.post(
        url("guide-variable-add", template),
        {"name": "lab_code", "kind": "string", "length": 8, "minimum": 1, "maximum": 100},
    )
    variable = GuideVariable.objects.get()
    client.post(
        url("guide-variable-edit", template, variable.pk),
        {"name": "site", "kind": "choice", "length": 8, "minimum": 1, "maximum": 100, "choices": "paris\nlyon\n"},
    )
    variable.refresh_from_db()
    assert (variable.name, variable.choices) == ("site", ["paris", "lyon"])
    duplicate = client.post(
        url("guide-variable-add", template),
        {"name": "site", "kind": "string", "length": 8, "minimum": 1, "maximum": 100},
    )
    assert duplicate.status_code == 400 and "already has a variable called site" in duplicate.content.decode()
    client.post(url("guide-variable-remove", template, variable.pk))
    assert not GuideVariable.objects.exists()


def test_a_guest_password_is_stored_but_never_written_back(client, owner, template):
    vm = template.vms.get()
    client.force_login(owner)
    client.post(url("template-vm-guest", template, vm.pk), {"guest_username": "root", "guest_password": "s3cret-pw"})
    vm.refresh_from_db()
    assert vm.has_guest_account and vm.guest_username == "root"
    page = client.get(url("template-detail", template)).content.decode()
    assert "s3cret-pw" not in page and "password set" in page and 'value="root"' in page
    refused = client.post(
        url("template-vm-guest", template, vm.pk), {"guest_username": "", "guest_password": "again-pw"}
    )
    assert refused.status_code in (302, 400)
    assert "again-pw" not in refused.content.decode()
    client.post(url("template-vm-guest", template, vm.pk), {"guest_username": "", "guest_password": ""})
    vm.refresh_from_db()
    assert not vm.has_guest_account and not vm.guest_password_ciphertext


def test_only_owners_edit_the_guide(client, owner, template):
    step = guides.guide_step_add(template=template, actor=owner, title="Mine", points=0)
    client.force_login(InstructorFactory())
    response = client.post(
        url("guide-step-edit", template, step.pk), {"title": "Theirs", "points": 0, "body": ""}, follow=True
    )
    assert [str(message) for message in response.context["messages"]] == [
        "Only the template's owners and admins can edit its guide."
    ]
    step.refresh_from_db()
    assert step.title == "Mine"
    assert client.post(url("guide-step-add", template), {"title": "x", "points": 0}).status_code == 302
    assert template.guide_steps.count() == 1


def test_a_step_body_is_previewed_like_students_see_it(client, owner):
    client.force_login(owner)
    response = client.post(reverse("courses:markdown-preview"), {"title": "x", "body": "**bold** <script>x</script>"})
    assert (
        response.status_code == 200
        and b"<strong>bold</strong>" in response.content
        and b"<script" not in response.content
    )


def test_an_owner_uploads_an_image_sees_it_listed_and_removes_it(client, owner, template):
    from django.core.files.uploadedfile import SimpleUploadedFile

    from tests.integration.courses.test_guides import PNG_1X1

    client.force_login(owner)
    response = client.post(
        url("guide-image-add", template), {"image": SimpleUploadedFile("Topology.png", PNG_1X1, "image/png")}
    )
    assert response.status_code == 302
    image = template.guide_images.get()
    assert image.name == "topology.png"
    page = client.get(url("template-detail", template)).content.decode()
    assert f'src="{image.url}"' in page  # listed, shown from its address
    assert client.get(image.url).content == PNG_1X1

    refused = client.post(
        url("guide-image-add", template),
        {"image": SimpleUploadedFile("evil.png", b"<svg onload=alert(1)>", "image/png")},
    )
    assert refused.status_code == 400
    assert "not a PNG, JPEG, GIF or WebP image" in refused.content.decode()
    assert template.guide_images.count() == 1

    assert client.post(url("guide-image-remove", template, image.pk)).status_code == 302
    assert not template.guide_images.exists()


def test_another_instructor_cannot_upload_an_image(client, template):
    from django.core.files.uploadedfile import SimpleUploadedFile

    from tests.integration.courses.test_guides import PNG_1X1

    client.force_login(InstructorFactory())
    client.post(url("guide-image-add", template), {"image": SimpleUploadedFile("x.png", PNG_1X1, "image/png")})
    assert not template.guide_images.exists()
