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
from django.utils import timezone
from django.utils.translation import gettext, ngettext

from core import files
from exams.mathjax import point_at_local_mathjax
from exams.models import CurrentVersionChange, ExamPackage
from exams.packages import PackageRejected, extract_package, inspect_package
from lms.models import Resource


def exams_root() -> Path:
    return Path(settings.MEDIA_ROOT) / "exams"


ORIGINALS_DIR = "exam-packages"


def originals_root() -> Path:
    """Where each version's zip is kept as uploaded: under PRIVATE_ROOT, never under MEDIA_ROOT,
    so no web server serves it; only the instructors' download view reads it."""
    return Path(settings.PRIVATE_ROOT) / ORIGINALS_DIR


def original_path(package: ExamPackage) -> Path:
    return originals_root() / f"{package.directory}.zip"


class ReplaceNeedsConfirmation(Exception):
    """Students have started the exam: replacing it needs the instructor's confirmation."""

    def __init__(self, attempts: int):
        self.attempts = attempts
        self.message = ngettext(
            "%(count)d attempt has been started on this exam. Confirm that you want to replace it: "
            "started attempts keep their version unless you move them.",
            "%(count)d attempts have been started on this exam. Confirm that you want to replace it: "
            "started attempts keep their version unless you move them.", attempts) % {"count": attempts}
        super().__init__(self.message)


class VersionChangeRefused(Exception):
    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


def _started_attempts(resource_id: int) -> int:
    from attempts.models import Attempt  # attempts depends on exams, not the reverse

    return Attempt.objects.filter(resource_id=resource_id).count()


def _copy_original(upload: BinaryIO, target: Path) -> None:
    files.mkdir(target.parent, settings.PRIVATE_DIR_MODE, parents=True, exist_ok=True)
    upload.seek(0)
    descriptor = files.create(target, settings.PRIVATE_FILE_MODE)
    with open(descriptor, "wb") as out:
        shutil.copyfileobj(upload, out, 1024 * 1024)
    upload.seek(0)


def _sha256(upload: BinaryIO) -> str:
    upload.seek(0)
    digest = hashlib.sha256()
    while chunk := upload.read(1024 * 1024):
        digest.update(chunk)
    upload.seek(0)
    return digest.hexdigest()


def exam_package_upload(
    *, resource: Resource, upload: BinaryIO, size: int, filename: str = "", uploaded_by=None,
    replace_confirmed: bool = False,
) -> ExamPackage:
    """Check, extract and record an exam package as the resource's next version, which becomes
    the current one (new attempts start on it). The zip is also kept as uploaded, for download.

    Raises PackageRejected (and stores nothing: no files, no rows) if the package is unusable,
    and ReplaceNeedsConfirmation (storing nothing either) if students have started attempts and
    the instructor has not confirmed the replacement. Attempts already started keep the version
    they started on.
    """
    started = _started_attempts(resource.pk)
    if started and not replace_confirmed:
        raise ReplaceNeedsConfirmation(started)
    info = inspect_package(upload, size=size)
    root = files.mkdir(exams_root(), settings.MEDIA_DIR_MODE, parents=True, exist_ok=True)
    directory = secrets.token_urlsafe(24)
    incoming, final = root / f".incoming-{directory}", root / directory
    original = originals_root() / f"{directory}.zip"
    original_incoming = originals_root() / f".incoming-{directory}.zip"
    try:
        upload.seek(0)
        extract_package(upload, incoming)
        point_at_local_mathjax(incoming)
        sha256 = _sha256(upload)
        _copy_original(upload, original_incoming)
        with transaction.atomic():
            # Lock the resource so that two uploads at once get consecutive versions.
            Resource.objects.select_for_update().filter(pk=resource.pk).first()
            started = _started_attempts(resource.pk)  # again, under the lock
            if started and not replace_confirmed:
                raise ReplaceNeedsConfirmation(started)
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
            CurrentVersionChange.objects.create(resource=resource, exam=package, why=CurrentVersionChange.Why.UPLOADED,
                                                by=uploaded_by, at=package.uploaded_at)
            incoming.rename(final)
            original_incoming.rename(original)
        return package
    except zipfile.BadZipFile as error:
        _remove(final, original)
        raise PackageRejected(gettext("The zip file is damaged (%(error)s).") % {"error": error}) from None
    except BaseException:
        _remove(final, original)
        raise
    finally:
        shutil.rmtree(incoming, ignore_errors=True)
        original_incoming.unlink(missing_ok=True)


def _remove(directory: Path, original: Path) -> None:
    shutil.rmtree(directory, ignore_errors=True)
    original.unlink(missing_ok=True)


@transaction.atomic
def exam_version_make_current(*, resource_id: int, exam: ExamPackage, by) -> CurrentVersionChange:
    """Make an earlier version of the resource's exam current again: new attempts start on it.
    Attempts already started keep their version. Who did it and when is kept."""
    from exams.selectors import exam_current

    Resource.objects.select_for_update().filter(pk=resource_id).first()
    if exam.resource_id != resource_id:
        raise VersionChangeRefused(gettext("This version belongs to another activity."))
    current = exam_current(resource_id=resource_id)
    if current is not None and current.pk == exam.pk:
        raise VersionChangeRefused(gettext("Version %(version)d is already the current version.")
                                   % {"version": exam.version})
    return CurrentVersionChange.objects.create(resource_id=resource_id, exam=exam,
                                               why=CurrentVersionChange.Why.RESTORED, by=by, at=timezone.now())
