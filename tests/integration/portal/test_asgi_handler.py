"""portal.asgi_limit.OneHopASGIHandler: Django's ASGI handler with the middleware chain and the
view run in one call on the request's thread; answers must be Django's own."""

from __future__ import annotations

import json
import threading

import pytest
from asgiref.sync import async_to_sync
from asgiref.testing import ApplicationCommunicator
from django.http import HttpResponse, StreamingHttpResponse
from django.test import override_settings
from django.urls import path
from rest_framework.authtoken.models import Token

from portal.asgi_limit import OneHopASGIHandler
from tests.factories import StudentFactory

pytestmark = pytest.mark.django_db(transaction=True)

THREADS: list[tuple[str, int]] = []


class RecordThread:
    """A synchronous middleware noting the thread it runs on."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        THREADS.append(("middleware", threading.get_ident()))
        return self.get_response(request)


def _threaded_view(request):
    THREADS.append(("view", threading.get_ident()))
    return HttpResponse("ok")


def _streamed_view(request):
    async def lines():  # under ASGI Django wants an asynchronous iterator (as core.audit gives it)
        for n in range(3):
            yield f"line {n}\n"

    return StreamingHttpResponse(lines())


urlpatterns = [path("thread/", _threaded_view), path("stream/", _streamed_view)]


def _get(handler, path_, headers=()):
    """One GET through the ASGI handler: status, headers and the body (streamed ones joined)."""
    scope = {
        "type": "http",
        "http_version": "1.1",
        "method": "GET",
        "path": path_,
        "raw_path": path_.encode(),
        "query_string": b"",
        "scheme": "http",
        "server": ("testserver", 80),  # the test settings' allowed host
        "client": ("127.0.0.1", 50000),
        "headers": [(name.encode(), value.encode()) for name, value in headers],
    }

    async def exchange():
        communicator = ApplicationCommunicator(handler, scope)
        await communicator.send_input({"type": "http.request", "body": b"", "more_body": False})
        start = await communicator.receive_output(10)
        body = b""
        while True:
            chunk = await communicator.receive_output(10)
            body += chunk.get("body", b"")
            if not chunk.get("more_body"):
                break
        await communicator.wait(10)
        return {"status": start["status"], "body": body}

    return async_to_sync(exchange)()


def test_pages_and_the_api_answer_through_it_as_through_django():
    handler = OneHopASGIHandler()
    assert _get(handler, "/healthz")["status"] == 200
    assert _get(handler, "/no/such/page/")["status"] == 404
    assert _get(handler, "/api/v1/labs/")["status"] in (401, 403)  # no credentials
    token = Token.objects.create(user=StudentFactory())
    answer = _get(handler, "/api/v1/labs/", [("authorization", f"Token {token.key}")])
    assert answer["status"] == 200
    assert json.loads(answer["body"])["count"] == 0


def test_the_middleware_and_the_view_run_on_the_request_thread_without_going_back_to_the_loop(settings, monkeypatch):
    """Django's own async chain, with django-axes' async-capable middleware innermost, went from
    the request's thread back to the event loop (async_to_sync) and out again for the view."""
    from asgiref import sync

    THREADS.clear()
    back_to_the_loop = []
    original = sync.AsyncToSync.__call__

    def counted(self, *args, **kwargs):
        if threading.get_ident() != main_thread:
            back_to_the_loop.append(self)
        return original(self, *args, **kwargs)

    main_thread = threading.get_ident()
    monkeypatch.setattr(sync.AsyncToSync, "__call__", counted)
    with override_settings(MIDDLEWARE=[*settings.MIDDLEWARE, f"{__name__}.RecordThread"], ROOT_URLCONF=__name__):
        handler = OneHopASGIHandler()
        assert _get(handler, "/thread/")["body"] == b"ok"
        assert _get(handler, "/stream/")["body"] == b"line 0\nline 1\nline 2\n"
    assert back_to_the_loop == []
    (first, middleware_thread), (second, view_thread), *_ = THREADS  # then /stream/'s middleware
    assert (first, second) == ("middleware", "view")
    assert middleware_thread == view_thread != main_thread
