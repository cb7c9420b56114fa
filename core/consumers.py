"""What every WebSocket consumer does the same way: refuse a socket, with a close code a client
can act on, and record the refusal of a signed-in person once (the pages' core.web, for sockets).
"""

from __future__ import annotations

from channels.db import database_sync_to_async

from core import audit

# Close codes a client can act on (4000-4999 are the application's own; docs/websocket.md).
NOT_SIGNED_IN = 4401
NOT_ALLOWED = 4403


class RefusingConsumer:
    """A mixin for Channels' websocket consumers; ``audit_action`` names their refusals."""

    audit_action: str

    async def refuse(self, code: int, reason: str = "", *, subprotocol: str | None = None, words: str = "") -> None:
        """Close the socket with ``code``; a 4403 (a signed-in person not allowed) is recorded
        with ``reason``; ``words`` go with the close frame for the client to show."""
        if code == NOT_ALLOWED:  # a signed-in person; one who is not is asked to sign in
            await database_sync_to_async(audit.websocket_refused)(
                scope=self.scope, action=self.audit_action, reason=reason or "Not allowed."
            )
        # Accept first so that the browser receives the code (a refused handshake has none).
        await self.accept(subprotocol=subprotocol)
        await self.close(code=code, reason=words or None)
