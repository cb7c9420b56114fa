"""Dates on pages, in one format: the one the reader's date pickers use.

A browser's date picker writes dates in the browser's own locale (12/04/2026 in American
English, 04/12/2026 in British English, 04.12.2026 in German), whatever the page asks. So pages
do not pick a format of their own: `day` writes ISO 8601 into a <time> element, which is the
pickers' value format and what a page without JavaScript shows, and static/js/nestlab.js
rewrites it the way the browser writes dates in its pickers.
"""

from __future__ import annotations

import datetime

from django import template
from django.utils import timezone
from django.utils.html import format_html

register = template.Library()


@register.filter
def day(value: datetime.date | datetime.datetime | None) -> str:
    """The date (a moment's date where the portal is, TIME_ZONE) as <time datetime="2026-12-04" data-date>."""
    if not value:
        return ""
    if isinstance(value, datetime.datetime):
        value = timezone.localtime(value).date() if timezone.is_aware(value) else value.date()
    iso = value.isoformat()
    return format_html('<time datetime="{}" data-date>{}</time>', iso, iso)
