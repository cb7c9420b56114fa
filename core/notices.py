"""Telling a person something: stored, pushed to open pages, shown once on the next page."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest
from django.utils import timezone

from core import realtime
from core.models import Notice

_MESSAGE_LEVELS = {
    Notice.Level.INFO: messages.INFO,
    Notice.Level.WARNING: messages.WARNING,
    Notice.Level.ERROR: messages.ERROR,
}


def notice_send(*, user_id: int, text: str, level: str = Notice.Level.WARNING) -> Notice:
    notice = Notice.objects.create(user_id=user_id, text=text, level=level)
    realtime.publish([realtime.user_group(user_id)], {"type": "notice", "seq": 0, "level": level, "text": text})
    return notice


def notices_show(request: HttpRequest) -> None:
    """Move a person's unread notices into the page's messages and mark them read."""
    unread = list(Notice.objects.filter(user=request.user, read_at__isnull=True))
    for notice in unread:
        messages.add_message(request, _MESSAGE_LEVELS.get(notice.level, messages.INFO), notice.text)
    if unread:
        Notice.objects.filter(pk__in=[n.pk for n in unread]).update(read_at=timezone.now())


class NoticesMiddleware:
    """Shows unread notices on the next full page a signed-in person opens."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest):
        user = getattr(request, "user", None)
        if (
            user is not None
            and user.is_authenticated
            and request.method == "GET"
            and "text/html" in request.headers.get("Accept", "")
            and not request.path.startswith(("/api/", "/static/"))
        ):
            notices_show(request)
        return self.get_response(request)
