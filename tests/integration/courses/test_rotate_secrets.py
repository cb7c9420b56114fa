"""courses/management/commands/rotate_secrets.py: after it, the old key can be dropped."""

import pytest
from cryptography.fernet import Fernet
from django.core.management import call_command

from tests.factories import EndpointFactory

pytestmark = pytest.mark.django_db


def test_rotation_lets_the_old_key_go(settings):
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.NESTLAB_ENCRYPTION_KEYS = [old]
    endpoint = EndpointFactory(password="VMware1!", console_username="console@vsphere.local")
    endpoint.set_console_password("console-pw")
    endpoint.save()

    settings.NESTLAB_ENCRYPTION_KEYS = [new, old]
    call_command("rotate_secrets", stdout=open("/dev/null", "w"))  # noqa: SIM115
    settings.NESTLAB_ENCRYPTION_KEYS = [new]
    endpoint.refresh_from_db()
    assert endpoint.get_password() == "VMware1!"
    assert endpoint.get_console_password() == "console-pw"


def test_rotation_takes_the_lti_signing_keys_too(settings):
    from lti import keys

    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.NESTLAB_ENCRYPTION_KEYS = [old]
    private = keys.signing_key().private_key_pem
    settings.NESTLAB_ENCRYPTION_KEYS = [new, old]
    call_command("rotate_secrets", stdout=open("/dev/null", "w"))  # noqa: SIM115
    settings.NESTLAB_ENCRYPTION_KEYS = [new]
    assert keys.signing_key().private_key_pem == private
