"""Local development secrets, generated once and kept under var/ (never committed)."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from cryptography.fernet import Fernet


def _owner_only(path: str, flags: int) -> int:
    return os.open(path, flags, 0o600)


def read_or_create_local_secret(var_dir: Path, name: str, *, fernet: bool = False) -> str:
    """Return the secret stored in ``var_dir/name``, creating it on first use.

    Only the embedded development mode relies on this; production sets SECRET_KEY and
    NESTLAB_ENCRYPTION_KEYS in the environment (portal.settings.production insists).
    """
    path = var_dir / name
    if path.exists():
        return path.read_text().strip()
    var_dir.mkdir(parents=True, exist_ok=True)
    value = Fernet.generate_key().decode() if fernet else secrets.token_urlsafe(50)
    # Create with owner-only permissions; a racing process may win, so re-read after.
    try:
        with open(path, "x", opener=_owner_only) as f:
            f.write(value)
    except FileExistsError:
        pass
    return path.read_text().strip()
