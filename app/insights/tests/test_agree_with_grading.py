"""Statistics show attempts' scores as every other page does (grading.selectors.attempt_scores):
out of the exam's whole total when an attempt reported less, with instructors' marks and
discounts applied — whether the database or grading computes them."""

import re
import statistics

import pytest
from django.utils import timezone

from attempts.models import PartOverride
from grading.models import Discount
from grading.selectors import attempt_scores
from insights import selectors
from insights.tests.conftest import day, make_attempt, make_resource, make_user

pytestmark = pytest.mark.django_db

# Two questions of one 2-mark part each: the exam is out of 4.
STRUCTURE = [{"name": "Adding", "marks": 2, "parts": [{"marks": 2}]},
             {"name": "Halving", "marks": 2, "parts": [{"marks": 2}]}]


def part(index, pid, result, weighting=2):
    return [(f"cmi.interactions.{index}.id", pid), (f"cmi.interactions.{index}.result", str(result)),
            (f"cmi.interactions.{index}.weighting", str(weighting)),
            (f"cmi.interactions.{index}.objectives.0.id", pid.partition("p")[0])]


@pytest.fixture
def course(consumer):
    """a_short  completed, ended: reported 2 / 2 (only q0 answered)   → 2 / 4
    a_marked completed, ended: 1 / 4, an instructor gave q0p0 2   → 2 / 4
    a_full   completed, ended: 4 / 4                               → 4 / 4
    a_open   completed by the exam, not ended: 1 / 2 (q0 only)    → 1 / 4
    a_going  in progress: 2 / 2 (q0 only)                          → 2 / 4"""
    resource, exam = make_resource(consumer, "agree", STRUCTURE)
    users = [make_user(f"s{i}", resource) for i in range(5)]
    short = make_attempt(resource, exam, users[0], scaled=1.0, raw=2, max_=2, ended=day(1),
                         objectives=[("q0", 2, 2)], extra=part(0, "q0p0", 2))
    marked = make_attempt(resource, exam, users[1], scaled=0.25, raw=1, max_=4, ended=day(2),
                          objectives=[("q0", 1, 2), ("q1", 0, 2)], extra=part(0, "q0p0", 1) + part(1, "q1p0", 0))
    PartOverride.objects.create(attempt=marked, part_id="q0p0", score=2, at=timezone.now())
    from grading.services import question_scores_record
    question_scores_record(attempt_id=marked.pk)  # as part_remark does
    full = make_attempt(resource, exam, users[2], scaled=1.0, raw=4, max_=4, ended=day(3),
                        objectives=[("q0", 2, 2), ("q1", 2, 2)], extra=part(0, "q0p0", 2) + part(1, "q1p0", 2))
    open_ = make_attempt(resource, exam, users[3], scaled=0.5, raw=1, max_=2, objectives=[("q0", 1, 2)],
                         extra=part(0, "q0p0", 1))
    going = make_attempt(resource, exam, users[4], status="incomplete", scaled=1.0, raw=2, max_=2,
                         objectives=[("q0", 2, 2)], extra=part(0, "q0p0", 2))
    return {"resource": resource, "attempts": [short, marked, full, open_, going]}


def figures(scaled: list[float]):
    histogram = [0] * 10
    for s in scaled:
        histogram[min(int(s * 10 + 1e-9), 9)] += 1
    return statistics.mean(scaled), statistics.median(scaled), histogram


def graded(attempts, *, discounts=None):
    scores = attempt_scores(attempt_ids=[a.pk for a in attempts], discounts=discounts)
    return [scores[a.pk].scaled for a in attempts]


def test_completed_attempts_count_out_of_the_whole_exam_with_remarks(course):
    resource, (short, marked, full, open_) = course["resource"], course["attempts"][:4]
    expected = graded([short, marked, full, open_])
    assert expected == [0.5, 0.5, 1.0, 0.25]  # what the attempt pages show
    headline, histogram = selectors.statistics_scores(resource_id=resource.pk)
    mean, median, bins = figures(expected)
    assert (headline.scored, headline.unscored) == (4, 0)
    assert headline.mean == pytest.approx(mean) and headline.median == pytest.approx(median)
    assert histogram == bins == selectors.score_histogram(resource_id=resource.pk)
    assert selectors.statistics_headline(resource_id=resource.pk).mean == pytest.approx(mean)


def test_all_attempts_too(course):
    resource, attempts = course["resource"], course["attempts"]
    headline = selectors.statistics_headline(resource_id=resource.pk, all_attempts=True)
    histogram = selectors.score_histogram(resource_id=resource.pk, all_attempts=True)
    mean, median, bins = figures(graded(attempts))
    assert headline.scored == 5
    assert (headline.mean, headline.median) == (pytest.approx(mean), pytest.approx(median))
    assert histogram == bins


@pytest.mark.parametrize("discounts, expected", [
    ({"q1": "remove"}, [1.0, 1.0, 1.0, 0.5]),
    ({"q0": "full_marks"}, [0.5, 0.5, 1.0, 0.5]),
    ({"q0": "full_marks", "q1": "remove"}, [1.0, 1.0, 1.0, 1.0]),
    ({"q1p0": "remove"}, [1.0, 1.0, 1.0, 0.5]),  # a part's discount
    ({"q5": "remove"}, [0.5, 0.5, 1.0, 0.25]),  # a question none of them has
])
def test_discounts_apply(course, discounts, expected):
    resource, (short, marked, full, open_) = course["resource"], course["attempts"][:4]
    for target, behaviour in discounts.items():
        Discount.objects.create(resource=resource, target=target, behaviour=behaviour)
    assert graded([short, marked, full, open_], discounts=discounts) == expected
    headline = selectors.statistics_headline(resource_id=resource.pk)
    histogram = selectors.score_histogram(resource_id=resource.pk)
    mean, median, bins = figures(expected)
    assert (headline.mean, headline.median, histogram) == (pytest.approx(mean), pytest.approx(median), bins)
    everything = graded(course["attempts"], discounts=discounts)
    headline = selectors.statistics_headline(resource_id=resource.pk, all_attempts=True)
    assert (headline.mean, headline.median) == (pytest.approx(statistics.mean(everything)),
                                                pytest.approx(statistics.median(everything)))


def test_questions_of_attempts_not_ended_count_out_of_their_marks(course):
    resource = course["resource"]
    averages = {q.id: (q.attempts, q.raw, q.max) for q in selectors.question_averages(resource_id=resource.pk)}
    # q0: 2/2 + 2/2 (re-marked) + 2/2 + 1/2 (not ended); q1: 0/2 (not answered) + 0/2 + 2/2 + 0/2 (not reached)
    assert averages == {"q0": (4, 7.0, 8.0), "q1": (4, 2.0, 8.0)}
    with_going = {q.id: (q.attempts, q.raw, q.max)
                  for q in selectors.question_averages(resource_id=resource.pk, all_attempts=True)}
    assert with_going == {"q0": (5, 9.0, 10.0), "q1": (5, 2.0, 10.0)}


def test_the_statistics_page_shows_the_same_figures(course, client):
    from django.contrib.auth import get_user_model
    from lms.models import ResourceMembership

    resource = course["resource"]
    teacher = get_user_model().objects.create(username="teacher")
    ResourceMembership.objects.create(user=teacher, resource=resource, role="instructor", last_launched_at=timezone.now())
    client.force_login(teacher)
    html = client.get(f"/resource/{resource.pk}/instructor/statistics/").content.decode()
    # the median of 25, 50, 50 and 100 %, not of what the attempts reported (25, 50, 100, 100 %)
    assert re.search(r"Median score</dt><dd[^>]*>50.0%", html), html[html.find("Median"):][:200]
