"""Fixtures shared by the integration tests."""

from __future__ import annotations

import pytest

from portal import simulator


@pytest.fixture(scope="session")
def demo_vcsim():
    """One simulator (-demo) for the whole session, for the modules that seed the demo
    (portal.demo.seed_demo) and build its labs. It is not the session's ``vcsim``: the demo
    seed leaves its template, snapshots and labs behind, which tests on ``vcsim`` must not see.
    Its users tolerate what an earlier test left (the demo seed and the lab builds are
    idempotent); a module that changes the simulator's rules puts them back."""
    server = simulator.start(args=["-demo"])
    yield server
    server.stop()
