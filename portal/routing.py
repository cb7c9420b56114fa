"""WebSocket routes of every app (the consumers stay thin; see docs/websocket.md)."""

from labs.routing import websocket_urlpatterns as labs_websockets

websocket_urlpatterns = [*labs_websockets]
