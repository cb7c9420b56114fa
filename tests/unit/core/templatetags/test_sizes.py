"""portal/templatetags/sizes.py."""

import pytest

from core.templatetags.sizes import memory_size


@pytest.mark.parametrize(
    ("megabytes", "words"),
    [(96, "96 MB"), (1024, "1 GB"), (1536, "1.5 GB"), (18432, "18 GB"), (2 * 1024 * 1024, "2 TB"), (0, "0 MB")],
)
def test_memory_reads_in_the_largest_whole_unit(megabytes, words):
    assert memory_size(megabytes) == words
