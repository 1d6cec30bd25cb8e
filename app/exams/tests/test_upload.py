"""Uploading exam packages: the real Numbas exam is accepted; hostile or broken zips are
refused with a message and leave no files and no rows behind."""

import io
import zipfile
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from exams.models import ExamPackage
from exams.packages import PackageRejected
from exams.services import exam_package_upload
from lms.models import Resource
from tests.support import lms as test_lms
from tests.support.packages import MANIFEST, SHARED_EXAM, good_package, make_zip, source_exam


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path / "media")
    return Path(settings.MEDIA_ROOT)


@pytest.fixture
def instructor(consumer):
    client = Client()
    response = client.post(
        "/lti/launch/",
        test_lms.sign(test_lms.launch_params(roles="Instructor"), key=consumer.key, secret=consumer.secret),
    )
    assert response.status_code == 302
    client.resource = Resource.objects.get()
    return client


def upload(client, data: bytes, name="exam.zip"):
    return client.post(
        f"/resource/{client.resource.pk}/instructor/exam/", {"package": SimpleUploadedFile(name, data)}
    )


def stored_files(media: Path) -> list[Path]:
    root = media / "exams"
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


@pytest.mark.django_db
def test_real_numbas_exam_is_accepted_with_its_launch_file_and_title(instructor, media):
    if not SHARED_EXAM.exists():
        pytest.skip("../shared/fixtures is not present")
    response = upload(instructor, SHARED_EXAM.read_bytes(), name=SHARED_EXAM.name)
    assert response.status_code == 201, response.content
    assert response.json()["title"] == "Advanced Number Theory"
    package = ExamPackage.objects.get()
    assert package.launch_href == "index.html"
    assert package.duration_seconds == 3600
    assert package.numbas_version == "6.3"  # numbas-manifest.json, not source.exam's editor tag
    assert [q["name"] for q in package.structure][:2] == ["Bézout", "Bézout"]
    assert package.structure[0]["parts"][0]["type"] == "gapfill"
    assert package.file_count == 51
    index = media / "exams" / package.directory / "index.html"
    assert index.exists() and len(package.directory) >= 32
    assert package.launch_path == f"/exams/{package.directory}/index.html"


@pytest.mark.django_db
def test_replacing_the_exam_makes_a_new_version(instructor, media):
    assert upload(instructor, good_package(title="First")).status_code == 201
    assert upload(instructor, good_package(title="Second")).status_code == 201
    versions = list(ExamPackage.objects.order_by("version").values_list("version", "title"))
    assert versions == [(1, "First"), (2, "Second")]
    assert len({p.directory for p in ExamPackage.objects.all()}) == 2


@pytest.mark.django_db
def test_launch_href_comes_from_the_manifest_and_title_falls_back_to_it(instructor):
    data = make_zip({
        "imsmanifest.xml": MANIFEST.format(title="From manifest", href="start/launch.html?x=1"),
        "start/launch.html": "<!doctype html>",
    })
    assert upload(instructor, data).status_code == 201
    package = ExamPackage.objects.get()
    assert package.launch_href == "start/launch.html" and package.title == "From manifest"
    assert package.structure == [] and package.duration_seconds is None


def bomb() -> bytes:
    return make_zip({"imsmanifest.xml": MANIFEST.format(title="b", href="index.html"), "index.html": "x",
                     "zeros.bin": b"\0" * (30 * 1024 * 1024)})


def hostile_cases():
    manifest = MANIFEST.format(title="t", href="index.html")
    return {
        "not a zip": (b"%PDF-1.4 not a zip at all", "not a zip file"),
        "empty file": (b"", "not a zip file"),
        "no manifest": (make_zip({"index.html": "x"}), "no imsmanifest.xml"),
        "parent path": (make_zip({"imsmanifest.xml": manifest, "index.html": "x", "../evil.js": "x"}), "leaves its folder"),
        "nested parent path": (make_zip({"imsmanifest.xml": manifest, "index.html": "x", "a/../../evil.js": "x"}), "leaves its folder"),
        "absolute path": (make_zip({"imsmanifest.xml": manifest, "index.html": "x", "/etc/cron.d/evil": "x"}), "absolute path"),
        "windows path": (make_zip({"imsmanifest.xml": manifest, "index.html": "x", "..\\evil.js": "x"}), "invalid name"),
        "symlink": (make_zip({"imsmanifest.xml": manifest, "index.html": "x"}, symlinks={"link": "/etc/passwd"}), "symbolic link"),
        "zip bomb": (bomb(), "zip bomb"),
        "launch file missing": (make_zip({"imsmanifest.xml": manifest}), "launch file 'index.html' is not in the zip"),
        "broken manifest": (make_zip({"imsmanifest.xml": "<manifest><oops", "index.html": "x"}), "not valid XML"),
        "xml entity bomb": (make_zip({"imsmanifest.xml": '<?xml version="1.0"?><!DOCTYPE m [<!ENTITY a "aaaa">'
                                      '<!ENTITY b "&a;&a;&a;&a;">]><manifest>&b;</manifest>', "index.html": "x"}),
                            "not valid XML"),
    }


@pytest.mark.django_db
@pytest.mark.parametrize("case", list(hostile_cases()))
def test_hostile_or_broken_packages_are_refused_and_nothing_is_stored(instructor, media, case):
    data, message = hostile_cases()[case]
    response = upload(instructor, data)
    assert response.status_code == 400
    assert message in response.json()["error"]
    assert ExamPackage.objects.count() == 0
    assert stored_files(media) == []


@pytest.mark.django_db
def test_too_many_files_too_large_and_oversized_upload(instructor, media, settings):
    settings.EXAM_MAX_FILES = 5
    many = good_package(**{f"f{i}.txt": "x" for i in range(5)})
    assert "at most 5 are allowed" in upload(instructor, many).json()["error"]
    settings.EXAM_MAX_FILES = 5000

    settings.EXAM_MAX_EXPANDED_BYTES = 1000
    big = good_package(**{"big.txt": "y" * 5000})
    assert "expands to" in upload(instructor, big).json()["error"]
    settings.EXAM_MAX_EXPANDED_BYTES = 500 * 1024 * 1024

    settings.EXAM_MAX_UPLOAD_BYTES = 100
    assert "can be at most" in upload(instructor, good_package()).json()["error"]
    assert ExamPackage.objects.count() == 0 and stored_files(media) == []


@pytest.mark.django_db
def test_headers_that_lie_about_sizes_are_caught_while_extracting(consumer, media, settings):
    """A zip whose central directory claims tiny sizes: extraction counts real bytes."""
    data = bytearray(good_package(**{"payload.bin": b"z" * 200_000}))
    resource = Resource.objects.create(consumer=consumer, resource_link_id="r")
    settings.EXAM_MAX_EXPANDED_BYTES = 100_000
    # Patch the declared uncompressed size of payload.bin in the central directory to 10 bytes.
    archive = zipfile.ZipFile(io.BytesIO(bytes(data)))
    info = archive.getinfo("payload.bin")
    central = bytes(data).rfind(b"PK\x01\x02", 0, bytes(data).rfind(b"payload.bin"))
    data[central + 24:central + 28] = (10).to_bytes(4, "little")
    with pytest.raises(PackageRejected):
        exam_package_upload(resource=resource, upload=io.BytesIO(bytes(data)), size=len(data))
    assert ExamPackage.objects.count() == 0 and stored_files(media) == []
    assert info.file_size == 200_000


@pytest.mark.django_db
def test_only_instructors_of_the_resource_may_upload(instructor, consumer, media):
    student = Client()
    student.post("/lti/launch/", test_lms.sign(test_lms.launch_params(), key=consumer.key, secret=consumer.secret))
    student.resource = instructor.resource
    assert upload(student, good_package()).status_code == 403
    anonymous = Client()
    anonymous.resource = instructor.resource
    assert upload(anonymous, good_package()).status_code == 401
    assert ExamPackage.objects.count() == 0 and stored_files(media) == []
