import pytest


@pytest.fixture(autouse=True)
def fresh_attempt_counts():
    """Attempts are counted in Redis (core.rate_limit), which outlives a test's database: each
    test starts with none."""
    from core.rate_limit import forget_all

    forget_all()
    yield
