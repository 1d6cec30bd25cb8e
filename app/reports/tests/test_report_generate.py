"""The two CSVs for a known data set, written to a private file through the worker."""

import csv
import os
import stat
from pathlib import Path

import pytest
from django.conf import settings

from grading.models import Discount
from reports import services, storage
from reports.models import ReportFile

HEADER_ATTEMPTS = ["name", "identifier", "lms_user_id", "attempt", "started_at", "ended_at", "late", "completion_status", "score_raw",
                   "score_max", "scaled", "q0 Arithmetic", "q1 Primes"]


def generate(known, kind, django_capture_on_commit_callbacks) -> tuple[ReportFile, list[list[str]]]:
    with django_capture_on_commit_callbacks(execute=True):  # Huey runs tasks inline in tests
        report = services.report_request(resource_id=known.resource.pk, kind=kind,
                                         user=known.instructor.membership.user)
    report.refresh_from_db()
    assert report.state == "done", report.error
    path = storage.absolute_path(report.relative_path)
    with open(path, encoding="utf-8-sig", newline="") as f:
        return report, list(csv.reader(f))


@pytest.mark.django_db
def test_scores_csv(known, django_capture_on_commit_callbacks):
    report, rows = generate(known, "scores", django_capture_on_commit_callbacks)
    assert rows == [
        ["name", "identifier", "email", "lms_user_id", "attempts", "grade", "grade_percent", "counted_attempt", "reported_to_lms",
         "reported_score", "reported_at"],
        # by family name (Bob's is empty); formula-like text is made inert with a leading apostrophe
        ["'=HYPERLINK(\"http://evil.example\")", "'@bob@example.ac.uk", "'@bob@example.ac.uk", "'+s2", "1", "", "", "", "", "", ""],
        ["Dan Brown", "dan@example.ac.uk", "dan@example.ac.uk", "s4", "0", "", "", "", "waiting", "", ""],
        ["Ada Lovelace", "ada@example.ac.uk", "ada@example.ac.uk", "s1", "2", "0.75", "75", "1", "delivered", "0.75",
         "2025-11-24T10:30:00+00:00"],
    ]
    assert report.rows == 3 and report.progress == 100 and report.size_bytes == Path(
        storage.absolute_path(report.relative_path)).stat().st_size


@pytest.mark.django_db
def test_attempts_csv(known, django_capture_on_commit_callbacks):
    report, rows = generate(known, "attempts", django_capture_on_commit_callbacks)
    assert rows == [
        HEADER_ATTEMPTS,
        ["Ada Lovelace", "ada@example.ac.uk", "s1", "1", "2025-11-24T10:00:00+00:00", "2025-11-24T10:30:00+00:00", "", "completed",
         "3", "4", "0.75", "1", "2"],
        ["Ada Lovelace", "ada@example.ac.uk", "s1", "2", "2025-11-25T09:00:00+00:00", "", "", "incomplete", "2", "4", "0.5", "2", "0"],
        ["'=HYPERLINK(\"http://evil.example\")", "'@bob@example.ac.uk", "'+s2", "1", "2025-11-25T09:00:00+00:00", "", "", "not attempted",
         "", "", "", "", ""],
    ]
    assert report.rows == 3


@pytest.mark.django_db
@pytest.mark.parametrize(
    "target, behaviour, ada_1, ada_2",
    [
        # q0p1 full marks: Ada's first attempt gets the part she missed (q0 1 -> 2), 4/4
        ("q0p1", "full_marks", ["4", "4", "1", "2", "2"], ["2", "4", "0.5", "2", "0"]),
        # q1 removed from the total: its column is empty and the totals are q0's alone
        ("q1", "remove", ["1", "2", "0.5", "1", ""], ["2", "2", "1", "2", ""]),
        # q1 full marks for everyone
        ("q1", "full_marks", ["3", "4", "0.75", "1", "2"], ["4", "4", "1", "2", "2"]),
    ],
)
def test_attempts_csv_applies_discounts(known, django_capture_on_commit_callbacks, target, behaviour, ada_1, ada_2):
    Discount.objects.create(resource=known.resource, target=target, behaviour=behaviour)
    _, rows = generate(known, "attempts", django_capture_on_commit_callbacks)
    assert rows[0] == HEADER_ATTEMPTS
    assert rows[1][8:] == ada_1
    assert rows[2][8:] == ada_2


@pytest.mark.django_db
def test_file_is_private_and_written_atomically(known, django_capture_on_commit_callbacks):
    report, _ = generate(known, "attempts", django_capture_on_commit_callbacks)
    path = storage.absolute_path(report.relative_path)
    assert report.relative_path == f"reports/{report.pk}.csv"
    assert path.is_relative_to(Path(settings.PRIVATE_ROOT).resolve())
    assert not path.is_relative_to(Path(settings.MEDIA_ROOT).resolve())
    assert stat.S_IMODE(path.stat().st_mode) == settings.PRIVATE_FILE_MODE == 0o640  # nginx's group reads it, others not
    assert os.listdir(path.parent) == [path.name]  # no temporary file left behind


@pytest.mark.django_db
def test_questions_beyond_the_exam_structure_get_columns(known, django_capture_on_commit_callbacks):
    from attempts.models import Attempt, Element

    attempt = Attempt.objects.get(user=known.ada.membership.user, number=2)
    Element.objects.bulk_create([
        Element(attempt=attempt, key="cmi.objectives.2.id", value="q2", sequence=100),
        Element(attempt=attempt, key="cmi.objectives.2.score.raw", value="1.5", sequence=101),
        Element(attempt=attempt, key="cmi.objectives.2.score.max", value="3", sequence=102),
    ])
    _, rows = generate(known, "attempts", django_capture_on_commit_callbacks)
    assert rows[0][-1] == "q2"
    assert [r[-1] for r in rows[1:]] == ["", "1.5", ""]


@pytest.mark.django_db
def test_progress_is_saved_in_steps_not_per_row(known, django_capture_on_commit_callbacks, django_assert_max_num_queries):
    from attempts.models import Attempt

    exam = known.resource.exam_packages.get()
    user = known.carol.membership.user
    Attempt.objects.bulk_create(Attempt(resource=known.resource, user=user, exam=exam, number=n) for n in range(1, 1001))
    report = ReportFile.objects.create(resource=known.resource, kind="attempts", created_at=known.resource.created_at,
                                       updated_at=known.resource.created_at)
    # count + question columns + discounts + attempts + one values query per chunk, ~20 progress updates, claim/finish
    with django_assert_max_num_queries(40):
        done = services.report_generate(report_id=report.pk)
    assert done.state == "done" and done.rows == 1003 and done.progress == 100


@pytest.mark.django_db
def test_a_failure_is_recorded_for_the_instructor_and_leaves_no_file(known, monkeypatch):
    def broken(**kwargs):
        raise RuntimeError("database went away")

    monkeypatch.setattr("reports.selectors.question_columns", broken)
    report = ReportFile.objects.create(resource=known.resource, kind="attempts", created_at=known.resource.created_at,
                                       updated_at=known.resource.created_at)
    failed = services.report_generate(report_id=report.pk)
    assert failed.state == "failed" and "went wrong" in failed.error and failed.expires_at is not None
    assert "database" not in failed.error  # details go to the log, not to the page
    assert list(storage.reports_dir().iterdir()) == []
    assert services.report_generate(report_id=report.pk) is None  # only a queued report is written


@pytest.mark.django_db
def test_asking_twice_while_running_returns_the_same_report(known):
    user = known.instructor.membership.user
    first = services.report_request(resource_id=known.resource.pk, kind="scores", user=user)  # not run: no commit
    again = services.report_request(resource_id=known.resource.pk, kind="scores", user=user)
    other = services.report_request(resource_id=known.resource.pk, kind="attempts", user=user)
    assert again.pk == first.pk and other.pk != first.pk
    with pytest.raises(services.ReportRejected):
        services.report_request(resource_id=known.resource.pk, kind="grades", user=user)
    assert ReportFile.objects.count() == 2


def test_formula_guard():
    from reports.tables import number, text

    assert [text(v) for v in ["=1+1", "+1", "-1", "@SUM(A1)", "\tx", "plain", "", None]] == [
        "'=1+1", "'+1", "'-1", "'@SUM(A1)", "'\tx", "plain", "", ""]
    assert [number(v) for v in [None, 3.0, 0.75, -1.5, 1 / 3, float("nan")]] == ["", "3", "0.75", "-1.5", "0.333333", ""]


@pytest.mark.django_db
def test_attempts_csv_counts_remarked_parts_and_leaves_out_deleted_attempts(known, django_capture_on_commit_callbacks):
    from attempts.models import Attempt, PartOverride
    from attempts.services import attempt_delete

    first, second = Attempt.objects.filter(user=known.ada.membership.user).order_by("number")
    PartOverride.objects.create(attempt=first, part_id="q0p1", score=0.5, at=first.started_at)  # 0 -> 0.5
    attempt_delete(attempt=second, by=None)
    _, rows = generate(known, "attempts", django_capture_on_commit_callbacks)
    ada = [r for r in rows if r[2] == "s1"]
    assert len(ada) == 1
    assert ada[0][8:] == ["3.5", "4", "0.875", "1.5", "2"]


@pytest.mark.django_db
def test_the_activity_chooses_the_identifier_in_both_csvs(known, django_capture_on_commit_callbacks):
    """The reference's identifier_field: the LMS username (or student number) when the activity
    asks for it, "" for a person the LMS never sent one for; the LMS's own choice otherwise."""
    from attempts.models import ResourceSettings
    from lms.models import LtiIdentity

    LtiIdentity.objects.filter(user=known.ada.membership.user).update(username="alovelace", sourcedid="S1")
    ResourceSettings.objects.filter(resource=known.resource).update(identifier_field="username")
    _, scores_rows = generate(known, "scores", django_capture_on_commit_callbacks)
    assert [row[:2] for row in scores_rows[1:]] == [["'=HYPERLINK(\"http://evil.example\")", ""],
                                                    ["Dan Brown", ""], ["Ada Lovelace", "alovelace"]]
    _, attempt_rows = generate(known, "attempts", django_capture_on_commit_callbacks)
    assert [row[1] for row in attempt_rows[1:]] == ["alovelace", "alovelace", ""]

    ResourceSettings.objects.filter(resource=known.resource).update(identifier_field="")
    known.resource.consumer.identifier_field = "sourcedid"
    known.resource.consumer.save()
    _, attempt_rows = generate(known, "attempts", django_capture_on_commit_callbacks)
    assert [row[1] for row in attempt_rows[1:]] == ["S1", "S1", ""]
