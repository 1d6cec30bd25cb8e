"""Extracted exam files get MEDIA_FILE_MODE / MEDIA_DIR_MODE whatever the umask, and the group of
MEDIA_ROOT when it passes its group down (setgid): nginx's workers read them through it."""

import io
import os
import pwd
import stat
from pathlib import Path

import pytest

from exams.services import exam_package_upload
from lms.models import Resource
from tests.support.packages import MANIFEST, make_zip


def package() -> bytes:
    return make_zip({"imsmanifest.xml": MANIFEST.format(title="Modes", href="start/index.html"),
                     "start/index.html": "<!doctype html>", "start/deep/er/file.js": "1"})


def upload(consumer, media: Path):
    resource = Resource.objects.create(consumer=consumer, resource_link_id="modes", title="Modes")
    data = package()
    stored = exam_package_upload(resource=resource, upload=io.BytesIO(data), size=len(data))
    return media / "exams" / stored.directory


@pytest.fixture
def media(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path / "media")
    return Path(settings.MEDIA_ROOT)


@pytest.mark.django_db
def test_exam_files_are_readable_whatever_the_umask(consumer, media, settings):
    previous = os.umask(0o077)
    try:
        directory = upload(consumer, media)
    finally:
        os.umask(previous)
    below = [directory, *directory.rglob("*")]
    assert {stat.S_IMODE(p.stat().st_mode) for p in below if p.is_file()} == {0o644}
    assert {stat.S_IMODE(p.stat().st_mode) & 0o777 for p in below if p.is_dir()} == {0o755}
    assert stat.S_IMODE((media / "exams").stat().st_mode) & 0o777 == 0o755
    assert settings.MEDIA_FILE_MODE == 0o644 and settings.MEDIA_DIR_MODE & 0o777 == 0o755  # the defaults


@pytest.mark.django_db
def test_exam_files_take_the_group_of_media_root(consumer, media):
    if os.getuid() != 0:
        pytest.skip("giving MEDIA_ROOT another group needs root")
    group = pwd.getpwnam("nobody").pw_gid
    media.mkdir(parents=True)
    os.chown(media, -1, group)
    os.chmod(media, 0o2755)  # as cloud-init leaves it
    directory = upload(consumer, media)
    for path in [media / "exams", directory, *directory.rglob("*")]:
        assert path.stat().st_gid == group, path
        assert path.is_file() or path.stat().st_mode & stat.S_ISGID, path
