"""Exams exported from the Numbas editor load MathJax from a public CDN at run time (Numbas 6:
MathJax 2.7 from cdnjs; Numbas 10: MathJax 4 from jsdelivr). Without it they show raw LaTeX or
nothing at all — in an exam hall without internet, say — and every student's browser calls a
third party. When an exam is stored, its pages are pointed at the copies the exam-content origin
serves instead (/mathjax/2/, /mathjax/4/; see content/assets.py). EXAM_MATHJAX=cdn makes the
content origin redirect those addresses to the CDNs, so the stored exams need no change either way.
"""

from __future__ import annotations

import re
from pathlib import Path

LOCAL_2 = "/mathjax/2/MathJax.js"
LOCAL_4 = "/mathjax/4/"
# MathJax 4 fetches its fonts from jsdelivr even when it is loaded from elsewhere, unless its
# loader is told where they are: this script does that, just before MathJax loads.
FONTS_4 = "/mathjax/local-fonts.js"

_URL = r"(?:https?:)?//[^\"'\s>]+"
_SCRIPT_SRC = re.compile(rf"<script\b[^>]*?\bsrc\s*=\s*(?P<quote>[\"'])(?P<url>{_URL})(?P=quote)[^>]*>", re.I)
# MathJax 2's entry point, from any CDN: a 2.x version (or the retired cdn.mathjax.org "latest").
_MATHJAX_2 = re.compile(r"^(?:https?:)?//[^/]*/(?:.*/)?(?:mathjax/(?:2(?:\.\d+)*(?:-latest)?|latest)|mathjax@2(?:\.\d+)*)"
                        r"/MathJax\.js(?P<query>\?.*)?$", re.I)
# A MathJax 4 component (tex-svg.js, tex-mml-chtml.js, startup.js, ...) from jsdelivr or unpkg.
_MATHJAX_4 = re.compile(r"^(?:https?:)?//(?:cdn\.jsdelivr\.net/npm|unpkg\.com)/mathjax@4(?:\.\d+)*"
                        r"/(?P<file>[\w.-]+\.js)(?P<query>\?.*)?$", re.I)
# A Subresource Integrity hash pins the CDN's file; the local copy is another file (another
# version, often), which the browser would refuse to run. The content origin is trusted anyway.
_INTEGRITY = re.compile(r"""\s+integrity\s*=\s*(?:"[^"]*"|'[^']*'|[^\s>]+)""", re.I)


def local_mathjax(html: str) -> str:
    """The page with MathJax 2 and 4 loaded from the exam-content origin; anything else unchanged."""

    def replace(match: re.Match) -> str:
        tag, url, quote = match.group(0), match.group("url"), match.group("quote")
        if found := _MATHJAX_2.match(url):
            local, before = f"{LOCAL_2}{found.group('query') or ''}", ""
        elif found := _MATHJAX_4.match(url):
            local = f"{LOCAL_4}{found.group('file')}{found.group('query') or ''}"
            before = f'<script src="{FONTS_4}"></script>'
        else:
            return tag
        tag = _INTEGRITY.sub("", tag)
        return before + tag.replace(f"{quote}{url}{quote}", f"{quote}{local}{quote}", 1)

    return _SCRIPT_SRC.sub(replace, html)


def point_at_local_mathjax(directory: Path) -> int:
    """Rewrite every HTML page of an extracted exam in place; returns how many changed."""
    changed = 0
    for page in sorted(directory.rglob("*")):
        if page.suffix.lower() not in (".html", ".htm") or not page.is_file() or page.is_symlink():
            continue
        # Bytes that are not UTF-8 survive the round trip untouched.
        text = page.read_bytes().decode("utf-8", "surrogateescape")
        new = local_mathjax(text)
        if new != text:
            page.write_bytes(new.encode("utf-8", "surrogateescape"))
            changed += 1
    return changed
