"""The report's table of contents: one link per section heading (``<h2>``) the page holds.

The contents are built from the rendered page, not from the template's conditions, so a
section that a run leaves out (no Bayesian model, no bias analyses, no dose-response curve)
is never listed and every section that is printed is. Each heading keeps the ``id`` its
template gave it (stable anchors an author can quote: ``report.html#methods``); a heading
without one gets the slug of its words, made unique against every ``id`` of the page.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass

#: Where the template wants the contents (replaced by the ``<nav>``; kept out if absent).
MARKER = "<!-- contents -->"
_HEADING = re.compile(r"<h2(?P<attrs>(?:\s[^>]*)?)>(?P<body>.*?)</h2>", re.S)
_ID = re.compile(r"""\sid\s*=\s*["']([^"']*)["']""")
_TAG = re.compile(r"<[^>]+>")


@dataclass(frozen=True)
class Entry:
    """One line of the contents: the heading's anchor and its text."""

    anchor: str
    title: str


def slug(text: str) -> str:
    """``'Small-study effects'`` -> ``'small-study-effects'`` (letters, digits and hyphens)."""
    words = re.sub(r"[^0-9a-z]+", "-", html.unescape(_TAG.sub("", text)).casefold())
    return words.strip("-") or "section"


def _unique(anchor: str, taken: set[str]) -> str:
    candidate, number = anchor, 2
    while candidate in taken:
        candidate, number = f"{anchor}-{number}", number + 1
    return candidate


def add_contents(page: str) -> tuple[str, list[Entry]]:
    """``page`` with an ``id`` on every ``<h2>`` and the contents in place of :data:`MARKER`.

    Parameters
    ----------
    page : str
        The rendered report (HTML).

    Returns
    -------
    tuple of (str, list of Entry)
        The page, and the contents in page order.
    """
    taken = {"contents", *_ID.findall(_HEADING.sub("", page))}  # ids outside the headings (figures, ...)
    entries: list[Entry] = []

    def anchor(match: re.Match[str]) -> str:
        attrs, body = match.group("attrs"), match.group("body")
        given = _ID.search(attrs)
        wanted = given.group(1) if given else slug(body)
        unique = _unique(wanted, taken)
        taken.add(unique)
        entries.append(Entry(unique, " ".join(html.unescape(_TAG.sub("", body)).split())))
        attrs = _ID.sub(f' id="{unique}"', attrs) if given else f' id="{unique}"{attrs}'
        return f"<h2{attrs}>{body}</h2>"

    page = _HEADING.sub(anchor, page)
    return page.replace(MARKER, contents_html(entries), 1), entries


def contents_html(entries: list[Entry]) -> str:
    """The contents as a ``<nav>`` list of links (empty when there is nothing to list)."""
    if not entries:
        return ""
    items = "".join(
        f'<li><a href="#{html.escape(e.anchor)}">{html.escape(e.title)}</a></li>' for e in entries
    )
    return f'<nav id="contents" aria-label="Contents"><strong>Contents</strong><ol>{items}</ol></nav>'
