"""Writes for exam packages."""

from __future__ import annotations

import hashlib
import secrets
import shutil
import zipfile
from pathlib import Path
from typing import BinaryIO

from django.conf import settings
from django.db import transaction
from django.db.models import Max
from django.utils.translation import gettext

from core import files
from exams.mathjax import point_at_local_mathjax
from exams.models import ExamPackage
from exams.packages import PackageRejected, extract_package, inspect_package
from lms.models import Resource


def exams_root() -> Path:
    return Path(settings.MEDIA_ROOT) / "exams"


def _sha256(upload: BinaryIO) -> str:
    upload.seek(0)
    digest = hashlib.sha256()
    while chunk := upload.read(1024 * 1024):
        digest.update(chunk)
    upload.seek(0)
    return digest.hexdigest()


def exam_package_upload(
    *, resource: Resource, upload: BinaryIO, size: int, filename: str = "", uploaded_by=None
) -> ExamPackage:
    """Check, extract and record an exam package as the resource's next version.

    Raises PackageRejected (and stores nothing: no files, no rows) if the package is unusable.
    Attempts already started keep the version they started on.
    """
    info = inspect_package(upload, size=size)
    root = files.mkdir(exams_root(), settings.MEDIA_DIR_MODE, parents=True, exist_ok=True)
    directory = secrets.token_urlsafe(24)
    incoming, final = root / f".incoming-{directory}", root / directory
    try:
        upload.seek(0)
        extract_package(upload, incoming)
        point_at_local_mathjax(incoming)
        sha256 = _sha256(upload)
        with transaction.atomic():
            # Lock the resource so that two uploads at once get consecutive versions.
            Resource.objects.select_for_update().filter(pk=resource.pk).first()
            latest = ExamPackage.objects.filter(resource=resource).aggregate(v=Max("version"))["v"] or 0
            package = ExamPackage.objects.create(
                resource=resource,
                version=latest + 1,
                title=info.title,
                launch_href=info.launch_href,
                duration_seconds=info.duration_seconds,
                numbas_version=info.numbas_version,
                structure=info.structure,
                directory=directory,
                file_count=info.file_count,
                expanded_bytes=info.expanded_bytes,
                sha256=sha256,
                original_filename=filename[:255],
                uploaded_by=uploaded_by,
            )
            incoming.rename(final)
        return package
    except zipfile.BadZipFile as error:
        shutil.rmtree(final, ignore_errors=True)
        raise PackageRejected(gettext("The zip file is damaged (%(error)s).") % {"error": error}) from None
    except BaseException:
        shutil.rmtree(final, ignore_errors=True)
        raise
    finally:
        shutil.rmtree(incoming, ignore_errors=True)
