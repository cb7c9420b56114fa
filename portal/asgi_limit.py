"""A cap on the HTTP requests one ASGI server process hands to Django at once.

Django runs every HTTP request's view on a thread of its own, with a database connection of
its own (closed when the request ends). Nothing else bounds how many run at once: when the
server falls behind, every waiting client's request holds a thread and, from its first
query, a PostgreSQL connection. 200 students polling the API took PostgreSQL past its 100
connections that way, and the requests past them failed with 500 (docs/benchmarks.md, API
load). With the cap, the requests past it wait their turn in the event loop, in the order
they came, which costs nothing; WebSockets are not counted (their consumers have their own
thread).
"""

from __future__ import annotations

import asyncio


class ConcurrencyLimit:
    """ASGI middleware: at most ``limit`` HTTP requests at once go through to ``app``."""

    def __init__(self, app, limit: int) -> None:
        if limit < 1:
            raise ValueError(f"The limit of requests at once must be at least 1, not {limit}.")
        self.app = app
        self.limit = limit
        self._slots = asyncio.Semaphore(limit)  # bound to the server's loop at first use

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        async with self._slots:
            await self.app(scope, receive, send)
