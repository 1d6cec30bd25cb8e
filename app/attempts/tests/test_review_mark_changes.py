"""The review page says plainly when marks changed after the exam gave them (the exam's own
review shows the marks stored in its SCORM data): each re-marked part or gap, old → new,
discounts, and the total."""

import re

import pytest

from attempts.models import ResourceSettings
from dashboard.tests.test_attempt_page import done  # noqa: F401  (fixture: a completed attempt, 2 of 4)
from grading import services
from grading.models import Discount

pytestmark = pytest.mark.django_db


def review(client, attempt):
    response = client.get(f"/attempt/{attempt.pk}/")
    assert response.status_code == 200
    return response.content.decode()


def rows(html):
    return [re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", row)).strip()
            for row in re.findall(r'<tr data-testid="mark-change(?:-total)?">(.*?)</tr>', html, re.S)]


def test_no_note_while_the_exams_marks_stand(done):  # noqa: F811
    _, student, attempt, _ = done
    assert 'data-testid="mark-changes"' not in review(student, attempt)


def test_a_remark_is_listed_with_old_and_new_marks_and_total(done):  # noqa: F811
    teacher, student, attempt, _ = done
    services.part_remark(attempt=attempt, part_id="q1p0", score=1.5, by=teacher.membership.user)
    html = review(student, attempt)
    assert "Marks changed after the exam marked this attempt" in html
    assert rows(html) == ["Question 2, part a 0 / 2 1.5 / 2 (re-marked by an instructor)", "Total 2 / 4 3.5 / 4"]
    assert rows(review(teacher, attempt)) == rows(html)  # the instructor's review says the same


def test_another_part_remarked_and_a_discount(done):  # noqa: F811
    teacher, student, attempt, _ = done
    services.part_remark(attempt=attempt, part_id="q0p1", score=0, by=None)
    Discount.objects.create(resource=attempt.resource, target="q1", behaviour="remove")
    assert rows(review(student, attempt)) == [
        "Question 1, part b 1 / 1 0 / 1 (re-marked by an instructor)",
        "Question 2 Removed from the total",
        "Total 2 / 4 1 / 2",
    ]


def test_without_numbers_when_the_student_may_not_see_marks(done):  # noqa: F811
    teacher, student, attempt, _ = done
    services.part_remark(attempt=attempt, part_id="q1p0", score=2, by=None)
    ResourceSettings.objects.filter(resource=attempt.resource).update(show_score="never")
    html = review(student, attempt)
    assert 'data-testid="mark-changes"' in html and "Question 2, part a" in html
    assert "/ 4" not in html and 'data-testid="mark-change-total"' not in html
    assert "4 / 4" in review(teacher, attempt)


def test_labels_name_questions_parts_and_gaps():
    from grading.selectors import item_label

    assert [item_label(i) for i in ("q0", "q2p1", "q0p0g2", "odd")] == [
        "Question 1", "Question 3, part b", "Question 1, part a, gap 3", "odd"]
