"""WebSocket routes of every app (the consumers stay thin; see docs/websocket.md)."""

websocket_urlpatterns: list = []
