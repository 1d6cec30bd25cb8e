"""Expired reports go (file and row); abandoned ones fail; leftovers are swept."""

import os
import time
from datetime import timedelta

import pytest
from django.utils import timezone

from reports import services, storage, tasks
from reports.models import ReportFile


def make(known, capture, kind="scores"):
    with capture(execute=True):
        report = services.report_request(resource_id=known.resource.pk, kind=kind, user=known.instructor.membership.user)
    report.refresh_from_db()
    return report


@pytest.mark.django_db
def test_expired_reports_are_removed_file_and_row(known, django_capture_on_commit_callbacks, settings):
    old = make(known, django_capture_on_commit_callbacks, "scores")
    new = make(known, django_capture_on_commit_callbacks, "attempts")
    assert old.expires_at == old.finished_at + timedelta(days=settings.REPORT_RETENTION_DAYS)
    ReportFile.objects.filter(pk=old.pk).update(expires_at=timezone.now() - timedelta(minutes=1))
    old_path, new_path = storage.absolute_path(old.relative_path), storage.absolute_path(new.relative_path)

    assert services.reports_remove_expired() == 1
    assert not old_path.exists() and not ReportFile.objects.filter(pk=old.pk).exists()
    assert new_path.exists() and ReportFile.objects.filter(pk=new.pk).exists()
    later = new.expires_at + timedelta(seconds=1)
    assert services.reports_remove_expired(now=later) == 1
    assert not new_path.exists() and not ReportFile.objects.exists()


@pytest.mark.django_db
def test_periodic_cleanup_fails_abandoned_and_sweeps_leftovers(known, django_capture_on_commit_callbacks):
    # a report whose worker died long ago, and one still running now
    stale = ReportFile.objects.create(resource=known.resource, kind="attempts", state="running",
                                      created_at=timezone.now() - timedelta(hours=2),
                                      updated_at=timezone.now() - timedelta(hours=2))
    kept = make(known, django_capture_on_commit_callbacks, "scores")
    directory = storage.reports_dir()
    temp = directory / f".{stale.pk}.abcd1234.part"
    orphan = directory / "0f0f0f0f-0000-4000-8000-000000000000.csv"  # its row went with its resource
    fresh_temp = directory / ".11111111-0000-4000-8000-000000000000.abcd.part"
    for path in (temp, orphan, fresh_temp):
        path.write_text("x")
    day_ago = time.time() - 86400
    os.utime(temp, (day_ago, day_ago))
    os.utime(orphan, (day_ago, day_ago))
    os.utime(storage.absolute_path(kept.relative_path), (day_ago, day_ago))

    tasks.reports_cleanup_task.call_local()

    stale.refresh_from_db()
    assert stale.state == "failed" and "Ask for it again" in stale.error and stale.expires_at
    assert not temp.exists() and not orphan.exists()
    assert fresh_temp.exists()  # a worker may still be writing it
    assert storage.absolute_path(kept.relative_path).exists()  # its row is there and not expired
    # a new request of the kind that was stuck is accepted again
    again = make(known, django_capture_on_commit_callbacks, "attempts")
    assert again.pk != stale.pk and again.state == "done"
