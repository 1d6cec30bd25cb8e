"""Build exam packages (good and hostile) in memory for tests."""

from __future__ import annotations

import io
import json
import stat
import zipfile
from pathlib import Path

SHARED_EXAM = Path(__file__).resolve().parents[2].parent / "shared" / "fixtures" / "exams" / "advanced-number-theory-numbas6.zip"

MANIFEST = """<?xml version="1.0"?>
<manifest xmlns="http://www.imsglobal.org/xsd/imscp_v1p1" xmlns:adlcp="http://www.adlnet.org/xsd/adlcp_v1p3" identifier="t">
  <organizations default="o"><organization identifier="o"><title>{title}</title>
    <item identifier="i" identifierref="r"><title>Exam</title></item></organization></organizations>
  <resources><resource identifier="r" type="webcontent" adlcp:scormType="sco" href="{href}"><file href="{href}"/></resource></resources>
</manifest>"""


def source_exam(name="Small exam", duration=1800, questions=(("Q1", ["numberentry"]), ("Q2", ["gapfill", "jme"]))):
    exam = {
        "name": name,
        "duration": duration,
        "question_groups": [
            {"questions": [{"name": q, "parts": [{"type": t, "marks": 1} for t in parts]} for q, parts in questions]}
        ],
    }
    return "// Numbas version: 7.0\n" + json.dumps(exam)


def make_zip(entries: dict[str, bytes | str], *, symlinks: dict[str, str] | None = None,
             compression=zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression) as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
        for name, target in (symlinks or {}).items():
            info = zipfile.ZipInfo(name)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            archive.writestr(info, target)
    return buffer.getvalue()


def good_package(title="Small exam", href="index.html", **extra) -> bytes:
    entries = {
        "imsmanifest.xml": MANIFEST.format(title="Manifest title", href=href),
        href: "<!doctype html><title>exam</title>",
        "source.exam": source_exam(name=title),
        "scripts/exam.js": "console.log('exam')",
    }
    entries.update(extra)
    return make_zip(entries)


def demo_exam_variant(*, title: str = "Demo exam (corrected)", replace: dict[str, list[tuple[str, str]]] | None = None) -> bytes:
    """The demo exam (app/exams/demo_exam) zipped with changes made at test time: its title in
    the manifest and source.exam, and (old, new) text replacements per file. Each replacement
    must match, so that a change to the demo exam cannot make a test silently test nothing."""
    from exams.demo import DEMO_EXAM_DIR

    entries = {}
    for path in sorted(DEMO_EXAM_DIR.rglob("*")):
        if path.is_file():
            entries[path.relative_to(DEMO_EXAM_DIR).as_posix()] = path.read_text("utf-8")
    changes = {"imsmanifest.xml": [("<title>Demo exam</title>", f"<title>{title}</title>")],
               "source.exam": [('"name": "Demo exam"', json.dumps({"name": title})[1:-1])]}
    for name, pairs in (replace or {}).items():
        changes.setdefault(name, []).extend(pairs)
    for name, pairs in changes.items():
        for old, new in pairs:
            assert old in entries[name], f"{old!r} is not in the demo exam's {name}"
            entries[name] = entries[name].replace(old, new)
    return make_zip(entries)
