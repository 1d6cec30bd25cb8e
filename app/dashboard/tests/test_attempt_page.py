"""One attempt, for its instructor: marks and re-marking, deleting, restoring and reopening
(each audited), the timeline of changes and the attempt's state at any moment."""

import pytest
from django.test import Client

from attempts import selectors as attempt_selectors
from attempts import services as attempt_services
from attempts.models import Attempt, AttemptEvent, PartOverride
from attempts.tests.factories import batch, launch, with_exam
from grading.models import GradeReport

pytestmark = pytest.mark.django_db

# The demo exam: q0 (q0p0 1 mark, q0p1 1 mark), q1 (q1p0 2 marks).
STRUCTURE = [
    ("cmi.score.min", "0"), ("cmi.score.max", "4"),
    ("cmi.objectives.0.id", "q0"), ("cmi.objectives.1.id", "q1"),
    ("cmi.interactions.0.id", "q0p0"), ("cmi.interactions.0.objectives.0.id", "q0"), ("cmi.interactions.0.weighting", "1"),
    ("cmi.interactions.1.id", "q0p1"), ("cmi.interactions.1.objectives.0.id", "q0"), ("cmi.interactions.1.weighting", "1"),
    ("cmi.interactions.2.id", "q1p0"), ("cmi.interactions.2.objectives.0.id", "q1"), ("cmi.interactions.2.weighting", "2"),
]
ANSWERS = [  # q0p0 right, q0p1 right, q1p0 wrong: 2 of 4
    ("cmi.interactions.0.result", "1"), ("cmi.interactions.1.result", "1"), ("cmi.interactions.2.result", "0"),
    ("cmi.objectives.0.score.raw", "2"), ("cmi.objectives.0.score.max", "2"),
    ("cmi.objectives.1.score.raw", "0"), ("cmi.objectives.1.score.max", "2"),
    ("cmi.score.raw", "2"), ("cmi.score.scaled", "0.5"),
]
END = [("cmi.completion_status", "completed"), ("cmi.exit", "normal")]


@pytest.fixture
def done(consumer):
    """A completed attempt (2 of 4), its student and the instructor."""
    teacher = launch(consumer, user_id="teacher", roles="Instructor")
    resource = with_exam(teacher.membership.resource, max_attempts=1)
    student = launch(consumer, user_id="s1")
    attempt = attempt_services.attempt_start(membership=student.membership)
    token = attempt_services.attempt_take_over(attempt=attempt)
    attempt_services.batch_store(attempt_id=attempt.pk, user_id=attempt.user_id, batch=batch(token, STRUCTURE))
    attempt_services.batch_store(attempt_id=attempt.pk, user_id=attempt.user_id, batch=batch(token, ANSWERS))
    attempt_services.batch_store(attempt_id=attempt.pk, user_id=attempt.user_id,
                                 batch=batch(token, END, terminate=True))
    attempt.refresh_from_db()
    assert attempt.ended_at is not None
    base = f"/resource/{resource.pk}/instructor/attempts/{attempt.pk}/"
    return teacher, student, attempt, base


def grade(attempt):
    return GradeReport.objects.get(membership__user=attempt.user, resource=attempt.resource).score


def test_the_page_shows_marks_timeline_and_review_link(done):
    teacher, _, attempt, base = done
    response = teacher.get(base)
    assert response.status_code == 200
    text = response.content.decode()
    assert "50\u00a0%" in text and f"/attempt/{attempt.pk}/" in text
    assert response.context["timeline"].paginator.count == len(STRUCTURE) + len(ANSWERS) + len(END)
    parts = {p.id: p.raw for q in response.context["score"].questions for p in q.parts}
    assert parts == {"q0p0": 1.0, "q0p1": 1.0, "q1p0": 0.0}


def test_remarking_a_part_changes_the_grade_and_is_audited(done):
    teacher, _, attempt, base = done
    assert grade(attempt) == 0.5
    response = teacher.post(base + "remark/", {"part": "q1p0", "score": "1.5", "reason": "method marks"})
    assert response.status_code == 302
    assert grade(attempt) == pytest.approx(3.5 / 4)
    event = AttemptEvent.objects.get(attempt=attempt)
    assert (event.kind, event.reason, event.detail["part"], event.detail["after"], event.by) == (
        "remarked", "method marks", "q1p0", 1.5, teacher.membership.user)
    page = teacher.get(base).content.decode()
    assert "re-marked" in page and "87.5\u00a0%" in page
    # An empty mark goes back to the exam's, once confirmed.
    teacher.post(base + "remark/", {"part": "q1p0", "score": "", "confirmed": "on"})
    assert grade(attempt) == 0.5 and not PartOverride.objects.exists()
    assert AttemptEvent.objects.filter(attempt=attempt).count() == 2


@pytest.mark.parametrize("data, message", [
    ({"part": "q9p9", "score": "1"}, "no part or gap q9p9"),
    ({"part": "q1p0", "score": "3"}, "between 0 and 2"),
    ({"part": "q1p0", "score": "-1"}, "greater than or equal to 0"),
    ({"part": "q1p0", "score": "lots"}, "Give the new mark as a number"),
    ({"part": "'; DROP TABLE x", "score": "1"}, "Choose a part"),
    ({"part": "q1p0", "score": "1", "reason": "x" * 501}, "at most 500"),
])
def test_a_bad_remark_is_refused_with_a_message_and_changes_nothing(done, data, message):
    teacher, _, attempt, base = done
    response = teacher.post(base + "remark/", data)
    assert response.status_code == 400
    assert message in response.content.decode()
    assert not PartOverride.objects.exists() and not AttemptEvent.objects.exists()
    assert grade(attempt) == 0.5


def test_deleting_an_attempt_stops_it_counting_and_restoring_brings_it_back(done):
    teacher, student, attempt, base = done
    assert not attempt_selectors.attempt_options(membership=student.membership).can_start  # 1 of 1 used

    assert teacher.post(base + "delete/", {"reason": "started by mistake", "confirmed": "on"}).status_code == 302
    attempt.refresh_from_db()
    assert attempt.deleted_at is not None and attempt.writer_token == ""
    assert not Attempt.objects.filter(pk=attempt.pk).exists()  # the default manager hides it
    assert grade(attempt) is None
    assert attempt_selectors.attempt_options(membership=student.membership).can_start
    assert student.get(f"/attempt/{attempt.pk}/").status_code == 403  # gone for the student
    assert teacher.post(base + "delete/").status_code == 400  # already deleted: said so
    assert "Deleted" in teacher.get(base).content.decode()

    assert teacher.post(base + "restore/", {"reason": "oops"}).status_code == 302
    assert grade(attempt) == 0.5
    assert [e.kind for e in AttemptEvent.objects.filter(attempt=attempt)] == ["deleted", "restored"]


def test_a_new_attempt_after_a_deletion_gets_the_next_number(done):
    teacher, student, attempt, base = done
    teacher.post(base + "delete/", {"confirmed": "on"})
    again = attempt_services.attempt_start(membership=student.membership)
    assert again.number == 2


def test_reopening_lets_the_student_resume(done):
    teacher, student, attempt, base = done
    assert teacher.post(base + "reopen/", {"reason": "power cut"}).status_code == 302
    attempt.refresh_from_db()
    assert attempt.ended_at is None and attempt.completion_status == "incomplete"
    state = student.get(f"/attempt/{attempt.pk}/state/").json()
    assert state["mode"] == "normal" and state["entry"] == "resume"
    assert state["values"]["cmi.completion_status"] == "incomplete"
    assert state["next_sequence"] > max(int(c.sequence) for c in attempt.changes.all()) - 1
    # the student's page opens it for writing again
    assert student.get(f"/attempt/{attempt.pk}/").status_code == 200
    assert teacher.post(base + "reopen/").status_code == 400  # open already


def test_the_state_as_at_a_change_or_a_time(done):
    teacher, _, attempt, base = done
    first_answer = attempt.changes.get(key="cmi.score.raw").sequence
    before = teacher.get(base, {"seq": str(first_answer - 1)}).context["as_at"]
    after = teacher.get(base, {"seq": str(first_answer)}).context["as_at"]
    assert "cmi.score.raw" not in before and after["cmi.score.raw"] == "2"
    assert after["cmi.score.max"] == "4"
    assert teacher.get(base, {"at": "2000-01-01T00:00"}).context["as_at"] == {}
    assert teacher.get(base, {"at": "2999-01-01T00:00"}).context["as_at"]["cmi.completion_status"] == "completed"
    bad = teacher.get(base, {"at": "yesterday"})
    assert bad.status_code == 400 and "Give a date and time" in bad.content.decode()
    assert teacher.get(base, {"seq": "9" * 40}).status_code == 200
    assert teacher.get(base, {"page": "x", "key": "cmi.score."}).context["timeline"].paginator.count == 4


def test_attempts_of_other_resources_are_not_found(done, consumer):
    teacher, _, attempt, base = done
    other = launch(consumer, user_id="t2", roles="Instructor", resource_link_id="res-2")
    url = f"/resource/{other.membership.resource_id}/instructor/attempts/{attempt.pk}/"
    assert other.get(url).status_code == 404
    assert other.post(url + "delete/").status_code == 404
    assert teacher.get(f"/resource/{attempt.resource_id}/instructor/attempts/{2**63}/").status_code == 404
    attempt.refresh_from_db()
    assert attempt.deleted_at is None


@pytest.mark.parametrize("who", ["anonymous", "student"])
def test_attempt_pages_are_refused_to_others(done, who):
    _, student, attempt, base = done
    client = Client() if who == "anonymous" else student
    expected = 401 if who == "anonymous" else 403
    assert client.get(base).status_code == expected
    for action in ("remark/", "delete/", "restore/", "reopen/"):
        assert client.post(base + action, {"part": "q1p0", "score": "2"}).status_code == expected
    attempt.refresh_from_db()
    assert attempt.deleted_at is None and not PartOverride.objects.exists() and not AttemptEvent.objects.exists()
