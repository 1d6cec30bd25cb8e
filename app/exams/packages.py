"""Reading and checking a Numbas SCORM package before anything is stored.

`inspect_package` opens the zip, refuses anything unsafe or not a Numbas/SCORM package with
a message a person understands, and returns what we need to know about it.
`extract_package` writes its files under a directory, counting real bytes as it goes.
"""

from __future__ import annotations

import json
import math
import stat
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from defusedxml import ElementTree as SafeET
from django.conf import settings
from django.utils.translation import gettext, gettext_lazy

from core import files

MANIFEST = "imsmanifest.xml"
SOURCE = "source.exam"
NUMBAS_MANIFEST = "numbas-manifest.json"


class PackageRejected(ValueError):
    """The upload is not a usable exam package; the message says why, for an instructor."""


@dataclass(frozen=True)
class PackageInfo:
    title: str
    launch_href: str
    duration_seconds: int | None
    numbas_version: str
    structure: list = field(default_factory=list)
    file_count: int = 0
    expanded_bytes: int = 0


def _limits():
    return (
        settings.EXAM_MAX_FILES,
        settings.EXAM_MAX_EXPANDED_BYTES,
        settings.EXAM_MAX_COMPRESSION_RATIO,
    )


def _safe_name(name: str) -> str:
    if "\\" in name or "\x00" in name:
        raise PackageRejected(gettext("The package contains a file with an invalid name (%(name)r).") % {"name": name[:80]})
    if name.startswith("/") or (len(name) > 1 and name[1] == ":"):
        raise PackageRejected(gettext("The package contains a file with an absolute path (%(name)r).") % {"name": name[:80]})
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise PackageRejected(gettext("The package contains a path that leaves its folder (%(name)r).") % {"name": name[:80]})
    return "/".join(parts)


def _members(archive: zipfile.ZipFile) -> list[tuple[zipfile.ZipInfo, str]]:
    max_files, max_bytes, max_ratio = _limits()
    infos = archive.infolist()
    if len(infos) > max_files:
        raise PackageRejected(gettext("The package has %(count)d entries; at most %(max)d are allowed.")
                              % {"count": len(infos), "max": max_files})
    members, total, seen = [], 0, set()
    for info in infos:
        name = _safe_name(info.filename)
        mode = info.external_attr >> 16
        if stat.S_ISLNK(mode):
            raise PackageRejected(gettext("The package contains a symbolic link (%(name)r); links are not allowed.")
                                  % {"name": info.filename[:80]})
        if info.flag_bits & 0x1:
            raise PackageRejected(gettext("The package is encrypted (password-protected); upload it without a password."))
        if info.is_dir() or not name:
            continue
        total += info.file_size
        if info.file_size > 1024 * 1024 and info.file_size > max_ratio * max(info.compress_size, 1):
            raise PackageRejected(
                gettext("The file %(name)r expands %(ratio)d times its compressed size; this looks like a zip bomb.")
                % {"name": name[:80], "ratio": info.file_size // max(info.compress_size, 1)}
            )
        if name in seen:
            raise PackageRejected(gettext("The package holds %(name)r twice; a zip from the Numbas editor never does.")
                                  % {"name": name[:80]})
        if any(len(part.encode("utf-8")) > 255 for part in name.split("/")):
            raise PackageRejected(gettext("The package has a file name longer than 255 bytes (%(name)r…).") % {"name": name[:80]})
        seen.add(name)
        members.append((info, name))
    folders = {"/".join(name.split("/")[:i]) for name in seen for i in range(1, name.count("/") + 1)}
    clash = sorted(folders & seen)
    if clash:
        raise PackageRejected(gettext("The package has %(name)r both as a file and as a folder.") % {"name": clash[0][:80]})
    if total > max_bytes:
        raise PackageRejected(
            gettext("The package expands to %(size)d MB; at most %(max)d MB are allowed.")
            % {"size": total // (1024 * 1024), "max": max_bytes // (1024 * 1024)}
        )
    return members


def _launch_href(manifest_xml: bytes) -> tuple[str, str]:
    """(launch href of the SCO, organization title) from imsmanifest.xml."""
    try:
        root = SafeET.fromstring(manifest_xml)
    except Exception as error:  # defusedxml raises several kinds for hostile or broken XML
        raise PackageRejected(gettext("imsmanifest.xml is not valid XML (%(error)s).") % {"error": type(error).__name__}) from None
    href, title = "", ""
    for element in root.iter():
        tag = element.tag.rsplit("}", 1)[-1]
        if tag == "resource" and not href:
            scorm_type = next((v for k, v in element.attrib.items() if k.rsplit("}", 1)[-1] == "scormType"), "")
            if scorm_type.lower() == "sco" and element.get("href"):
                href = element.get("href")
        elif tag == "organization" and not title:
            child = next((c for c in element if c.tag.rsplit("}", 1)[-1] == "title"), None)
            title = (child.text or "").strip() if child is not None else ""
    return href, title


def _parse_source(text: str) -> dict | None:
    """source.exam's JSON. Its first line is an editor tag (`// Numbas version: ...`), which names
    the editor's export format, not the runtime's version."""
    first, _, rest = text.partition("\n")
    try:
        data = json.loads(rest if first.lstrip().startswith("//") else text)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def _runtime_version(text: str) -> str:
    """`Numbas_version` from numbas-manifest.json: the runtime the exam was compiled with."""
    try:
        data = json.loads(text)
    except ValueError:
        return ""
    version = data.get("Numbas_version") if isinstance(data, dict) else None
    return str(version) if isinstance(version, (str, int, float)) and not isinstance(version, bool) else ""


def _marks(value) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        return None
    try:
        number = float(value)
    except ValueError:
        return None
    return number if math.isfinite(number) and number >= 0 else None


def _part(part: dict) -> dict:
    """A part with its marks as the Numbas runtime counts them: a gap-fill's marks are the sum
    of its gaps' (its own `marks` field is ignored by Numbas, and is usually 0)."""
    kind = str(part.get("type", ""))[:100]
    marks = _marks(part.get("marks"))
    result = {"type": kind, "marks": marks}
    if kind == "gapfill":
        gaps = [{"type": str(g.get("type", ""))[:100], "marks": _marks(g.get("marks"))}
                for g in (part.get("gaps") or []) if isinstance(g, dict)]
        result["gaps"] = gaps
        result["marks"] = None if any(g["marks"] is None for g in gaps) else sum(g["marks"] for g in gaps)
    return result


def _structure(exam: dict) -> list[dict]:
    """The exam's questions in the order the exam numbers them (q0, q1, ...), each with its
    group's picking strategy, its marks and its parts (gap-fills with their gaps)."""
    questions = []
    shuffled_groups = bool(exam.get("shuffleQuestionGroups"))
    for gi, group in enumerate(exam.get("question_groups") or []):
        if not isinstance(group, dict):
            continue
        strategy = str(group.get("pickingStrategy") or "all-ordered")[:50]
        if shuffled_groups and strategy == "all-ordered":
            strategy = "all-ordered-shuffled-groups"
        for question in group.get("questions") or []:
            if not isinstance(question, dict):
                continue
            parts = [_part(p) for p in (question.get("parts") or []) if isinstance(p, dict)]
            marks = None if any(p["marks"] is None for p in parts) else sum(p["marks"] for p in parts)
            questions.append({"name": str(question.get("name", ""))[:500], "group": gi, "picking": strategy,
                              "marks": marks, "parts": parts})
    return questions


def structure_of_directory(directory: Path) -> tuple[str, list[dict]] | None:
    """(runtime version, structure) of an exam already extracted under `directory`, for exams
    stored before the structure was kept this way; None when it has no readable source.exam."""
    try:
        source = (directory / SOURCE).read_text("utf-8", errors="replace")
    except OSError:
        return None
    exam = _parse_source(source)
    if exam is None:
        return None
    try:
        version = _runtime_version((directory / NUMBAS_MANIFEST).read_text("utf-8", errors="replace"))
    except OSError:
        version = ""
    return version[:100], _structure(exam)


def inspect_package(upload: BinaryIO, *, size: int) -> PackageInfo:
    if size > settings.EXAM_MAX_UPLOAD_BYTES:
        raise PackageRejected(
            gettext("The file is %(size)d MB; exam packages can be at most %(max)d MB.")
            % {"size": size // (1024 * 1024), "max": settings.EXAM_MAX_UPLOAD_BYTES // (1024 * 1024)}
        )
    try:
        archive = zipfile.ZipFile(upload)
    except (zipfile.BadZipFile, OSError, ValueError):
        raise PackageRejected(
            gettext("This is not a zip file. Download the exam from the Numbas editor as a SCORM package (.zip) "
                    "and upload that.")
        ) from None
    with archive:
        members = _members(archive)
        names = {name for _, name in members}
        if MANIFEST not in names:
            raise PackageRejected(
                gettext("The zip has no imsmanifest.xml at its top level, so it is not a SCORM package. In the Numbas "
                        "editor, use Download → SCORM package.")
            )
        href, manifest_title = _launch_href(_read(archive, MANIFEST))
        href = _safe_name(href.split("?", 1)[0].split("#", 1)[0]) if href else "index.html"
        if href not in names:
            raise PackageRejected(gettext("The package's launch file %(name)r is not in the zip.") % {"name": href})
        exam = None
        if SOURCE in names:
            exam = _parse_source(_read(archive, SOURCE).decode("utf-8", errors="replace"))
        exam = exam or {}
        version = ""
        if NUMBAS_MANIFEST in names:
            version = _runtime_version(_read(archive, NUMBAS_MANIFEST).decode("utf-8", errors="replace"))
        duration = exam.get("duration")
        return PackageInfo(
            title=(str(exam.get("name") or "") or manifest_title or "Untitled exam")[:500],
            launch_href=href,
            duration_seconds=int(duration) if isinstance(duration, (int, float)) and duration > 0 else None,
            numbas_version=version[:100],
            structure=_structure(exam),
            file_count=len(members),
            expanded_bytes=sum(info.file_size for info, _ in members),
        )


# What reading a damaged or exotic zip raises (bad CRC, corrupt deflate data, unknown method).
_DAMAGED = (zipfile.BadZipFile, zlib.error, NotImplementedError, EOFError, ValueError)
_DAMAGED_MESSAGE = gettext_lazy("The zip is damaged or uses a compression this server cannot read (%(error)s). "
                                "Download the SCORM package from the Numbas editor again and upload that.")


def _read(archive: zipfile.ZipFile, name: str, limit: int = 20 * 1024 * 1024) -> bytes:
    info = next(i for i in archive.infolist() if _safe_name(i.filename) == name)
    try:
        with archive.open(info) as handle:
            data = handle.read(limit + 1)
    except _DAMAGED as error:
        raise PackageRejected(_DAMAGED_MESSAGE % {"error": f"{name}: {type(error).__name__}"}) from None
    if len(data) > limit:
        raise PackageRejected(gettext("%(name)s is larger than %(max)d MB.") % {"name": name, "max": limit // (1024 * 1024)})
    return data


def extract_package(upload: BinaryIO, destination: Path) -> None:
    """Write every file of an inspected package under `destination` (which must not exist),
    with MEDIA_FILE_MODE and MEDIA_DIR_MODE (core/files.py). The real number of bytes written is
    counted, whatever the zip's headers claim."""
    _, max_bytes, _ = _limits()
    written = 0
    files.mkdir(destination, settings.MEDIA_DIR_MODE, parents=True)
    with zipfile.ZipFile(upload) as archive:
        for info, name in _members(archive):
            target = destination / name
            files.mkdir(target.parent, settings.MEDIA_DIR_MODE, parents=True, exist_ok=True)
            try:
                with archive.open(info) as source, open(files.create(target, settings.MEDIA_FILE_MODE,
                                                                     exclusive=False), "wb") as sink:
                    while chunk := source.read(1024 * 1024):
                        written += len(chunk)
                        if written > max_bytes:
                            raise PackageRejected(gettext("The package expands to more than is allowed."))
                        sink.write(chunk)
            except _DAMAGED as error:
                raise PackageRejected(_DAMAGED_MESSAGE % {"error": f"{name[:80]}: {type(error).__name__}"}) from None
