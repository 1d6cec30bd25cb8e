"""Writes for report files: ask for one, write it (in a Huey worker), remove old ones.

A file is written to a temporary name in PRIVATE_ROOT/reports/ (PRIVATE_FILE_MODE: the app
and nginx's group read it, others nothing) and renamed when complete, so a download never
sees half a file. Progress is saved every PROGRESS_STEP percent, not per row. Files and rows
are removed REPORT_RETENTION_DAYS after they finish.
"""

from __future__ import annotations

import csv
import logging
import os
import re
import secrets
import time
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TextIO

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext

from core import files
from grading import selectors as grading_selectors
from reports import export, selectors, storage, tables
from reports.models import ACTIVE_STATES, ReportFile, ReportFileState, ReportKind

logger = logging.getLogger(__name__)

PROGRESS_STEP = 5  # percent between saved progress updates
# A queued or running report whose worker has not reported progress for this long is failed,
# so that the instructor can ask again (a worker was killed, or none is running).
ABANDONED_AFTER = timedelta(minutes=30)
# Leftovers of killed workers (temporary files) and files whose row has gone are removed after this.
LEFTOVER_AFTER = timedelta(hours=6)
_REPORT_FILE = re.compile(r"^[0-9a-f-]{36}\.(csv|json)$")
_TEMP_FILE = re.compile(r"^\.[0-9a-f-]{36}\.[0-9a-f]+\.part$")


class ReportRejected(ValueError):
    """A request that cannot become a report; the message is for the instructor."""


def _retention() -> timedelta:
    return timedelta(days=settings.REPORT_RETENTION_DAYS)


@transaction.atomic
def report_request(*, resource_id: int, kind: str, user) -> ReportFile:
    """Ask for a report of the resource; a worker writes it once this transaction commits.
    While the same kind of report is still being written for the resource, that one is
    returned instead of a second (a unique constraint on the active ones decides)."""
    if kind not in ReportKind.values:
        raise ReportRejected(gettext("There is no “%(kind)s” report: choose the scores or the attempts CSV, or the "
                                     "full export.") % {"kind": kind[:50]})
    now = timezone.now()
    _fail_abandoned(now=now, resource_id=resource_id, kind=kind)
    try:
        with transaction.atomic():
            report = ReportFile.objects.create(
                resource_id=resource_id, kind=kind, created_at=now, updated_at=now,
                requested_by=user if user is not None and user.is_authenticated else None,
            )
    except IntegrityError:
        active = ReportFile.objects.filter(resource_id=resource_id, kind=kind, state__in=ACTIVE_STATES).first()
        if active is None:
            raise
        return active
    transaction.on_commit(lambda: _generate_later(report.pk))
    return report


def _generate_later(report_id: uuid.UUID) -> None:
    from reports import tasks

    tasks.report_generate_task(str(report_id))


class _Progress:
    """Counts rows and saves the percentage (and the worker's heartbeat) every PROGRESS_STEP
    percent, never per row."""

    def __init__(self, report_id: uuid.UUID, total: int):
        self.report_id, self.total, self.rows, self.saved = report_id, total, 0, 0

    def add(self, rows: int) -> None:
        self.rows += rows
        percent = min(99, self.rows * 100 // self.total) if self.total else 0
        if percent >= self.saved + PROGRESS_STEP:
            self.saved = percent
            ReportFile.objects.filter(pk=self.report_id, state=ReportFileState.RUNNING).update(
                progress=percent, rows=self.rows, updated_at=timezone.now()
            )


def _write_scores(*, report: ReportFile, out: TextIO, progress_for: Callable[[int], _Progress]) -> int:
    writer = csv.writer(out)
    writer.writerow(tables.SCORES_HEADER)
    progress = progress_for(selectors.students_count(resource_id=report.resource_id))
    batch = 0
    for student in selectors.students_for_scores(resource_id=report.resource_id):
        writer.writerow(tables.scores_row(student))
        batch += 1
        if batch == 500:
            progress.add(batch)
            batch = 0
    progress.add(batch)
    return progress.rows


def _write_attempts(*, report: ReportFile, out: TextIO, progress_for: Callable[[int], _Progress]) -> int:
    writer = csv.writer(out)
    questions = selectors.question_columns(resource_id=report.resource_id)
    question_ids = [qid for qid, _ in questions]
    discounts = grading_selectors.discounts_for(resource_id=report.resource_id)
    writer.writerow(tables.attempts_header(questions))
    progress = progress_for(selectors.attempts_count(resource_id=report.resource_id))
    structures: dict = {}
    for chunk, values in selectors.attempt_chunks(resource_id=report.resource_id, discounts=discounts):
        # Re-marked parts (rare): those attempts' scores are recomputed from all their parts.
        overrides = grading_selectors.overrides_for(attempt_ids=[a.id for a in chunk])
        if overrides:
            for attempt_id, more in grading_selectors.scoring_values(attempt_ids=sorted(overrides)).items():
                values.setdefault(attempt_id, {}).update(more)
        missing = {a.exam_id for a in chunk} - set(structures)
        if missing:
            structures.update(grading_selectors.exam_structures(exam_ids=missing))
        writer.writerows(tables.attempts_row(a, values.get(a.id, {}), discounts, question_ids, overrides.get(a.id),
                                             structure=structures.get(a.exam_id))
                         for a in chunk)
        progress.add(len(chunk))
    return progress.rows


def _write_export(*, report: ReportFile, out: TextIO, progress_for: Callable[[int], _Progress]) -> int:
    """The activity's full JSON export (reports.export), streamed: rows are attempts."""
    progress = progress_for(export.attempts_count(resource_id=report.resource_id))
    for piece in export.export_pieces(resource_id=report.resource_id, on_attempts=progress.add):
        out.write(piece)
    return progress.rows


_WRITERS = {ReportKind.SCORES: _write_scores, ReportKind.ATTEMPTS: _write_attempts, ReportKind.EXPORT: _write_export}


def _human_error(error: Exception) -> str:
    if isinstance(error, OSError):
        return gettext("The server could not write the file (%(error)s). Try again later.") % {
            "error": error.strerror or type(error).__name__}
    return gettext("Something went wrong while writing the report; it has been logged. Try again, or tell the site's "
                   "administrators.")


def report_generate(*, report_id: uuid.UUID | str) -> ReportFile | None:
    """Write a queued report's CSV. Returns the report as it ends (done or failed), or None
    if it was not waiting to be written (already taken, failed as abandoned, or removed)."""
    started = timezone.now()
    if not ReportFile.objects.filter(pk=report_id, state=ReportFileState.QUEUED).update(
        state=ReportFileState.RUNNING, progress=0, rows=0, updated_at=started
    ):
        return None
    report = ReportFile.objects.get(pk=report_id)
    relative = storage.relative_path_for(report.pk, report.kind)
    final = storage.absolute_path(relative)
    temp = None
    clock = time.monotonic()
    try:
        directory = storage.reports_dir_ensure()
        temp = directory / f".{report.pk}.{secrets.token_hex(4)}.part"
        descriptor = files.create(temp, settings.PRIVATE_FILE_MODE)
        # utf-8-sig: Excel reads UTF-8 names correctly only with the byte-order mark (not in JSON).
        encoding = "utf-8" if report.kind == ReportKind.EXPORT else "utf-8-sig"
        with open(descriptor, "w", encoding=encoding, newline="") as out:
            rows = _WRITERS[report.kind](report=report, out=out, progress_for=lambda total: _Progress(report.pk, total))
            out.flush()
            os.fsync(out.fileno())
        size = temp.stat().st_size
        os.replace(temp, final)
    except Exception as error:
        logger.exception("Report %s (%s for resource %s) failed", report.pk, report.kind, report.resource_id)
        if temp is not None:
            temp.unlink(missing_ok=True)
        finished = timezone.now()
        ReportFile.objects.filter(pk=report.pk, state=ReportFileState.RUNNING).update(
            state=ReportFileState.FAILED, error=_human_error(error), finished_at=finished,
            expires_at=finished + _retention(), updated_at=finished,
        )
        return ReportFile.objects.filter(pk=report.pk).first()
    finished = timezone.now()
    if not ReportFile.objects.filter(pk=report.pk, state=ReportFileState.RUNNING).update(
        state=ReportFileState.DONE, progress=100, rows=rows, relative_path=relative, size_bytes=size,
        finished_at=finished, expires_at=finished + _retention(), updated_at=finished, error="",
    ):
        final.unlink(missing_ok=True)  # failed as abandoned, or removed with its resource, meanwhile
        return ReportFile.objects.filter(pk=report.pk).first()
    logger.info("Report %s: %s rows, %s bytes in %.1f s", report.pk, rows, size, time.monotonic() - clock)
    return ReportFile.objects.get(pk=report.pk)


def _fail_abandoned(*, now: datetime, resource_id: int | None = None, kind: str | None = None) -> int:
    reports = ReportFile.objects.filter(state__in=ACTIVE_STATES, updated_at__lt=now - ABANDONED_AFTER)
    if resource_id is not None:
        reports = reports.filter(resource_id=resource_id, kind=kind)
    return reports.update(
        state=ReportFileState.FAILED,
        error=gettext("The report was not finished: the background worker stopped or is not running. Ask for it again."),
        finished_at=now, expires_at=now + _retention(), updated_at=now,
    )


def reports_fail_abandoned(*, now: datetime | None = None) -> int:
    """Fail reports whose worker has not reported for ABANDONED_AFTER. Returns how many."""
    return _fail_abandoned(now=now or timezone.now())


def reports_remove_expired(now: datetime | None = None, *, limit: int = 1000) -> int:
    """Delete report files and rows past their expiry (at most `limit` a run), and leftovers:
    temporary files of killed workers and files whose row has gone. Returns rows deleted."""
    now = now or timezone.now()
    expired = list(ReportFile.objects.filter(expires_at__lte=now).values_list("pk", "relative_path")[:limit])
    for _, relative in expired:
        path = storage.absolute_path(relative)
        if path is not None:
            path.unlink(missing_ok=True)  # the file first: a row without a file is a 404, never the reverse
    deleted, _ = ReportFile.objects.filter(pk__in=[pk for pk, _ in expired]).delete()
    _remove_leftovers(now=now)
    return deleted


def _remove_leftovers(*, now: datetime) -> None:
    directory = storage.reports_dir()
    if not directory.is_dir():
        return
    before = (now - LEFTOVER_AFTER).timestamp()
    candidates = []
    with os.scandir(directory) as entries:
        for entry in entries:
            if (_REPORT_FILE.match(entry.name) or _TEMP_FILE.match(entry.name)) and entry.stat().st_mtime < before:
                candidates.append(entry.name)
            if len(candidates) >= 10_000:
                break
    ids = {}
    for name in candidates:
        if name.endswith((".csv", ".json")):
            try:
                ids[name] = uuid.UUID(name.rsplit(".", 1)[0])
            except ValueError:
                continue
    known = set(ReportFile.objects.filter(pk__in=list(ids.values())).values_list("pk", flat=True))
    for name in candidates:
        if name.endswith(".part") or (name in ids and ids[name] not in known):
            (directory / name).unlink(missing_ok=True)
