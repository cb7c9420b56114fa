"""core/etags.py: equal inputs, equal tags; any difference, another tag."""

from core.etags import fingerprint


def test_equal_inputs_give_equal_quoted_tags_and_any_difference_another():
    tag = fingerprint("lab", 3, [1, 2], None)
    assert tag == fingerprint("lab", 3, [1, 2], None)
    assert tag.startswith('"') and tag.endswith('"')
    assert len({tag, fingerprint("lab", 4, [1, 2], None), fingerprint("lab", 3, [2, 1], None)}) == 3
    assert fingerprint([1], [2]) != fingerprint([1, 2])  # list boundaries count
