"""core/parsers.py: JSON nesting is measured without parsing, and deep nesting is refused."""

import io

import pytest
from rest_framework.exceptions import ParseError

from core.parsers import MAX_JSON_DEPTH, BoundedJSONParser, json_depth


@pytest.mark.parametrize(
    ("text", "depth"),
    [
        (b"1", 0),
        (b"[]", 1),
        (b'{"a": [1, {"b": [2]}]}', 4),
        (b'{"a": "[[[[{{{{"}', 1),  # brackets in strings do not count
        (b'{"a": "quote \\" then [[["}', 1),  # nor after an escaped quote
        (b"[" * 100_000, 100_000),
    ],
)
def test_depth_counts_arrays_and_objects_outside_strings(text, depth):
    assert json_depth(text) == depth


def test_deep_nesting_is_refused_in_words_before_parsing():
    with pytest.raises(ParseError, match=f"nested more than {MAX_JSON_DEPTH} levels deep"):
        BoundedJSONParser().parse(io.BytesIO(b"[" * 100_000), "application/json", {})
    deep_enough = b"[" * MAX_JSON_DEPTH + b"]" * MAX_JSON_DEPTH
    assert BoundedJSONParser().parse(io.BytesIO(deep_enough), "application/json", {}) is not None
