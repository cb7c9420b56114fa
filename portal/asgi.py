"""ASGI entry point: HTTP through Django, WebSockets through Channels.

WebSocket connections carry the Django session (AuthMiddlewareStack) and are refused
unless their Origin is the portal's own (scheme, host and port: core/ws_origin.py).
"""

import os

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
django.setup(set_prefix=False)  # what django.core.asgi.get_asgi_application does first

from portal.asgi_limit import ConcurrencyLimit, OneHopASGIHandler  # noqa: E402

django_asgi_app = OneHopASGIHandler()

import gc  # noqa: E402

# Everything loaded so far lives as long as the process: keep it out of the collector's
# full passes, which otherwise stall a busy server for 150 ms every few events.
gc.freeze()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.conf import settings  # noqa: E402

from core.ws_origin import SameOriginValidator  # noqa: E402
from portal.routing import websocket_urlpatterns  # noqa: E402

application = ProtocolTypeRouter(
    {
        # Each request in Django holds one of a fixed set of threads, and its database
        # connection, which the next request on that thread reuses.
        "http": ConcurrencyLimit(
            django_asgi_app, settings.NESTLAB_WEB_CONCURRENCY, conn_max_age=settings.NESTLAB_WEB_CONN_MAX_AGE
        ),
        "websocket": SameOriginValidator(AuthMiddlewareStack(URLRouter(websocket_urlpatterns))),
    }
)
