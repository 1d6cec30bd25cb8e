"""Every user-facing string is marked for translation.

The template check reads each template with Django's own lexer: text outside
{% blocktranslate %}…{% endblocktranslate %} (and outside other tags and variables) must not
hold words once HTML tags, entities, punctuation and symbols are removed. The values of the
attributes people see or hear (title, placeholder, aria-label, alt) are checked as well.
The extraction check runs makemessages over the code and looks for strings from templates
and from Python in the .po file it writes.
"""

from __future__ import annotations

import html
import re
import shutil
from pathlib import Path

import pytest
from django.template.base import Lexer, TokenType

from tests.support.po import extract

APP_DIR = Path(__file__).resolve().parent.parent / "app"

# Templates that may hold untranslated text, and why.
ALLOWED = {
    "lms/templates/lms/config.xml": "the LTI configuration cartridge: XML for an LMS, not text for people",
    "testlaunch/templates/testlaunch/form.html": "the test-launch page is a developer's stand-in for an LMS",
    "testlaunch/templates/testlaunch/post.html": "the test-launch page is a developer's stand-in for an LMS",
    "testlaunch/templates/testlaunch/gradebook.html": "the test-launch page's demo LMS (its gradebook)",
    "testlaunch/templates/testlaunch/platform_form_post.html": "the test-launch page's demo LMS (LTI 1.3 platform)",
    "testlaunch/templates/testlaunch/platform_refused.html": "the test-launch page's demo LMS (LTI 1.3 platform)",
}

CHECKED_ATTRIBUTES = ("title", "placeholder", "aria-label", "alt")
MARK = "\x00"  # stands for anything Django renders: a variable, a tag, a translated string
WORD = re.compile(r"[^\W\d_]{2,}")  # two or more letters in a row
RAW_ELEMENT = re.compile(r"<(script|style)\b[^>]*>.*?</\1\s*>", re.S | re.I)
COMMENT = re.compile(r"<!--.*?-->", re.S)
TAG = re.compile(r"<[!/?]?[A-Za-z][^>]*>")
ATTRIBUTE = re.compile(r"""(?<![\w-])(%s)\s*=\s*("[^"]*"|'[^']*'|[^\s>]+)""" % "|".join(CHECKED_ATTRIBUTES), re.I)
ENTITY = re.compile(r"&(#\d+|#x[0-9a-f]+|[a-z][a-z0-9]*);", re.I)


def templates() -> list[Path]:
    found = []
    for path in sorted(APP_DIR.glob("*/templates/**/*")):
        if path.is_file() and path.suffix in (".html", ".txt", ".xml"):
            found.append(path)
    return found


def rendered_outline(source: str) -> str:
    """The template with everything Django produces replaced by MARK: only literal text and
    HTML written in the template is left, with translated strings gone."""
    out, depth = [], 0
    for token in Lexer(source).tokenize():
        if token.token_type == TokenType.BLOCK:
            name = token.contents.split(" ", 1)[0]
            if name in ("blocktranslate", "blocktrans"):
                depth += 1
            elif name in ("endblocktranslate", "endblocktrans"):
                depth -= 1
            out.append(MARK)
        elif token.token_type == TokenType.TEXT and depth == 0:
            out.append(token.contents)
        elif token.token_type != TokenType.COMMENT:
            out.append(MARK)
    return "".join(out)


def untranslated(source: str) -> list[str]:
    """Pieces of text a person would see (or hear) that are not marked for translation."""
    outline = COMMENT.sub(" ", RAW_ELEMENT.sub(" ", rendered_outline(source)))
    pieces = []
    for tag in TAG.findall(outline):
        pieces += [value.strip("\"'") for _, value in ATTRIBUTE.findall(tag)]
    pieces += TAG.sub(" ", outline).split(MARK)
    problems = []
    for piece in pieces:
        text = " ".join(ENTITY.sub(" ", html.unescape(piece.replace(MARK, " "))).split())
        if WORD.search(text):
            problems.append(text)
    return problems


def test_the_check_finds_untranslated_text():
    assert untranslated("<p>Hello {{ name }}</p>") == ["Hello"]
    assert untranslated('<input placeholder="Your name">') == ["Your name"]
    assert untranslated('<a title="{% translate "Go" %}" aria-label="Back home">x</a>') == ["Back home"]
    assert untranslated("<span>{% if a %}Open{% endif %}</span>") == ["Open"]
    assert untranslated("{% load i18n %}<p>{% translate 'Hello' %} → {{ n }} ✓ — &nbsp;·</p>") == []
    assert untranslated("{% blocktranslate count n=k %}{{ n }} day{% plural %}{{ n }} days{% endblocktranslate %}") == []
    assert untranslated('<th aria-sort="{% if a %}ascending{% else %}descending{% endif %}">') == []
    assert untranslated("<script>document.title = 'x';</script><p>v{{ n }}</p>") == []


@pytest.mark.parametrize("path", [p for p in templates() if str(p.relative_to(APP_DIR)) not in ALLOWED],
                         ids=lambda p: str(p.relative_to(APP_DIR)))
def test_template_text_is_marked_for_translation(path):
    relative = str(path.relative_to(APP_DIR))
    problems = untranslated(path.read_text(encoding="utf-8"))
    assert not problems, f"app/{relative} has text outside translation tags:\n" + "\n".join(
        f"  {text!r}" for text in problems
    )


def test_allowed_templates_exist():
    for relative in ALLOWED:
        assert (APP_DIR / relative).is_file(), f"ALLOWED names a template that is gone: {relative}"


@pytest.mark.skipif(shutil.which("xgettext") is None, reason="needs GNU gettext (scripts/test installs it with apt)")
def test_makemessages_extracts_strings_from_templates_and_python(tmp_path):
    # (into tmp_path only: see tests.support.po.extract)
    po = extract(APP_DIR, tmp_path, "django").read_text(encoding="utf-8")
    for text in (
        'msgid "Students"',  # dashboard template
        'msgid "Save settings"',  # portal template
        'msgid "Your attempts"',  # student page
        'msgid "This exam opens on %(date)s at %(time)s."',  # attempts.selectors.attempt_options
        'msgid "A batch must be a JSON object."',  # attempts.protocol
        'msgid "Unknown consumer key"',  # lms.launch
        'msgid "Grading settings saved."',  # grading.views
    ):
        assert text in po, f"{text} was not extracted"
    assert 'msgid_plural "%(counter)s people"' in po


# --- our JavaScript --------------------------------------------------------------------------

JS_FILES = sorted(p for p in APP_DIR.glob("*/static/*/*.js"))
TRANSLATED_CALL = re.compile(r"\b(?:n?gettext)\((?:\s*(?:\"(?:[^\"\\]|\\.)*\"|`[^`]*`)\s*,?)+", re.S)
SENTENCE = re.compile(r"""(["`])([A-Z][a-z]+[^"`]*\s[a-z][^"`]*)\1""")


def untranslated_js(source: str) -> list[str]:
    """Sentence-like string literals outside gettext()/ngettext() and console messages."""
    source = TRANSLATED_CALL.sub("gettext(", source)
    lines = [line for line in source.splitlines() if "console." not in line and not line.lstrip().startswith("//")]
    return [m.group(2) for line in lines for m in SENTENCE.finditer(line)]


def test_the_js_check_finds_untranslated_text():
    assert untranslated_js('x.textContent = "All changes saved";') == ["All changes saved"]
    assert untranslated_js('x.textContent = gettext("All changes saved");') == []
    assert untranslated_js('t = ngettext("One change waiting",\n  "Many changes waiting", n);') == []
    assert untranslated_js('console.error("Batch refused", id);') == []


@pytest.mark.parametrize("path", JS_FILES, ids=lambda p: str(p.relative_to(APP_DIR)))
def test_javascript_text_is_marked_for_translation(path):
    assert not untranslated_js(path.read_text(encoding="utf-8")), (
        f"{path.relative_to(APP_DIR)}: wrap these in gettext() (Django's JavaScript catalogue, /jsi18n/): "
        f"{untranslated_js(path.read_text(encoding='utf-8'))}")


@pytest.mark.skipif(shutil.which("xgettext") is None, reason="needs GNU gettext (scripts/test installs it with apt)")
def test_makemessages_extracts_strings_from_our_javascript(tmp_path):
    po = extract(APP_DIR, tmp_path, "djangojs").read_text(encoding="utf-8")
    for text in ('msgid "All changes saved"', 'msgid "Uploading…"', 'msgid "The report failed."',
                 'msgid_plural "Not saved yet (%(n)s changes waiting) — retrying"'):
        assert text in po, f"{text} was not extracted"


@pytest.mark.django_db
def test_the_javascript_catalogue_is_served(client):
    response = client.get("/jsi18n/")
    assert response.status_code == 200 and response["Content-Type"].startswith("text/javascript")
    assert "globals.gettext" in response.content.decode() and "globals.interpolate" in response.content.decode()
