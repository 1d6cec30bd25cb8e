"""Finding English left on a page shown in another language.

Every string marked for translation (its English msgid) is cut into the pieces a person would
read: HTML tags and placeholders (%(name)s, %s, {name}) removed, and only pieces of two words or
more kept (a single word such as "Name" or "Status" may well be the same in German). A piece that
occurs in the page's visible text is English the catalogue did not translate — unless the same
piece occurs in a translation too (a product name, say).
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from pathlib import Path

from tests.support import po

TAG = re.compile(r"<[^>]*>")
PLACEHOLDER = re.compile(r"%\([^)]*\)[-#0 +]*\d*(?:\.\d+)?[sdifr]|%[sdifr]|%%|\{[^{}]*\}")
WORD = re.compile(r"[^\W\d_]{2,}")
EDGES = " \t.,:;!?–—-()[]\"'“”‘’…/·•|→←"
RAW = re.compile(r"<(script|style|template)\b[^>]*>.*?</\1\s*>", re.S | re.I)
COMMENT = re.compile(r"<!--.*?-->", re.S)
SEEN_ATTRIBUTES = re.compile(r"""\b(title|aria-label|placeholder|alt)\s*=\s*("[^"]*"|'[^']*')""", re.I)


@dataclass(frozen=True)
class Piece:
    text: str
    msgid: str


def pieces(msgid: str) -> list[str]:
    found = []
    text = html.unescape(TAG.sub(" ", msgid))
    for part in PLACEHOLDER.split(text):
        part = " ".join(part.split()).strip(EDGES)
        if len(WORD.findall(part)) >= 2:
            found.append(part)
    return found


def english_pieces(entries: list[po.Entry], translations: list[po.Entry]) -> list[Piece]:
    """The pieces of every msgid (and plural msgid) in `entries`, less those any translation holds too."""
    translated_text = "\n".join(" ".join(form.split()) for t in translations for form in t.msgstr)
    found = set()
    for entry in entries:
        for msgid in filter(None, (entry.msgid, entry.msgid_plural)):
            for piece in pieces(msgid):
                if piece not in translated_text:
                    found.add(Piece(piece, msgid))
    return sorted(found, key=lambda p: p.text)


def visible_text(page_html: str) -> str:
    """What a person reads or hears from a server-rendered page: its text and the title,
    aria-label, placeholder and alt attributes (scripts, styles and comments left out)."""
    source = COMMENT.sub(" ", RAW.sub(" ", page_html))
    attributes = [value[1:-1] for _, value in SEEN_ATTRIBUTES.findall(source)]
    title = re.search(r"<title>(.*?)</title>", source, re.S)
    body = source[source.find("<body"):] if "<body" in source else source
    parts = [title.group(1) if title else "", *attributes, TAG.sub(" ", body)]
    return " ".join(html.unescape(" \n ".join(parts)).split())


def english_left(text: str, english: list[Piece], *, user_content: list[str] = ()) -> list[str]:
    """The English pieces found in `text` (whitespace collapsed), after removing user content
    (names, titles, exam content) from it."""
    text = " ".join(text.split())
    for value in sorted(user_content, key=len, reverse=True):
        if value:
            text = text.replace(" ".join(value.split()), " ¶ ")
    return [f"{p.text!r} (from {p.msgid!r})" for p in english
            if p.text in text and re.search(r"(?<!\w)" + re.escape(p.text) + r"(?!\w)", text)]


def catalogue(code: str, domain: str, app_dir: Path) -> list[po.Entry]:
    from django.utils.translation import to_locale

    return po.read(app_dir / "locale" / to_locale(code) / "LC_MESSAGES" / f"{domain}.po")[1]
