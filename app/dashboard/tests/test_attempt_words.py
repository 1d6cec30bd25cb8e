"""The attempt page, the review and re-marking in plain words (issue 16, problems 5 and 6):
question and part names from the exam, human statuses, a readable timeline with the raw data a
click away, "the attempt as it was" as questions and answers, whose attempt a review shows,
labelled and pre-filled re-mark forms, one number format, and confirmation before deleting."""

import io
import re
import zipfile
from html.parser import HTMLParser
from pathlib import Path

import pytest
from django.utils import translation

from attempts import services as attempt_services
from attempts.models import Attempt, AttemptEvent, PartOverride
from attempts.tests.factories import batch, launch, with_exam
from core.templatetags.marks import mark_input, marks, percent
from dashboard.names import ItemNames

pytestmark = pytest.mark.django_db

FIXTURE = Path(__file__).resolve().parents[3] / ".." / "shared" / "fixtures" / "exams" / "advanced-number-theory-numbas10.zip"

# The demo exam: "Arithmetic" (parts a and b, 1 mark each) and "Primes" (part a, 2 marks).
SETUP = [
    ("cmi.completion_status", "incomplete"), ("cmi.score.min", "0"), ("cmi.score.max", "4"),
    ("cmi.objectives.0.id", "q0"), ("cmi.objectives.0.description", "Arithmetic"),
    ("cmi.objectives.1.id", "q1"), ("cmi.objectives.1.description", "Primes"),
    ("cmi.interactions.0.id", "q0p0"), ("cmi.interactions.0.objectives.0.id", "q0"),
    ("cmi.interactions.0.weighting", "1"), ("cmi.interactions.0.result", "0"),
    ("cmi.interactions.1.id", "q0p1"), ("cmi.interactions.1.objectives.0.id", "q0"),
    ("cmi.interactions.1.weighting", "1"), ("cmi.interactions.1.result", "0"),
    ("cmi.interactions.2.id", "q1p0"), ("cmi.interactions.2.objectives.0.id", "q1"),
    ("cmi.interactions.2.weighting", "2"), ("cmi.interactions.2.result", "0"),
    ("cmi.suspend_data", '{"questions":[' + ",".join(['{"answered":false}'] * 60) + "]}"),
]
FIRST = [("cmi.interactions.0.learner_response", "4"), ("cmi.interactions.0.result", "1"),
         ("cmi.objectives.0.score.raw", "1"), ("cmi.score.raw", "1")]
SECOND = [("cmi.interactions.1.learner_response", "42"), ("cmi.interactions.1.result", "1"),
          ("cmi.objectives.0.score.raw", "2"), ("cmi.score.raw", "2")]
THIRD = [("cmi.interactions.2.learner_response", "12"), ("cmi.interactions.2.result", "0"),
         ("cmi.objectives.1.score.raw", "0"), ("cmi.score.scaled", "0.5")]
END = [("cmi.completion_status", "completed"), ("cmi.exit", "normal")]


@pytest.fixture
def answered(consumer):
    """A finished attempt of the demo exam by Rhea Marked: 4 (right), 42 (right), 12 (wrong)."""
    teacher = launch(consumer, user_id="teacher", roles="Instructor")
    resource = with_exam(teacher.membership.resource, max_attempts=2)
    student = launch(consumer, user_id="rhea-77", lis_person_name_full="Rhea Marked",
                     lis_person_contact_email_primary="rhea@example.edu")
    attempt = attempt_services.attempt_start(membership=student.membership)
    token = attempt_services.attempt_take_over(attempt=attempt)
    for changes in (SETUP, FIRST, SECOND, THIRD):
        attempt_services.batch_store(attempt_id=attempt.pk, user_id=attempt.user_id, batch=batch(token, changes))
    attempt_services.batch_store(attempt_id=attempt.pk, user_id=attempt.user_id,
                                 batch=batch(token, END, terminate=True))
    attempt.refresh_from_db()
    return teacher, student, attempt, f"/resource/{resource.pk}/instructor/attempts/{attempt.pk}/"


class _Text(HTMLParser):
    """The text a person reads: not tags nor attributes, nor what is inside a closed <details>
    (the raw data a click away), nor <title>/<script>/<style>."""

    def __init__(self):
        super().__init__()
        self.parts, self.labels, self.inputs, self._skip = [], {}, [], []
        self._label_for, self._label_text = None, []

    VOID = {"input", "br", "img", "meta", "link", "hr", "source", "col", "wbr"}

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if self._skip and tag in self.VOID:
            return
        if self._skip or tag in ("script", "style", "title") or (tag == "details" and "open" not in attrs):
            self._skip.append(tag)
            return
        if tag == "label":
            self._label_for, self._label_text = attrs.get("for"), []
        if tag in ("input", "select", "textarea") and attrs.get("type") not in ("hidden", "submit"):
            self.inputs.append(attrs)

    def handle_endtag(self, tag):
        if self._skip:
            if self._skip[-1] == tag:
                self._skip.pop()
            return
        if tag == "label" and self._label_for:
            self.labels[self._label_for] = " ".join("".join(self._label_text).split())
            self._label_for = None

    def handle_data(self, data):
        if not self._skip:
            self.parts.append(data)
            if self._label_for:
                self._label_text.append(data)

    @property
    def text(self):
        return re.sub(r"[ \t\r\n]+", " ", " ".join(self.parts)).strip()  # a no-break space stays


class _AllInputs(_Text):
    """Every input and label, closed <details> included (what opens with one click)."""

    def handle_starttag(self, tag, attrs):
        if tag == "details":
            return
        super().handle_starttag(tag, attrs)


def read(response):
    parser = _Text()
    parser.feed(response.content.decode())
    return parser.text


def test_numbers_have_one_format_and_percentages_keep_their_decimals():
    assert [marks(v) for v in (1, 1.0, 0.5, 0.50, 2.25, 1 / 3, 0, None)] == ["1", "1", "0.5", "0.5", "2.25", "0.33",
                                                                          "0", "—"]
    assert [mark_input(v) for v in (1.0, 0.5, 2.25, None)] == ["1", "0.5", "2.25", ""]
    assert [percent(v) for v in (0.125, 0.5, 1, 0.875, None)] == ["12.5\u00a0%", "50\u00a0%", "100\u00a0%",
                                                                  "87.5\u00a0%", "—"]
    with translation.override("de"):
        assert (marks(2.25), marks(0.5)) == ("2,25", "0,5")
        assert percent(0.125).startswith("12,5")


def test_names_of_questions_parts_and_gaps():
    names = ItemNames([{"name": "Bézout's identity", "picking": "all-ordered", "parts": []}])
    assert names.label("q0") == "Question 1: Bézout's identity"
    assert names.label("q0p0") == "Question 1: Bézout's identity, part a"
    assert names.label("q0p1g2") == "Question 1: Bézout's identity, part b, gap 3"
    assert names.label("q1p0s0") == "Question 2, part a, step 1"
    assert names.label("cmi.suspend_data") == "cmi.suspend_data"
    # Shuffled questions: the name the exam stored for the attempt wins over the package's order.
    shuffled = ItemNames([{"name": "First", "picking": "all-shuffled"}],
                         {"cmi.objectives.0.id": "q0", "cmi.objectives.0.description": "Second"})
    assert shuffled.label("q0p0") == "Question 1: Second, part a"


def test_names_from_the_real_exam_package():
    if not FIXTURE.is_file():
        pytest.skip("the shared fixtures (../shared/fixtures) are not here")
    from exams.packages import inspect_package

    data = FIXTURE.read_bytes()
    structure = inspect_package(io.BytesIO(data), size=len(data)).structure
    names = ItemNames(structure)
    assert names.label("q0p0g0") == "Question 1: Bézout, part a, gap 1"
    assert names.label("q2p0") == "Question 3: Modular Inverse, part a"
    assert zipfile.is_zipfile(io.BytesIO(data))


def test_the_attempt_page_speaks_plain_words(answered):
    teacher, _, attempt, base = answered
    response = teacher.get(base)
    assert response.status_code == 200
    text = read(response)
    assert "Question 1: Arithmetic" in text and "Question 2: Primes" in text and "part b" in text
    assert not re.search(r"\bq\d+(p\d+)?\b", text), "SCORM ids on the page"
    assert "cmi." not in text and "completed" not in text and "incomplete" not in text
    assert "Status Finished" in text
    assert "50\u00a0% (2 / 4)" in text


def test_the_timeline_has_one_line_per_meaningful_event(answered):
    teacher, _, attempt, base = answered
    teacher.post(base + "remark/", {"part": "q1p0", "score": "1.5", "reason": "method marks"})
    story = [line.text for line in teacher.get(base).context["story"].object_list]
    assert story[0] == "Exam started"
    assert "Question 1: Arithmetic, part a: answered 4 — 1/1 mark" in story
    assert "Question 1: Arithmetic, part b: answered 42 — 1/1 mark" in story
    assert "Question 2: Primes, part a: answered 12 — 0/2 marks" in story
    assert "Exam ended — 2/4 marks" in story
    assert any(line.endswith("re-marked Question 2: Primes, part a: 0 → 1.5 (method marks)") for line in story)
    assert len(story) == 6
    assert not any("cmi." in line for line in story)
    # The raw data is one click away: a closed <details> with every change.
    page = teacher.get(base).content.decode()
    assert re.search(r'<details class="raw-data" id="raw"[^>]*data-testid="raw-data">', page)
    assert "cmi.interactions.0.learner_response" in page
    assert teacher.get(base, {"key": "learner_response"}).context["timeline"].paginator.count == 3


def test_other_events_read_as_sentences(answered):
    teacher, _, attempt, base = answered
    teacher.post(base + "reopen/", {"reason": "power cut"})
    story = [line.text for line in teacher.get(base).context["story"].object_list]
    assert story[-1].endswith("reopened the attempt (power cut)")
    assert "In progress (reopened)" in read(teacher.get(base))


def test_the_attempt_as_it_was_shows_questions_and_answers(answered):
    teacher, _, attempt, base = answered
    second = attempt.changes.get(key="cmi.score.raw", value="2").sequence  # the second answer, marked
    response = teacher.get(base, {"seq": str(second)})
    answers = response.context["as_at_answers"]
    rows = {(q.label, p.label): (p.answer, p.raw, p.max) for q in answers for p in q.parts}
    assert rows == {("Question 1: Arithmetic", "part a"): ("4", 1.0, 1.0),
                    ("Question 1: Arithmetic", "part b"): ("42", 1.0, 1.0),
                    ("Question 2: Primes", "part a"): ("", 0.0, 2.0)}
    text = read(response)
    assert "part b 42 1 of 1" in text and "part a not answered 0 of 2" in text
    assert "cmi." not in text  # the raw keys stay in a closed <details>


def test_every_remark_input_is_labelled_and_prefilled(answered):
    teacher, _, attempt, base = answered
    PartOverride.objects.create(attempt=attempt, part_id="q1p0", score=0.5, by=teacher.membership.user,
                                at=attempt.started_at)
    parser = _AllInputs()
    parser.feed(teacher.get(base).content.decode())
    for attrs in parser.inputs:
        assert attrs.get("id") in parser.labels and parser.labels[attrs["id"]], f"unlabelled input {attrs}"
    by_id = {a["id"]: a for a in parser.inputs}
    assert by_id["mark-q0p0"]["value"] == "1" and by_id["mark-q1p0"]["value"] == "0.5"
    assert parser.labels["mark-q1p0"] == "New mark for Question 2: Primes, part a (out of 2)"
    reasons = {label for key, label in parser.labels.items() if key.startswith(("reason-", "delete-", "reopen-"))}
    assert "Reason" not in reasons and len({parser.labels["reason-q1p0"], parser.labels["delete-reason"],
                                           parser.labels["reopen-reason"]}) == 3


def test_deleting_asks_first(answered):
    teacher, _, attempt, base = answered
    asked = teacher.post(base + "delete/", {"reason": "started by mistake"})
    assert asked.status_code == 200 and "Delete this attempt?" in read(asked)
    attempt.refresh_from_db()
    assert attempt.deleted_at is None and not AttemptEvent.objects.exists()
    page = asked.content.decode()
    assert 'name="confirmed"' in page and 'value="started by mistake"' in page
    assert teacher.post(base + "delete/", {"reason": "started by mistake", "confirmed": "on"}).status_code == 302
    assert not Attempt.objects.filter(pk=attempt.pk).exists()


def test_removing_a_remark_asks_first(answered):
    teacher, _, attempt, base = answered
    teacher.post(base + "remark/", {"part": "q1p0", "score": "2"})
    asked = teacher.post(base + "remark/", {"part": "q1p0", "score": ""})
    assert asked.status_code == 200 and "Question 2: Primes, part a" in read(asked)
    assert PartOverride.objects.filter(attempt=attempt).exists()
    teacher.post(base + "remark/", {"part": "q1p0", "score": "", "confirmed": "on"})
    assert not PartOverride.objects.filter(attempt=attempt).exists()


def test_the_review_says_whose_attempt_it_is(answered):
    teacher, student, attempt, _ = answered
    review = read(teacher.get(f"/attempt/{attempt.pk}/"))
    assert "Reviewing attempt 1 by Rhea Marked (E-mail address: rhea@example.edu)" in review
    assert "Reviewing attempt" not in read(student.get(f"/attempt/{attempt.pk}/"))


def test_the_students_own_page_lists_attempts_with_human_statuses(answered):
    teacher, student, attempt, base = answered
    person = f"/resource/{attempt.resource_id}/instructor/students/{student.membership.pk}/"
    text = read(teacher.get(person))
    assert "Finished" in text and "completed" not in text
