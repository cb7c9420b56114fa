"""Nestlab's own LTI signing keys (RSA 2048): made on first use, rotated by an admin, published
at /lti/jwks/ (every active key, so platforms that cached an older one still check it)."""

from __future__ import annotations

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from django.db import transaction
from pylti1p3.registration import Registration

from core import crypto
from lti.models import ToolKey

KEY_BITS = 2048


def _new_key() -> ToolKey:
    private = rsa.generate_private_key(public_exponent=65537, key_size=KEY_BITS)
    private_pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    public_pem = (
        private.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    # The kid is the key's thumbprint, as pylti1p3 puts in the headers of what it signs.
    kid = Registration.get_jwk(public_pem)["kid"]
    return ToolKey.objects.create(
        kid=kid, private_key_ciphertext=crypto.encrypt(private_pem), public_key_pem=public_pem
    )


def signing_key() -> ToolKey:
    """The newest active key; the first one is made here."""
    key = ToolKey.objects.filter(active=True).first()
    if key is not None:
        return key
    with transaction.atomic():
        # Two first launches at once: one makes the key, the other waits on the lock and uses it.
        list(ToolKey.objects.select_for_update().all())
        return ToolKey.objects.filter(active=True).first() or _new_key()


def rotate() -> ToolKey:
    """A new signing key; the old ones stay published until retired."""
    return _new_key()


def public_key_set() -> dict:
    """The JWKS of every active key (made first if there is none)."""
    signing_key()
    return {"keys": [Registration.get_jwk(key.public_key_pem) for key in ToolKey.objects.filter(active=True)]}
