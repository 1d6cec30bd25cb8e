"""The statistics' figures against the known data set in conftest.world."""

import datetime

import pytest

from insights import selectors
from insights.selectors import Period, periods

pytestmark = pytest.mark.django_db


def test_histogram_counts_completed_attempts_by_tenth(world):
    assert selectors.score_histogram(resource_id=world.pk) == [1, 0, 0, 0, 0, 0, 0, 1, 0, 1]


def test_histogram_of_all_attempts_with_a_score(world):
    assert selectors.score_histogram(resource_id=world.pk, all_attempts=True) == [1, 0, 0, 1, 0, 1, 0, 1, 0, 1]


def test_headline_figures(world):
    headline = selectors.statistics_headline(resource_id=world.pk)
    assert (headline.students, headline.attempts, headline.completed) == (4, 6, 4)
    assert (headline.scored, headline.unscored) == (3, 1)
    assert headline.mean == pytest.approx((0.0 + 0.7 + 1.0) / 3)
    assert headline.median == pytest.approx(0.7)


def test_headline_over_all_attempts(world):
    headline = selectors.statistics_headline(resource_id=world.pk, all_attempts=True)
    assert (headline.scored, headline.unscored) == (5, 1)
    assert headline.mean == pytest.approx(2.6 / 5)
    assert headline.median == pytest.approx(0.55)


def test_median_of_an_even_count_is_the_mean_of_the_middle_two(world):
    from attempts.models import Attempt

    Attempt.objects.filter(resource=world, number=2, user__username="s3").update(score_scaled=0.2)
    # completed scores: 0.0, 0.2, 0.7, 1.0
    assert selectors.statistics_headline(resource_id=world.pk).median == pytest.approx(0.45)


def test_scores_out_of_range_are_clamped(world):
    from attempts.models import Attempt

    Attempt.objects.filter(resource=world, score_scaled=1.0).update(score_scaled=1.7)
    Attempt.objects.filter(resource=world, score_scaled=0.0).update(score_scaled=-0.4)
    assert selectors.score_histogram(resource_id=world.pk) == [1, 0, 0, 0, 0, 0, 0, 1, 0, 1]
    assert selectors.statistics_headline(resource_id=world.pk).mean == pytest.approx(1.7 / 3)


def test_an_empty_resource_has_no_figures(consumer):
    from insights.tests.conftest import make_resource

    resource, _ = make_resource(consumer, "empty")
    headline = selectors.statistics_headline(resource_id=resource.pk)
    assert (headline.attempts, headline.scored, headline.mean, headline.median) == (0, 0, None, None)
    assert selectors.score_histogram(resource_id=resource.pk) == [0] * 10
    assert selectors.completions_over_time(resource_id=resource.pk) == []
    assert selectors.question_averages(resource_id=resource.pk) == []


def test_completions_per_day_fill_the_days_between(world):
    assert selectors.completions_over_time(resource_id=world.pk) == [
        Period(datetime.date(2025, 3, 1), 1, 2),
        Period(datetime.date(2025, 3, 2), 1, 0),
        Period(datetime.date(2025, 3, 3), 1, 2),
        Period(datetime.date(2025, 3, 4), 1, 1),
    ]


def test_question_averages_pair_each_objective_with_its_score(world):
    rows = {q.id: q for q in selectors.question_averages(resource_id=world.pk)}
    assert [q.id for q in selectors.question_averages(resource_id=world.pk)] == ["q0", "q1", "q2"]
    assert (rows["q0"].label, rows["q0"].attempts, rows["q0"].raw, rows["q0"].max) == ("Arithmetic", 3, 4, 6)
    assert rows["q0"].percent == pytest.approx(400 / 6)
    assert (rows["q1"].label, rows["q1"].attempts, rows["q1"].raw, rows["q1"].max) == ("Question 2", 3, 4, 9)
    assert rows["q1"].percent == pytest.approx(400 / 9)
    # a score that is not a number counts as nothing scored, and does not break the query
    assert (rows["q2"].label, rows["q2"].attempts, rows["q2"].raw, rows["q2"].max, rows["q2"].percent) == (
        "Question 3", 1, 0, 4, 0)


def test_question_averages_over_all_attempts(world):
    q0 = selectors.question_averages(resource_id=world.pk, all_attempts=True)[0]
    assert (q0.attempts, q0.raw, q0.max, q0.percent) == (4, 5, 8, 62.5)


def test_periods_are_weeks_beyond_ninety_days():
    first = datetime.date(2025, 1, 1)  # a Wednesday
    result = periods({first: 1, first + datetime.timedelta(days=4): 2, first + datetime.timedelta(days=120): 3})
    assert result[0] == Period(datetime.date(2024, 12, 30), 7, 3)
    assert len(result) == 18 and all(p.days == 7 for p in result)
    assert result[-1] == Period(datetime.date(2025, 4, 28), 7, 3)
    assert sum(p.count for p in result) == 6


def test_periods_are_months_beyond_ninety_weeks():
    result = periods({datetime.date(2023, 11, 30): 4, datetime.date(2025, 12, 1): 1})
    assert result[0] == Period(datetime.date(2023, 11, 1), 30, 4)
    assert result[1] == Period(datetime.date(2023, 12, 1), 31, 0)
    assert result[-1] == Period(datetime.date(2025, 12, 1), 31, 1)
    assert len(result) == 26


def test_ninety_days_are_still_days():
    first = datetime.date(2025, 1, 1)
    result = periods({first: 1, first + datetime.timedelta(days=89): 1})
    assert len(result) == 90 and {p.days for p in result} == {1}


@pytest.mark.parametrize("junk", ["1e999", "9" * 400, "NaN", "", " 2 ", "--1"])
def test_values_that_are_not_usable_numbers_count_as_nothing(world, junk):
    from attempts.models import Element

    from grading.services import question_scores_record

    changed = Element.objects.filter(attempt__resource=world, key="cmi.objectives.2.score.raw")
    attempt_ids = list(changed.values_list("attempt_id", flat=True))
    changed.update(value=junk)
    for attempt_id in attempt_ids:  # recorded again from the values (as when an attempt ends)
        question_scores_record(attempt_id=attempt_id)
    q2 = selectors.question_averages(resource_id=world.pk)[2]
    assert (q2.id, q2.raw, q2.max) == ("q2", 2 if junk == " 2 " else 0, 4)


def test_when_attempts_disagree_about_question_order_each_objective_is_paired_in_the_database(world):
    from attempts.models import Attempt

    # a2 stores q1 at objective 0 and q0 at objective 1
    attempts = Attempt.objects.filter(resource=world, completion_status="completed")
    assert selectors._totals_by_index(attempts) is None
    assert selectors._totals_by_pairing(attempts) == {"q0": (3, 4, 6), "q1": (3, 4, 9), "q2": (1, 0, 4)}


def test_when_attempts_agree_the_totals_come_from_one_grouping_by_value(world):
    from attempts.models import Attempt

    Attempt.objects.filter(resource=world, user__username="s2").delete()
    attempts = Attempt.objects.filter(resource=world, completion_status="completed")
    expected = {"q0": (2, 2, 4), "q1": (2, 3, 6), "q2": (1, 0, 4)}
    assert selectors._totals_by_index(attempts) == expected
    assert selectors._totals_by_pairing(attempts) == expected
    assert [(q.label, q.percent) for q in selectors.question_averages(resource_id=world.pk)] == [
        ("Arithmetic", 50.0), ("Question 2", 50.0), ("Question 3", 0.0)]
