"""labs/tasks.py: what a worker does when it starts."""

from labs import tasks


def test_a_starting_worker_reaps_now_and_again_once_a_dead_runs_heartbeat_is_stale(settings, monkeypatch):
    settings.NESTLAB_OPERATION_HEARTBEAT_TIMEOUT = 120
    sent: list[dict] = []
    monkeypatch.setattr(tasks.reap_operations, "delay", lambda: sent.append({}))
    monkeypatch.setattr(tasks.reap_operations, "apply_async", lambda **options: sent.append(options))
    tasks.reap_at_worker_start()
    # Now (a worker that died long ago), and when a worker killed just before this start
    # can be told dead: a supervisor restarts a worker faster than the heartbeat times out.
    assert sent == [{}, {"countdown": 121}]
