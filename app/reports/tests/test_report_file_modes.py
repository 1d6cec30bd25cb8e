"""A report's file and folder get the modes of PRIVATE_FILE_MODE / PRIVATE_DIR_MODE whatever the
worker's umask, and the group of PRIVATE_ROOT when it passes its group down (setgid): that group
is how nginx's workers, another user than the app, read the file (infra/numbas_infra/spec.py)."""

import grp
import os
import pwd
import stat
from pathlib import Path

import pytest
from django.conf import settings

from reports import services, storage


@pytest.fixture
def tight_umask():
    """A worker started with umask 077 would otherwise write files only their owner reads."""
    previous = os.umask(0o077)
    yield
    os.umask(previous)


def generate(known, django_capture_on_commit_callbacks) -> Path:
    with django_capture_on_commit_callbacks(execute=True):
        report = services.report_request(resource_id=known.resource.pk, kind="scores", user=known.instructor.membership.user)
    report.refresh_from_db()
    assert report.state == "done", report.error
    return storage.absolute_path(report.relative_path)


@pytest.mark.django_db
def test_the_file_is_group_readable_and_closed_to_others_whatever_the_umask(known, django_capture_on_commit_callbacks,
                                                                           tight_umask):
    path = generate(known, django_capture_on_commit_callbacks)
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    assert stat.S_IMODE(path.parent.stat().st_mode) & 0o777 == 0o750
    assert settings.PRIVATE_FILE_MODE == 0o640 and settings.PRIVATE_DIR_MODE & 0o777 == 0o750  # the defaults


@pytest.mark.django_db
def test_the_modes_come_from_the_settings(known, django_capture_on_commit_callbacks, settings):
    settings.PRIVATE_FILE_MODE, settings.PRIVATE_DIR_MODE = 0o600, 0o700
    path = generate(known, django_capture_on_commit_callbacks)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700


@pytest.mark.django_db
def test_a_reports_folder_left_closed_by_an_older_version_is_opened_to_the_group(known,
                                                                                 django_capture_on_commit_callbacks):
    storage.reports_dir().mkdir(mode=0o700, parents=True)
    os.chmod(storage.reports_dir(), 0o700)
    path = generate(known, django_capture_on_commit_callbacks)
    assert stat.S_IMODE(path.parent.stat().st_mode) & 0o777 == 0o750


@pytest.mark.django_db
def test_the_file_and_folder_take_the_group_of_private_root(known, django_capture_on_commit_callbacks):
    if os.getuid() != 0:
        pytest.skip("giving PRIVATE_ROOT another group needs root")
    group = pwd.getpwnam("nobody").pw_gid
    assert group != os.getgid()
    root = Path(settings.PRIVATE_ROOT)
    root.mkdir(parents=True, exist_ok=True)  # the exam upload keeps its original there already
    os.chown(root, -1, group)
    os.chmod(root, 0o2750)  # as cloud-init leaves it
    path = generate(known, django_capture_on_commit_callbacks)
    assert path.stat().st_gid == group and path.parent.stat().st_gid == group, grp.getgrgid(group).gr_name
    assert path.parent.stat().st_mode & stat.S_ISGID  # files written later get the group too
