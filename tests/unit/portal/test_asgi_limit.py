"""portal/asgi_limit.py: at most N HTTP requests at once reach the application."""

import asyncio

import pytest

from portal.asgi_limit import ConcurrencyLimit


class SlowApp:
    """An ASGI app that takes a while per request and records how many ran at once."""

    def __init__(self) -> None:
        self.running = 0
        self.most = 0
        self.order: list[int] = []

    async def __call__(self, scope, receive, send) -> None:
        self.running += 1
        self.most = max(self.most, self.running)
        await asyncio.sleep(0.01)
        self.order.append(scope["number"])
        await send({"type": "done", "number": scope["number"]})
        self.running -= 1


def _serve(limited: ConcurrencyLimit, scopes: list[dict]) -> list[dict]:
    sent: list[dict] = []

    async def send(message):
        sent.append(message)

    async def receive():
        return {"type": "http.request"}

    async def main():
        await asyncio.gather(*(limited(scope, receive, send) for scope in scopes))

    asyncio.run(main())
    return sent


def test_no_more_http_requests_than_the_limit_run_at_once_and_every_one_is_answered_in_turn():
    app = SlowApp()
    sent = _serve(ConcurrencyLimit(app, 3), [{"type": "http", "number": n} for n in range(20)])
    assert app.most == 3
    assert len(sent) == 20
    assert app.order == list(range(20)), "waiting requests go through in the order they came"


def test_websockets_are_not_counted():
    app = SlowApp()
    _serve(ConcurrencyLimit(app, 1), [{"type": "websocket", "number": n} for n in range(5)])
    assert app.most == 5


def test_a_limit_below_one_is_refused_in_words():
    with pytest.raises(ValueError, match="at least 1, not 0"):
        ConcurrencyLimit(SlowApp(), 0)


class SyncWorkApp:
    """An ASGI app whose request does thread-sensitive synchronous work, as Django's handler does."""

    def __init__(self) -> None:
        self.threads: list[str] = []  # names: a thread's ident may be given to a later thread
        self.busy: set[int] = set()
        self.shared = False

    def _work(self) -> None:
        import threading
        import time

        ident = threading.get_ident()
        self.shared = self.shared or ident in self.busy
        self.busy.add(ident)
        time.sleep(0.005)
        self.busy.discard(ident)
        self.threads.append(threading.current_thread().name)

    async def __call__(self, scope, receive, send) -> None:
        from asgiref.sync import ThreadSensitiveContext, sync_to_async

        async with ThreadSensitiveContext():  # what django.core.handlers.asgi.ASGIHandler does
            await sync_to_async(self._work)()
            await sync_to_async(self._work)()
        await send({"type": "done", "number": scope["number"]})


def test_requests_run_their_synchronous_work_on_the_same_few_threads_one_request_at_a_time():
    """So a database connection Django keeps on a thread (CONN_MAX_AGE) serves request after request."""
    app = SyncWorkApp()
    sent = _serve(ConcurrencyLimit(app, 3), [{"type": "http", "number": n} for n in range(30)])
    assert len(sent) == 30
    assert len(app.threads) == 60
    assert len(set(app.threads)) <= 3, "no new thread per request"
    assert not app.shared, "a thread never serves two requests at once"
