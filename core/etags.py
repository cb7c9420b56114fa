"""ETags for conditional reads: a poll that changed nothing costs no serialization."""

from __future__ import annotations

import hashlib


def fingerprint(*parts) -> str:
    """An ETag for what an answer is built from: model instances (every stored field), lists of
    them, and plain values (e.g. hours rounded as shown). Equal inputs give equal tags, so a
    client that sends the last one back gets ``304 Not Modified`` without the answer being built."""
    digest = hashlib.sha256()

    def add(part) -> None:
        if isinstance(part, (list, tuple)):
            digest.update(b"[")
            for item in part:
                add(item)
            digest.update(b"]")
        elif hasattr(part, "_meta"):
            digest.update(part._meta.label.encode())
            for field in part._meta.concrete_fields:
                digest.update(repr(getattr(part, field.attname)).encode())
        else:
            digest.update(repr(part).encode())
        digest.update(b"|")

    for part in parts:
        add(part)
    return f'"{digest.hexdigest()[:32]}"'
