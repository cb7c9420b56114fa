"""Markdown for lab manuals and descriptions, rendered without scripts.

Markdown turns the text into HTML; nh3 (the Ammonia sanitizer) then keeps only a
safe list of tags and attributes, so a manual cannot carry script, event handlers,
iframes or javascript: links whatever its author writes.
"""

from __future__ import annotations

import markdown as markdown_lib
import nh3
from django.utils.safestring import SafeString, mark_safe

ALLOWED_TAGS = {
    "a", "abbr", "b", "blockquote", "br", "code", "dd", "del", "details", "div", "dl", "dt", "em",
    "h1", "h2", "h3", "h4", "h5", "h6", "hr", "i", "img", "kbd", "li", "ol", "p", "pre", "s",
    "span", "strong", "sub", "summary", "sup", "table", "tbody", "td", "th", "thead", "tr", "ul",
}  # fmt: skip
ALLOWED_ATTRIBUTES = {
    "a": {"href", "title"},
    "img": {"src", "alt", "title"},
    "code": {"class"},
    "span": {"class"},
    "div": {"class"},
    "th": {"align"},
    "td": {"align"},
}
EXTENSIONS = ["extra", "sane_lists", "toc"]


def render_markdown(text: str) -> SafeString:
    html = markdown_lib.markdown(text or "", extensions=EXTENSIONS, output_format="html")
    cleaned = nh3.clean(
        html,
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes={"http", "https", "mailto"},
        link_rel="noopener noreferrer nofollow",
    )
    # Safe: nh3 has just removed everything outside the allow-lists above.
    return mark_safe(cleaned)
