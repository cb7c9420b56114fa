"""core/ws_origin.py: a WebSocket origin must match scheme, host and port (finding 5)."""

import pytest
from django.test import override_settings

from core.ws_origin import normalise_origin, origin_allowed


def scope(origin: str | None, host: str = "lab.example.edu", scheme: str = "wss", **headers: str) -> dict:
    sent = [(b"host", host.encode())]
    if origin is not None:
        sent.append((b"origin", origin.encode()))
    sent += [(name.replace("_", "-").encode(), value.encode()) for name, value in headers.items()]
    return {"type": "websocket", "scheme": scheme, "headers": sent}


@pytest.fixture(autouse=True)
def hosts():
    with override_settings(ALLOWED_HOSTS=["lab.example.edu"], CSRF_TRUSTED_ORIGINS=[], SECURE_PROXY_SSL_HEADER=None):
        yield


def test_the_portals_own_origin_is_accepted():
    assert origin_allowed(scope("https://lab.example.edu"))
    assert origin_allowed(scope("https://lab.example.edu:443"))  # the default port, written out
    assert origin_allowed(scope("http://lab.example.edu:8000", host="lab.example.edu:8000", scheme="ws"))


@pytest.mark.parametrize(
    "origin",
    [
        "https://lab.example.edu:8443",  # another port on the same host
        "http://lab.example.edu",  # another scheme
        "https://evil.example",
        "https://lab.example.edu.evil.example",
        "null",
        "",
        "https://lab.example.edu/path",
    ],
)
def test_any_other_origin_is_refused(origin):
    assert not origin_allowed(scope(origin))


def test_no_origin_and_a_host_outside_allowed_hosts_are_refused():
    assert not origin_allowed(scope(None))
    assert not origin_allowed(scope("https://evil.example", host="evil.example"))


def test_behind_a_tls_proxy_the_forwarded_scheme_counts():
    with override_settings(SECURE_PROXY_SSL_HEADER=("HTTP_X_FORWARDED_PROTO", "https")):
        proxied = scope("https://lab.example.edu", scheme="ws", x_forwarded_proto="https")
        assert origin_allowed(proxied)
        assert not origin_allowed(scope("http://lab.example.edu", scheme="ws", x_forwarded_proto="https"))


def test_csrf_trusted_origins_are_accepted_exactly():
    with override_settings(CSRF_TRUSTED_ORIGINS=["https://portal.example.edu:8443"]):
        assert origin_allowed(scope("https://portal.example.edu:8443"))
        assert not origin_allowed(scope("https://portal.example.edu"))


def test_normalise_origin():
    assert normalise_origin("HTTPS://Lab.Example.EDU") == ("https", "lab.example.edu", 443)
    assert normalise_origin("http://x:99999") is None
    assert normalise_origin("ws://x") is None
