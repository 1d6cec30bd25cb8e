"""The shipped translations are complete, correct and compiled.

- Every language in settings.LANGUAGES other than English has both catalogues (django: templates
  and Python; djangojs: our JavaScript) under app/locale/<language>/LC_MESSAGES/.
- Every string marked for translation in the code today (a fresh `makemessages` into a temporary
  folder) has a translation in each shipped catalogue: present, not fuzzy, every plural form
  filled in. A string added to the code without a translation fails here.
- `msgfmt --check` passes for every catalogue: placeholders in each translation match the
  English ones (python-format, python-brace-format), the header and plural forms are valid.
- The compiled catalogues (.mo, committed so that a clean clone and the Docker image have them)
  hold exactly what their .po files say: compile again with `scripts/messages compile` after
  changing a .po.
"""

from __future__ import annotations

import gettext
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from django.conf import settings

from tests.support import po

APP_DIR = Path(__file__).resolve().parent.parent / "app"
LOCALE_DIR = APP_DIR / "locale"
DOMAINS = ("django", "djangojs")
needs_gettext = pytest.mark.skipif(shutil.which("msgfmt") is None or shutil.which("xgettext") is None,
                                   reason="needs GNU gettext (scripts/test installs it with apt)")


def shipped_languages() -> list[str]:
    """The languages we translate into: settings.LANGUAGES other than the source language."""
    return [code for code, _ in settings.LANGUAGES if not code.startswith("en")]


def locale_folder(code: str) -> Path:
    from django.utils.translation import to_locale

    return LOCALE_DIR / to_locale(code) / "LC_MESSAGES"


CATALOGUES = [(code, domain) for code in shipped_languages() for domain in DOMAINS]
catalogue_ids = [f"{code}-{domain}" for code, domain in CATALOGUES]


def compiled_catalogue(po_file: Path, out: Path) -> dict:
    """What gettext reads from the .po, compiled now as compilemessages does (fuzzy entries left out)."""
    subprocess.run(["msgfmt", "-o", str(out), str(po_file)], check=True, capture_output=True, text=True)
    with out.open("rb") as f:
        return dict(gettext.GNUTranslations(f)._catalog)


# --- the .po reader these checks use ------------------------------------------------------------

SAMPLE = r'''# A header comment
msgid ""
msgstr ""
"Language: de\n"
"Plural-Forms: nplurals=2; plural=(n != 1);\n"

#: a/views.py:1
msgid "Saved"
msgstr "Gespeichert"

#: a/views.py:2
#, fuzzy, python-format
msgid "%(n)s marks"
msgstr "%(n)s Punkte"

#: a/t.html:3
msgid ""
"A long "
"sentence"
msgstr ""

msgctxt "button"
msgid "Open"
msgid_plural "Open %(n)s"
msgstr[0] "Öffnen"
msgstr[1] ""

#~ msgid "Gone"
#~ msgstr "Weg"
'''


def test_the_po_reader_reads_entries_flags_plurals_and_contexts():
    header, entries = po.parse(SAMPLE)
    assert po.plural_count(header) == 2
    by_id = {e.msgid: e for e in entries}
    assert list(by_id) == ["Saved", "%(n)s marks", "A long sentence", "Open"]
    assert by_id["Saved"].translated and by_id["Saved"].references == ["a/views.py:1"]
    assert by_id["%(n)s marks"].fuzzy and not by_id["%(n)s marks"].translated
    assert not by_id["A long sentence"].translated
    plural = by_id["Open"]
    assert plural.msgctxt == "button" and plural.msgid_plural == "Open %(n)s"
    assert plural.msgstr == ["Öffnen", ""] and not plural.translated


@needs_gettext
@pytest.mark.parametrize("code,domain", CATALOGUES, ids=catalogue_ids)
def test_the_po_reader_agrees_with_msgfmt(code, domain, tmp_path):
    """Every entry the reader calls translated is in the compiled catalogue, with the same text."""
    path = locale_folder(code) / f"{domain}.po"
    _, entries = po.read(path)
    catalogue = compiled_catalogue(path, tmp_path / "check.mo")
    for entry in entries:
        if not entry.translated:
            continue
        key = entry.msgid if entry.msgctxt is None else f"{entry.msgctxt}\x04{entry.msgid}"
        if entry.msgid_plural is None:
            assert catalogue[key] == entry.msgstr[0]
        else:
            assert [catalogue[(key, n)] for n in range(len(entry.msgstr))] == entry.msgstr


# --- which catalogues ship ------------------------------------------------------------------------


def test_every_language_offered_ships_both_catalogues_and_no_others():
    assert shipped_languages(), "settings.LANGUAGES offers no language but English"
    for code in shipped_languages():
        for domain in DOMAINS:
            assert (locale_folder(code) / f"{domain}.po").is_file(), f"{code}: {domain}.po is missing"
    offered = {locale_folder(code).parent.name for code in shipped_languages()}
    present = {p.name for p in LOCALE_DIR.iterdir() if p.is_dir()}
    assert present == offered, f"catalogues for languages not in settings.LANGUAGES: {sorted(present - offered)}"


# --- every marked string is translated ------------------------------------------------------------


@pytest.fixture(scope="module")
def fresh_extraction(tmp_path_factory) -> dict[str, list[po.Entry]]:
    """Every string marked in the code today, per domain (makemessages into a temporary folder)."""
    if shutil.which("xgettext") is None:
        pytest.skip("needs GNU gettext (scripts/test installs it with apt)")
    work = tmp_path_factory.mktemp("extraction")
    extracted = {domain: po.read(po.extract(APP_DIR, work, domain))[1] for domain in DOMAINS}
    assert not (LOCALE_DIR / "xx").exists(), "makemessages wrote into app/locale"
    return extracted


@needs_gettext
@pytest.mark.parametrize("code,domain", CATALOGUES, ids=catalogue_ids)
def test_every_marked_string_has_a_translation(code, domain, fresh_extraction):
    header, entries = po.read(locale_folder(code) / f"{domain}.po")
    forms = po.plural_count(header)
    shipped = {e.key: e for e in entries}
    missing, fuzzy, untranslated, short = [], [], [], []
    for wanted in fresh_extraction[domain]:
        entry = shipped.get(wanted.key)
        if entry is None:
            missing.append(wanted.label())
        elif entry.fuzzy:
            fuzzy.append(wanted.label())
        elif not entry.translated:
            untranslated.append(wanted.label())
        elif wanted.msgid_plural is not None and len(entry.msgstr) != forms:
            short.append(f"{wanted.label()}: {len(entry.msgstr)} plural forms, the language has {forms}")
    problems = [(f"{len(missing)} marked in the code but not in the catalogue (run scripts/messages extract)", missing),
                (f"{len(fuzzy)} marked fuzzy (check the translation, then remove the flag)", fuzzy),
                (f"{len(untranslated)} without a translation", untranslated),
                (f"{len(short)} with the wrong number of plural forms", short)]
    report = "\n".join(f"{title}:\n" + "\n".join(f"  {item}" for item in items[:40])
                       + (f"\n  … and {len(items) - 40} more" if len(items) > 40 else "")
                       for title, items in problems if items)
    assert not report, f"app/locale/{locale_folder(code).parent.name}/LC_MESSAGES/{domain}.po is incomplete:\n{report}"


# --- the catalogues are valid and compiled -----------------------------------------------------


@needs_gettext
@pytest.mark.parametrize("code,domain", CATALOGUES, ids=catalogue_ids)
def test_translations_keep_the_placeholders_and_the_catalogue_is_valid(code, domain):
    path = locale_folder(code) / f"{domain}.po"
    result = subprocess.run(["msgfmt", "--check", "-o", os.devnull, str(path)], capture_output=True, text=True)
    assert result.returncode == 0, f"msgfmt --check {path.relative_to(APP_DIR.parent)}:\n{result.stderr}"


@needs_gettext
@pytest.mark.parametrize("code,domain", CATALOGUES, ids=catalogue_ids)
def test_the_compiled_catalogue_is_up_to_date(code, domain, tmp_path):
    path = locale_folder(code) / f"{domain}.po"
    compiled = path.with_suffix(".mo")
    assert compiled.is_file(), (f"{compiled.relative_to(APP_DIR.parent)} is missing: run scripts/messages compile "
                                f"and commit it")
    with compiled.open("rb") as f:
        shipped = dict(gettext.GNUTranslations(f)._catalog)
    wanted = compiled_catalogue(path, tmp_path / "fresh.mo")
    stale = sorted(str(k) for k in set(shipped) ^ set(wanted)) + sorted(
        str(k) for k in set(shipped) & set(wanted) if shipped[k] != wanted[k])
    assert not stale, (f"{compiled.relative_to(APP_DIR.parent)} does not match its .po ({len(stale)} messages differ, "
                       f"e.g. {stale[:3]}): run scripts/messages compile and commit it")
