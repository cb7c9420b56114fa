import pytest

from courses.usage import UsageBar


@pytest.mark.parametrize(
    ("used", "limit", "percent", "level", "over"),
    [
        (0, None, 0, "ok", False),
        (50, None, 0, "ok", False),
        (0, 10, 0, "ok", False),
        (7, 10, 70, "ok", False),
        (8, 10, 80, "warn", False),
        (9.5, 10, 95, "warn", False),
        (10, 10, 100, "full", False),
        (12, 10, 100, "full", True),  # a limit lowered below usage
        (0, 0, 100, "full", False),  # zero means none allowed
        (1, 0, 100, "full", True),
    ],
)
def test_bar_levels(used, limit, percent, level, over):
    bar = UsageBar("running_labs", "Labs running", used, limit)
    assert (bar.percent, bar.level, bar.over, bar.unlimited) == (percent, level, over, limit is None)
