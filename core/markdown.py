"""Markdown for lab manuals and descriptions, rendered without scripts, in bounded time.

markdown-it-py (a CommonMark parser built to stay linear on pathological input, with tables,
strikethrough, definition lists and footnotes) turns the text into HTML; nh3 (the Ammonia
sanitizer) then keeps only a safe list of tags and attributes, so a manual cannot carry script,
event handlers, iframes or javascript: links whatever its author writes.

Python-Markdown, used before, took 40 s for 16 KB of ``[`` and 15 s for a 300 KB manual of
nested markup, on every page view (docs/security.md, finding 4). Now manuals are limited in size
(``courses.models.MANUAL_MAX_CHARACTERS``) and rendered once when saved and at publish; pages show
the stored HTML. bench/markdown_worst_case.py prints the render times of the worst inputs known.
"""

from __future__ import annotations

from functools import cache

import nh3
from django.utils.safestring import SafeString, mark_safe
from markdown_it import MarkdownIt
from mdit_py_plugins.deflist import deflist_plugin
from mdit_py_plugins.footnote import footnote_plugin

ALLOWED_TAGS = {
    "a", "abbr", "b", "blockquote", "br", "code", "dd", "del", "details", "div", "dl", "dt", "em",
    "h1", "h2", "h3", "h4", "h5", "h6", "hr", "i", "img", "kbd", "li", "ol", "p", "pre", "s",
    "section", "span", "strong", "sub", "summary", "sup", "table", "tbody", "td", "th", "thead", "tr", "ul",
}  # fmt: skip
ALLOWED_ATTRIBUTES = {
    "a": {"href", "title"},
    "img": {"src", "alt", "title"},
    "code": {"class"},
    "span": {"class"},
    "div": {"class"},
    # No style attribute: the content security policy refuses inline styles (table alignment
    # from markdown-it comes as one and is dropped).
    "th": {"align"},
    "td": {"align"},
}


@cache
def _parser() -> MarkdownIt:
    # "commonmark" keeps its nesting limit (maxNesting), which bounds deep blockquotes and lists.
    return (
        MarkdownIt("commonmark", {"html": True})
        .enable(["table", "strikethrough"])
        .use(deflist_plugin)
        .use(footnote_plugin)
    )


def render_markdown(text: str) -> SafeString:
    """Markdown to sanitised HTML. Seconds for the largest manuals: call it when a text is saved,
    not on every page view."""
    return sanitize_html(_parser().render(text or ""))


def sanitize_html(html: str) -> SafeString:
    """HTML cut down to the allow-lists (tags, attributes, URL schemes): what render_markdown
    gives, and what a stored page becomes again after values were filled into it."""
    cleaned = nh3.clean(
        html,
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes={"http", "https", "mailto"},
        link_rel="noopener noreferrer nofollow",
    )
    # Safe: nh3 has just removed everything outside the allow-lists above.
    return mark_safe(cleaned)


def stored_html(html: str) -> SafeString:
    """HTML that ``render_markdown`` produced and the database kept (``manual_html`` fields)."""
    # Safe: only render_markdown's sanitised output is ever written to those fields (editable=False).
    return mark_safe(html)
