"""Encryption of stored secrets (vCenter passwords) with keys kept outside the database.

The keys come from settings.NESTLAB_ENCRYPTION_KEYS (newest first). MultiFernet decrypts
with any listed key and encrypts with the first, so keys can be rotated: add the new key
in front, run `manage.py rotate_secrets`, then drop the old one.
"""

from __future__ import annotations

from functools import cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings

# The stored secrets, by model label: each app names its encrypted fields (AppConfig.ready), so
# `manage.py rotate_secrets` re-encrypts all of them without knowing every app.
ENCRYPTED_FIELDS: dict[str, tuple[str, ...]] = {}


def register_encrypted_fields(model_label: str, *fields: str) -> None:
    ENCRYPTED_FIELDS[model_label] = fields


class SecretUnreadable(Exception):
    """A stored secret cannot be decrypted with any configured key."""


@cache
def _fernet(keys: tuple[str, ...]) -> MultiFernet:
    return MultiFernet([Fernet(key.encode()) for key in keys])


def _current() -> MultiFernet:
    return _fernet(tuple(settings.NESTLAB_ENCRYPTION_KEYS))


def encrypt(plaintext: str) -> str:
    return _current().encrypt(plaintext.encode()).decode()


def decrypt(ciphertext: str) -> str:
    try:
        return _current().decrypt(ciphertext.encode()).decode()
    except InvalidToken as error:
        raise SecretUnreadable(
            "A stored secret cannot be decrypted: NESTLAB_ENCRYPTION_KEYS does not hold the key it was encrypted with."
        ) from error


def rotate(ciphertext: str) -> str:
    """Re-encrypt with the newest key."""
    return _current().rotate(ciphertext.encode()).decode()
