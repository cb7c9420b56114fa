"""Fixtures shared by every test tier."""

from __future__ import annotations

import pytest

from portal import simulator


@pytest.fixture(scope="session")
def vcsim():
    """One vCenter simulator for the whole test session (built on first use).

    Yields a ``portal.simulator.Simulator``: ``.url``, ``.host``, ``.port``,
    ``.username``, ``.password``; ``.restart()`` for the 'vCenter restarted' fault.
    """
    server = simulator.start(args=["-demo"])
    yield server
    server.stop()
