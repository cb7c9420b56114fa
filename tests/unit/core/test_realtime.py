import datetime

import pytest

from core import realtime
from core.realtime import publish as publish_unchecked  # bound before the tests' schema check wraps it


def test_group_names_are_built_from_the_object_kind_and_id():
    assert realtime.lab_group(7) == "lab.7"
    assert realtime.course_group(3) == "course.3"
    assert realtime.user_group(11) == "user.11"


def test_a_message_that_is_not_json_fails_where_it_is_built():
    with pytest.raises(TypeError):
        publish_unchecked(["user.1"], {"type": "x", "when": datetime.datetime.now()})
