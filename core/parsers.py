"""The API's request parsers: DRF's, with JSON nesting bounded.

Its own module: DRF reads DEFAULT_PARSER_CLASSES while ``rest_framework.views`` loads, so the
parsers cannot live in a module that imports it (core/api.py does).
"""

from __future__ import annotations

import io
import re

from rest_framework import exceptions
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser

# JSON nested deeper than this is refused before it is parsed: 100,000 nested "[" posted to the
# token route made Python's parser raise RecursionError, a 500 with a 176-line traceback (issue 10).
# The API's own bodies are at most a few levels deep.
MAX_JSON_DEPTH = 32
_JSON_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)  # unrolled: linear and fast
_NOT_BRACKETS = bytes(byte for byte in range(256) if byte not in b"[]{}")


def json_depth(raw: bytes) -> int:
    """How deeply a JSON text nests arrays and objects (brackets inside strings do not count).
    Linear in the size of the text, which Django already bounds (DATA_UPLOAD_MAX_MEMORY_SIZE)."""
    brackets = _JSON_STRING.sub(b"", raw).translate(None, _NOT_BRACKETS)
    depth = deepest = 0
    for byte in brackets:
        depth += 1 if byte in b"[{" else -1
        deepest = max(deepest, depth)
    return deepest


class BoundedJSONParser(JSONParser):
    """DRF's JSON parser, refusing too deep nesting (400 in words) before it parses."""

    def parse(self, stream, media_type=None, parser_context=None):
        raw = stream.read() if stream is not None else b""
        if json_depth(raw) > MAX_JSON_DEPTH:
            raise exceptions.ParseError(f"JSON nested more than {MAX_JSON_DEPTH} levels deep is not accepted.")
        return super().parse(io.BytesIO(raw), media_type, parser_context)


# The API's parsers, in every view (REST_FRAMEWORK["DEFAULT_PARSER_CLASSES"], and views that name
# their own, like the token view).
PARSERS = [BoundedJSONParser, FormParser, MultiPartParser]
