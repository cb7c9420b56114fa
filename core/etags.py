"""ETags for conditional reads: a poll that changed nothing costs no serialization."""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any


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


class AnswerCache:
    """Answers already built, by ETag, so an unchanged object polled without ``If-None-Match``
    is not serialized again. An ETag fingerprints everything its answer is built from, so equal
    tags mean equal answers. Per process, bounded (the least recently used go first), safe for
    the request threads. The answers handed out are shared: callers must not change them."""

    def __init__(self, size: int = 4096) -> None:
        if size < 1:
            raise ValueError(f"An answer cache holds at least one answer, not {size}.")
        self._size = size
        self._answers: OrderedDict[str, Any] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, etag: str) -> Any:
        """The answer built for this ETag, or None."""
        with self._lock:
            if etag in self._answers:
                self._answers.move_to_end(etag)
                return self._answers[etag]
        return None

    def get_or_build(self, etag: str, build: Callable[[], Any]) -> Any:
        with self._lock:
            if etag in self._answers:
                self._answers.move_to_end(etag)
                return self._answers[etag]
        answer = build()  # outside the lock: two threads may build the same answer, both right
        with self._lock:
            self._answers[etag] = answer
            self._answers.move_to_end(etag)
            while len(self._answers) > self._size:
                self._answers.popitem(last=False)
        return answer
