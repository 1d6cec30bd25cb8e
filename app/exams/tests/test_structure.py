"""An exam's structure from its package: questions, parts and gaps with their marks as the
Numbas runtime counts them (a gap-fill is worth its gaps' marks), and the runtime's Numbas
version from numbas-manifest.json (source.exam's first line is an editor tag). Kept per exam
version at upload, and re-read for exams stored before."""

import io
import json
from pathlib import Path

import pytest

from exams.demo import demo_exam_zip
from exams.packages import inspect_package
from exams.selectors import exam_total_marks
from exams.services import exam_package_upload
from lms.models import Resource
from tests.support.packages import MANIFEST, make_zip

SHARED_EXAMS = Path(__file__).resolve().parents[3].parent / "shared" / "fixtures" / "exams"


def shared_exam(name: str) -> bytes:
    package = SHARED_EXAMS / f"advanced-number-theory-{name}.zip"
    if not package.is_file():
        pytest.skip(f"{package} is absent (the shared fixtures are not part of the repository)")
    return package.read_bytes()


def structure_total(structure):
    from grading.scoring import structure_total

    return structure_total(structure)


def inspect(data: bytes):
    return inspect_package(io.BytesIO(data), size=len(data))


@pytest.mark.parametrize("name, version", [("numbas6", "6.3"), ("numbas10", "10.0")])
def test_the_real_exam_bezout_parts_are_worth_their_gaps_3_marks_and_the_version_is_the_runtime_s(name, version):
    info = inspect(shared_exam(name))
    assert info.numbas_version == version  # not "exam_results_page_options"
    bezout = info.structure[0]
    assert bezout["name"] == "Bézout" and bezout["marks"] == 3
    part = bezout["parts"][0]
    assert part["type"] == "gapfill" and part["marks"] == 3
    assert [g["marks"] for g in part["gaps"]] == [1, 1, 1]
    assert [q["marks"] for q in info.structure] == [3, 3, 1, 1, 1, 1]
    assert structure_total(info.structure) == 10


def test_the_demo_exam_structure_and_total():
    info = inspect(demo_exam_zip())
    assert [(q["name"], q["marks"], [p["marks"] for p in q["parts"]]) for q in info.structure] == [
        ("Arithmetic", 2, [1, 1]), ("Primes", 2, [2])]
    assert structure_total(info.structure) == 4


def _package(groups, **exam):
    source = {"name": "Groups", "question_groups": groups, **exam}
    return make_zip({
        "imsmanifest.xml": MANIFEST.format(title="t", href="index.html"),
        "index.html": "<!doctype html><title>exam</title>",
        "source.exam": "// Numbas version: exam_results_page_options\n" + json.dumps(source),
        "numbas-manifest.json": json.dumps({"Numbas_version": "9.1"}),
    })


def test_a_group_picking_a_random_subset_leaves_the_total_to_each_attempt():
    one = {"name": "A", "parts": [{"type": "numberentry", "marks": 2}]}
    two = {"name": "B", "parts": [{"type": "gapfill", "marks": 0, "gaps": [{"type": "jme", "marks": 4}]}]}
    fixed = inspect(_package([{"pickingStrategy": "all-ordered", "questions": [one, two]}]))
    assert fixed.numbas_version == "9.1" and structure_total(fixed.structure) == 6
    random = inspect(_package([{"pickingStrategy": "random-subset", "pickQuestions": 1, "questions": [one, two]}]))
    assert [q["picking"] for q in random.structure] == ["random-subset"] * 2
    assert structure_total(random.structure) is None


@pytest.mark.django_db
def test_upload_keeps_the_structure_per_version_and_exams_stored_before_are_re_read(consumer, settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path)
    resource = Resource.objects.create(consumer=consumer, resource_link_id="structure", title="S")
    data = shared_exam("numbas10")
    package = exam_package_upload(resource=resource, upload=io.BytesIO(data), size=len(data))
    assert package.numbas_version == "10.0" and package.structure[0]["marks"] == 3
    assert exam_total_marks(resource_id=resource.pk) == 10
    # What the data migration reads for an exam stored with the old structure:
    from exams.packages import structure_of_directory

    version, structure = structure_of_directory(tmp_path / "exams" / package.directory)
    assert (version, structure) == ("10.0", package.structure)
