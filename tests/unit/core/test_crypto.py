import pytest
from cryptography.fernet import Fernet

from core import crypto


@pytest.fixture
def keys(settings):
    first = Fernet.generate_key().decode()
    settings.NESTLAB_ENCRYPTION_KEYS = [first]
    return settings


def test_encrypt_hides_the_plaintext_and_decrypts_back(keys):
    token = crypto.encrypt("VMware1!")
    assert "VMware1!" not in token
    assert crypto.decrypt(token) == "VMware1!"


def test_same_plaintext_encrypts_differently_each_time(keys):
    assert crypto.encrypt("VMware1!") != crypto.encrypt("VMware1!")


def test_rotation_keeps_old_secrets_readable_and_moves_them_to_the_new_key(keys):
    old_token = crypto.encrypt("VMware1!")
    new_key = Fernet.generate_key().decode()
    keys.NESTLAB_ENCRYPTION_KEYS = [new_key, *keys.NESTLAB_ENCRYPTION_KEYS]

    assert crypto.decrypt(old_token) == "VMware1!"
    rotated = crypto.rotate(old_token)
    keys.NESTLAB_ENCRYPTION_KEYS = [new_key]
    assert crypto.decrypt(rotated) == "VMware1!"


def test_a_secret_from_another_key_says_why_it_cannot_be_read(keys):
    token = crypto.encrypt("VMware1!")
    keys.NESTLAB_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]
    with pytest.raises(crypto.SecretUnreadable, match="NESTLAB_ENCRYPTION_KEYS"):
        crypto.decrypt(token)
