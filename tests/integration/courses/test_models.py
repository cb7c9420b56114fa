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
