"""The WebSocket handshake's origin check: scheme, host and port, not the host alone.

Channels' ``AllowedHostsOriginValidator`` compared only the origin's host with
``ALLOWED_HOSTS``, so a page served from another port or over plain http on the same host
(another app of the school's, a student's own server on a lab machine) could open the
portal's sockets with the visitor's session (docs/security.md, finding 5). Here an origin is
accepted only if it is exactly the portal's own origin, the one the browser used to reach it
(the ``Host`` header, itself one of ``ALLOWED_HOSTS``, and the scheme, honouring
``SECURE_PROXY_SSL_HEADER`` behind a TLS proxy), or one of ``CSRF_TRUSTED_ORIGINS``.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from channels.security.websocket import WebsocketDenier
from django.conf import settings
from django.http.request import split_domain_port, validate_host

DEFAULT_PORTS = {"http": 80, "https": 443}


def normalise_origin(origin: str) -> tuple[str, str, int] | None:
    """``(scheme, host, port)`` of an origin, the port filled in; None if it is not one."""
    try:
        parts = urlsplit(origin.strip().lower())
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in DEFAULT_PORTS or not parts.hostname or parts.path not in ("", "/"):
        return None
    return parts.scheme, parts.hostname, port or DEFAULT_PORTS[parts.scheme]


def _header(scope: dict, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key.lower() == name:
            return value.decode("latin-1")
    return None


def _request_scheme(scope: dict) -> str:
    proxy = getattr(settings, "SECURE_PROXY_SSL_HEADER", None)
    if proxy:
        header, secure_value = proxy
        name = header.removeprefix("HTTP_").replace("_", "-").lower().encode()
        forwarded = _header(scope, name)
        if forwarded is not None:
            return "https" if forwarded.split(",")[0].strip() == secure_value else "http"
    return "https" if scope.get("scheme") in ("wss", "https") else "http"


def own_origin(scope: dict) -> tuple[str, str, int] | None:
    """The origin the browser used to reach the portal, if its host is an allowed one."""
    host = _header(scope, b"host")
    if not host:
        return None
    domain, _port = split_domain_port(host)
    if not domain or not validate_host(domain, settings.ALLOWED_HOSTS):
        return None
    return normalise_origin(f"{_request_scheme(scope)}://{host}")


def origin_allowed(scope: dict) -> bool:
    origin = _header(scope, b"origin")
    if origin is None:
        return False  # every browser sends one on a WebSocket handshake
    wanted = normalise_origin(origin)
    if wanted is None:
        return False
    trusted = {normalise_origin(each) for each in settings.CSRF_TRUSTED_ORIGINS}
    return wanted == own_origin(scope) or wanted in trusted


class SameOriginValidator:
    """ASGI middleware: refuse the handshake (403, before any consumer runs) from another origin."""

    def __init__(self, application) -> None:
        self.application = application

    async def __call__(self, scope, receive, send):
        if scope["type"] == "websocket" and not origin_allowed(scope):
            denier = WebsocketDenier()
            return await denier(scope, receive, send)
        return await self.application(scope, receive, send)
