import pytest


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    """Every test makes several accounts; the production hasher takes a good part of a second each."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
