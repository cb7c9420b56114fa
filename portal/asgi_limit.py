"""HTTP requests through Django on a fixed set of long-lived threads, at most one each.

Django's ASGI handler runs every request's synchronous work (middleware, view, the signals
that open and close database connections) in a thread-sensitive context of its own: a new
thread per request, with a database connection of its own. So a connection could never be
reused, whatever CONN_MAX_AGE said: with 0 every request opened one (about half of a poll's
CPU, in PostgreSQL's new backend and psycopg2's handshake), and above 0 each was left open
until the garbage collector found its thread (200 students polling took PostgreSQL past its
100 connections that way; docs/benchmarks.md).

Here each HTTP request is given one of ``limit`` single-thread executors for its whole life
(asgiref's ThreadSensitiveContext with an executor; Django's own context then reuses it). The
thread, and so the connection Django keeps on it (CONN_MAX_AGE, checked at the start of each
request with CONN_HEALTH_CHECKS), serves one request after another: a daphne holds at most
``limit`` connections for its HTTP requests and opens them once. Requests past the limit wait
their turn in the event loop, in the order they came, which costs nothing. WebSockets are not
counted: Channels runs their database work on its own thread.

``OneHopASGIHandler`` is Django's ASGI handler with its middleware chain loaded synchronous:
every middleware here is synchronous but django-axes', and Django's async chain left the
request's thread for the event loop at that one and came back for the view, hand-offs that cost
a poll about a third of daphne's CPU (py-spy; docs/benchmarks.md). Now the request goes to its
thread once for the middleware and the view together, as under WSGI.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

from asgiref.sync import ThreadSensitiveContext, sync_to_async
from django.core.handlers.asgi import ASGIHandler
from django.db import connections


class OneHopASGIHandler(ASGIHandler):
    """Django's ASGI handler running the middleware and the view in one call on the request's
    thread (see the module's words). Streaming answers, disconnects and the request signals are
    Django's own."""

    def __init__(self) -> None:
        super().__init__()
        self.load_middleware(is_async=False)

    async def get_response_async(self, request):
        return await sync_to_async(self.get_response, thread_sensitive=True)(request)


class ConcurrencyLimit:
    """ASGI middleware: each HTTP request runs on one of ``limit`` threads, one request per thread."""

    def __init__(self, app, limit: int, *, conn_max_age: int | None = 0) -> None:
        """``conn_max_age``: CONN_MAX_AGE of the database connections these threads open (None:
        no limit), whatever the settings say for the rest of the process."""
        if limit < 1:
            raise ValueError(f"The limit of requests at once must be at least 1, not {limit}.")
        self.app = app
        self.limit = limit
        self._slots = asyncio.Semaphore(limit)  # bound to the server's loop at first use
        # Last in, first out: a quiet server keeps using the same few threads (and connections).
        self._idle = [
            ThreadPoolExecutor(
                max_workers=1,
                thread_name_prefix=f"nestlab-http-{n}",
                initializer=_keep_connections,
                initargs=(conn_max_age,),
            )
            for n in reversed(range(limit))
        ]

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        async with self._slots:
            executor = self._idle.pop()
            try:
                async with ThreadSensitiveContext(executor=executor):
                    await self.app(scope, receive, send)
            finally:
                self._idle.append(executor)


def _keep_connections(conn_max_age: int | None) -> None:
    """In a new request thread: its connections (thread-local in Django) live ``conn_max_age``
    seconds. Only this thread's: other threads of the process (Channels' database thread, a
    test's) keep the settings' CONN_MAX_AGE."""
    for alias in connections:
        connection = connections[alias]
        if connection.vendor != "sqlite":  # SQLite: the settings' 0 (portal/settings)
            connection.settings_dict = {**connection.settings_dict, "CONN_MAX_AGE": conn_max_age}
