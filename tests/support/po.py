"""Reading gettext .po files (enough for our checks: no dependency on polib).

An entry has its context, msgid, plural msgid, the msgstr forms (one, or one per plural form),
its flags (fuzzy, python-format…) and where it comes from. Obsolete entries (#~) are skipped.
"""

from __future__ import annotations

import ast
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

KEYWORD = re.compile(r"^(msgctxt|msgid_plural|msgid|msgstr(?:\[(\d+)\])?)\s+(\".*\")\s*$")


@dataclass
class Entry:
    msgid: str = ""
    msgid_plural: str | None = None
    msgctxt: str | None = None
    msgstr: list[str] = field(default_factory=list)
    flags: set[str] = field(default_factory=set)
    references: list[str] = field(default_factory=list)

    @property
    def key(self) -> tuple[str | None, str]:
        return (self.msgctxt, self.msgid)

    @property
    def fuzzy(self) -> bool:
        return "fuzzy" in self.flags

    @property
    def translated(self) -> bool:
        """Not fuzzy, and every form (each plural form) is non-empty."""
        return not self.fuzzy and bool(self.msgstr) and all(form for form in self.msgstr)

    def label(self) -> str:
        where = f" ({self.references[0]})" if self.references else ""
        context = f"[{self.msgctxt}] " if self.msgctxt else ""
        return f"{context}{self.msgid!r}{where}"


def _string(literal: str) -> str:
    return ast.literal_eval(literal)


def parse(text: str) -> tuple[Entry | None, list[Entry]]:
    """(the header entry, the other entries) of a .po file's text."""
    entries: list[Entry] = []
    current = Entry()
    started = False
    target: tuple[str, int] | None = None

    def finish():
        nonlocal current, started, target
        if started:
            entries.append(current)
        current, started, target = Entry(), False, None

    for raw in text.splitlines():
        line = raw.strip()
        if not line:
            finish()
            continue
        if line.startswith("#~"):
            continue
        if line.startswith("#,"):
            if started and target and target[0] == "msgstr":
                finish()
            current.flags |= {f.strip() for f in line[2:].split(",") if f.strip()}
            continue
        if line.startswith("#:"):
            if started and target and target[0] == "msgstr":
                finish()
            current.references += line[2:].split()
            continue
        if line.startswith("#"):
            continue
        if line.startswith('"'):
            if target is None:
                raise ValueError(f"a continuation line without a keyword: {raw!r}")
            name, index = target
            if name == "msgstr":
                current.msgstr[index] += _string(line)
            else:
                setattr(current, name, getattr(current, name) + _string(line))
            continue
        match = KEYWORD.match(line)
        if not match:
            raise ValueError(f"cannot read this .po line: {raw!r}")
        keyword, index, literal = match.groups()
        value = _string(literal)
        if keyword in ("msgctxt", "msgid") and started and target and target[0] == "msgstr":
            finish()
        started = True
        if keyword.startswith("msgstr"):
            position = int(index) if index is not None else 0
            while len(current.msgstr) <= position:
                current.msgstr.append("")
            current.msgstr[position] = value
            target = ("msgstr", position)
        else:
            setattr(current, keyword, value)
            target = (keyword, 0)
    finish()
    header = next((e for e in entries if e.msgid == "" and e.msgctxt is None), None)
    return header, [e for e in entries if e is not header]


def read(path: Path) -> tuple[Entry | None, list[Entry]]:
    return parse(Path(path).read_text(encoding="utf-8"))


def plural_count(header: Entry | None) -> int:
    """nplurals from the header's Plural-Forms, or 2."""
    found = re.search(r"nplurals\s*=\s*(\d+)", header.msgstr[0] if header and header.msgstr else "")
    return int(found.group(1)) if found else 2


#: What makemessages reads for each domain (the same as scripts/messages).
IGNORED = {
    "django": ["exams/demo_exam/*", "*/tests/*", "*/static/*", "*/migrations/*"],
    "djangojs": ["exams/demo_exam/*", "*/tests/*"],
}


def extract(app_dir: Path, work: Path, domain: str, *, ignore: list[str] | None = None) -> Path:
    """Run makemessages over the code in app_dir for a made-up language "xx", writing only under
    `work`; returns the .po it wrote.

    makemessages writes next to the nearest locale folder it knows, and app/locale (the shipped
    catalogues) is one: run in app_dir itself, it would write app/locale/xx. So it runs in a
    folder of links to app_dir's apps (app/locale left out), following the links."""
    from django.core.management import call_command
    from django.test import override_settings

    source, out = work / "source", work / "locale"
    source.mkdir(parents=True, exist_ok=True)
    out.mkdir(parents=True, exist_ok=True)
    for child in Path(app_dir).iterdir():
        if child.name != "locale" and not (source / child.name).exists():
            (source / child.name).symlink_to(child)
    here = os.getcwd()
    os.chdir(source)
    try:
        with override_settings(LOCALE_PATHS=[str(out)]):
            call_command("makemessages", locale=["xx"], domain=domain, verbosity=0, no_obsolete=True,
                         symlinks=True, ignore_patterns=IGNORED[domain] if ignore is None else ignore)
    finally:
        os.chdir(here)
    return out / "xx" / "LC_MESSAGES" / f"{domain}.po"
