"""Bounds of a platform's registration that live in the model (every path: page, API, admin)."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from lti.models import origin_of, validate_deployment_ids


@pytest.mark.parametrize("value", [["1"], ["1:abc", "2:def"], ["x" * 255], [str(n) for n in range(50)]])
def test_good_deployment_ids(value):
    validate_deployment_ids(value)


@pytest.mark.parametrize(
    ("value", "words"),
    [
        ([], "at least one"),
        ("1", "at least one"),
        ([""], "non-empty"),
        ([" "], "non-empty"),
        ([7], "non-empty"),
        (["x" * 256], "255"),
        ([str(n) for n in range(51)], "At most 50"),
        (["a", "a"], "twice"),
    ],
)
def test_bad_deployment_ids_are_refused_in_words(value, words):
    with pytest.raises(ValidationError, match=words):
        validate_deployment_ids(value)


def test_the_origin_of_an_issuer_is_scheme_and_host():
    assert origin_of("https://moodle.school.edu/lms/") == "https://moodle.school.edu"
    assert origin_of("http://127.0.0.1:8080") == "http://127.0.0.1:8080"
