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


def test_rotation_takes_guest_passwords_on_template_vms_and_in_versions(settings):
    from courses import services
    from courses.models import TemplateVM
    from tests.factories import InstructorFactory

    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.NESTLAB_ENCRYPTION_KEYS = [old]
    owner = InstructorFactory()
    template = services.template_create(actor=owner, endpoint=EndpointFactory(), name="Guided")
    vm = services.template_vm_add(
        template=template, actor=owner, role="router", source_moref="vm-1", source_name="router", nic_networks=["lab"]
    )
    services.template_vm_update(vm=vm, actor=owner, guest_username="root", guest_password="guest-pw")
    version = services.template_version_create(template=template, actor=owner)

    settings.NESTLAB_ENCRYPTION_KEYS = [new, old]
    call_command("rotate_secrets", stdout=open("/dev/null", "w"))  # noqa: SIM115
    settings.NESTLAB_ENCRYPTION_KEYS = [new]
    from core import crypto

    assert crypto.decrypt(TemplateVM.objects.get(pk=vm.pk).guest_password_ciphertext) == "guest-pw"
    version.refresh_from_db()
    assert version.guest_accounts["router"]["username"] == "root"
    assert crypto.decrypt(version.guest_accounts["router"]["password_ciphertext"]) == "guest-pw"
