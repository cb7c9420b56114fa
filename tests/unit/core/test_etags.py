"""core/etags.py: equal inputs, equal tags; any difference, another tag."""

import pytest

from core.etags import AnswerCache, fingerprint


def test_equal_inputs_give_equal_quoted_tags_and_any_difference_another():
    tag = fingerprint("lab", 3, [1, 2], None)
    assert tag == fingerprint("lab", 3, [1, 2], None)
    assert tag.startswith('"') and tag.endswith('"')
    assert len({tag, fingerprint("lab", 4, [1, 2], None), fingerprint("lab", 3, [2, 1], None)}) == 3
    assert fingerprint([1], [2]) != fingerprint([1, 2])  # list boundaries count


def test_an_answer_is_built_once_per_etag_and_the_least_recently_used_go_first():
    built = []

    def build(name):
        def make():
            built.append(name)
            return {"answer": name}

        return make

    cache = AnswerCache(size=2)
    first = cache.get_or_build('"a"', build("a"))
    assert cache.get_or_build('"a"', build("a again")) is first  # not built again
    cache.get_or_build('"b"', build("b"))
    cache.get_or_build('"a"', build("a again"))  # "a" is now the most recently used
    cache.get_or_build('"c"', build("c"))  # "b" goes
    cache.get_or_build('"b"', build("b again"))
    cache.get_or_build('"a"', build("a third time"))  # "c" and "b" in: "a" went
    assert built == ["a", "b", "c", "b again", "a third time"]


def test_an_answer_cache_holds_at_least_one():
    with pytest.raises(ValueError, match="at least one"):
        AnswerCache(size=0)
