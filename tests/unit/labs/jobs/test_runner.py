import pytest

from labs.jobs.runner import heartbeat_interval, overall_progress


@pytest.mark.parametrize(
    ("start", "share", "percent", "expected"),
    [
        (0, 40, 0, 0),
        (0, 40, 50, 20),
        (0, 40, 100, 40),
        (40, 60, 50, 70),
        (40, 60, 100, 100),
        (40, 60, 150, 100),  # vCenter never says more than 100, but a bad value is bounded
        (40, 60, -5, 40),
        (90, 20, 100, 100),  # shares that add up past 100 never push progress past 100
    ],
)
def test_overall_progress(start, share, percent, expected):
    assert overall_progress(start, share, percent) == expected


@pytest.mark.parametrize(("timeout", "expected"), [(120, 10.0), (40, 10.0), (20, 5.0), (6, 1.5), (0, 0.05)])
def test_the_heartbeat_beats_four_times_per_timeout_at_most_every_10_s(settings, timeout, expected):
    settings.NESTLAB_OPERATION_HEARTBEAT_TIMEOUT = timeout
    assert heartbeat_interval() == expected
