"""courses/models.py: the endpoint's own checks, which every path (page, API, admin) meets."""

import pytest
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError

from courses.models import VCenterEndpoint
from tests.factories import EndpointFactory

pytestmark = pytest.mark.django_db


def _errors(endpoint: VCenterEndpoint) -> dict[str, list[str]]:
    with pytest.raises(ValidationError) as refused:
        endpoint.full_clean()
    return refused.value.message_dict


def _stored(endpoint: VCenterEndpoint) -> VCenterEndpoint:
    return VCenterEndpoint.objects.get(pk=endpoint.pk)


@pytest.mark.parametrize(
    ("url", "verify_tls", "allowed"),
    [
        ("https://vc.example.edu", True, True),
        ("https://vc.example.edu", False, True),
        ("http://vc.example.edu", False, True),  # a lab vCenter, verification explicitly off
        ("http://vc.example.edu", True, False),
        ("ftp://vc.example.edu", False, False),
        ("vc.example.edu", False, False),
        ("javascript:alert(1)", False, False),
    ],
)
def test_only_https_or_http_without_tls_verification(url, verify_tls, allowed):
    endpoint = EndpointFactory.build(url=url, verify_tls=verify_tls)
    endpoint.set_password("secret")
    if allowed:
        endpoint.full_clean()
    else:
        assert "url" in _errors(endpoint)


def test_a_changed_address_needs_the_password_again():
    endpoint = _stored(EndpointFactory(url="https://vc.example.edu"))
    endpoint.url = "https://attacker.example.net"
    assert _errors(endpoint) == {
        "password": ["The address changed: type the password again (it is sent only to this vCenter)."]
    }
    endpoint.set_password("typed-again")
    endpoint.full_clean()


def test_a_changed_tls_check_needs_the_password_again():
    endpoint = _stored(EndpointFactory(url="https://vc.example.edu", verify_tls=True))
    endpoint.verify_tls = False
    assert "TLS verification changed" in _errors(endpoint)["password"][0]


def test_other_changes_keep_the_stored_password():
    endpoint = _stored(EndpointFactory())
    endpoint.name = "Renamed"
    endpoint.vlan_max = 2100
    endpoint.full_clean()


def test_the_console_password_follows_the_address_too():
    endpoint = EndpointFactory(url="https://vc.example.edu", console_username="console@vsphere.local")
    endpoint.set_console_password("console-secret")
    endpoint.save()
    endpoint = _stored(endpoint)
    endpoint.url = "https://elsewhere.example.edu"
    endpoint.set_password("typed-again")
    assert _errors(endpoint) == {
        NON_FIELD_ERRORS: ["The address changed: type the console account's password again too."]
    }
    endpoint.set_console_password("typed-again-too")
    endpoint.full_clean()


# Template source folders (docs/security.md, finding 2)


@pytest.mark.parametrize(
    ("folders", "problem"),
    [
        ("/DC0/vm/Templates\n/DC0/vm/Golden/", None),
        ("/DC0/vm", None),
        ("/DC1/vm/Templates", "is not a VM folder of the datacenter"),
        ("Templates", "is not a VM folder of the datacenter"),
        ("/DC0/vm/Nestlab Labs", "holds Nestlab's own labs"),
        ("/DC0/vm/Nestlab Labs/course-a", "holds Nestlab's own labs"),
        ("\n".join(f"/DC0/vm/f{n}" for n in range(21)), "At most 20 folders"),
    ],
)
def test_source_folders_are_vm_folders_of_the_datacenter_outside_nestlabs_own(folders, problem):
    endpoint = EndpointFactory.build(datacenter="DC0", template_source_folders=folders)
    endpoint.set_password("secret")
    if problem is None:
        endpoint.full_clean()
    else:
        assert problem in " ".join(_errors(endpoint)["template_source_folders"])


def test_a_path_is_refused_in_the_lab_folder_and_outside_the_chosen_folders():
    endpoint = EndpointFactory.build(name="vc1", datacenter="DC0")
    assert endpoint.source_path_refusal("/DC0/vm/Nestlab Labs/c1/lab-1/esxi") is not None
    assert endpoint.source_path_refusal("/DC0/vm/Nestlab Labs Old/esxi") is None, "a name that only starts alike"
    assert endpoint.source_path_refusal("/DC0/vm/anything") is None
    endpoint.template_source_folders = "/DC0/vm/Templates"
    assert endpoint.source_path_refusal("/DC0/vm/Templates/sub/esxi") is None
    assert (
        endpoint.source_path_refusal("/DC0/vm/TemplatesX/esxi")
        == "is outside the folders template VMs come from on vc1: /DC0/vm/Templates."
    )


# Lab manuals (docs/security.md, finding 4)


def test_a_manual_over_the_limit_is_refused_by_the_model():
    from courses.models import MANUAL_MAX_CHARACTERS, LabTemplate

    template = LabTemplate(name="t", endpoint=EndpointFactory(), manual="[" * (MANUAL_MAX_CHARACTERS + 1))
    with pytest.raises(ValidationError) as refused:
        template.full_clean()
    assert "at most 65536 characters" in " ".join(refused.value.message_dict["manual"])


def test_the_manual_is_rendered_when_saved_and_only_when_it_changed(monkeypatch):
    from courses import models

    template = models.LabTemplate.objects.create(name="t", endpoint=EndpointFactory(), manual="**one**")
    assert template.manual_html == "<p><strong>one</strong></p>\n"
    rendered = []
    monkeypatch.setattr(models, "render_markdown", lambda text: rendered.append(text) or f"<p>{text}</p>")
    template = models.LabTemplate.objects.get(pk=template.pk)
    template.revision += 1
    template.save()
    assert rendered == [], "an edit of something else does not render the manual again"
    template.manual = "two"
    template.save(update_fields=["manual"])
    assert rendered == ["two"]
    assert models.LabTemplate.objects.get(pk=template.pk).manual_html == "<p>two</p>"
