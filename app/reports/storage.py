"""Where report files live: PRIVATE_ROOT/reports/, never under MEDIA_ROOT (no public URL).
The folder has PRIVATE_DIR_MODE's bits and its files PRIVATE_FILE_MODE's (core/files.py)."""

from __future__ import annotations

import uuid
from pathlib import Path

from django.conf import settings

from core import files

REPORTS_DIR = "reports"


def reports_dir() -> Path:
    return Path(settings.PRIVATE_ROOT) / REPORTS_DIR


def reports_dir_ensure() -> Path:
    directory = reports_dir()
    return files.mkdir(directory, settings.PRIVATE_DIR_MODE, parents=True, exist_ok=True)


def extension_for(kind: str) -> str:
    return "json" if kind == "export" else "csv"


def content_type_for(kind: str) -> str:
    return "application/json; charset=utf-8" if kind == "export" else "text/csv; charset=utf-8"


def relative_path_for(report_id: uuid.UUID, kind: str = "") -> str:
    """The file's path relative to PRIVATE_ROOT (what nginx's internal location appends)."""
    return f"{REPORTS_DIR}/{report_id}.{extension_for(kind)}"


def absolute_path(relative_path: str) -> Path | None:
    """The file of a stored relative path, or None if the path would leave the reports folder."""
    if not relative_path:
        return None
    root = reports_dir().resolve()
    path = (Path(settings.PRIVATE_ROOT) / relative_path).resolve()
    return path if path.parent == root else None
