import pytest
from django.utils import timezone

from attempts.models import Attempt, ResourceSettings
from attempts.selectors import score_visible


@pytest.mark.parametrize(
    "rule, allow_review, ended, visible",
    [
        ("always", True, False, True),
        ("complete", True, False, False),
        ("complete", True, True, True),
        ("review", True, True, True),
        ("review", False, True, False),
        ("review", True, False, False),
        ("never", True, True, False),
    ],
)
def test_score_visible_follows_the_resource_rule(rule, allow_review, ended, visible):
    settings = ResourceSettings(show_score=rule, allow_review=allow_review)
    attempt = Attempt(ended_at=timezone.now() if ended else None)
    assert score_visible(settings=settings, attempt=attempt) is visible


@pytest.mark.parametrize(
    "show_score, allow_review, include_incomplete, visible",
    [
        ("always", True, True, True),
        ("complete", True, False, True),
        ("complete", True, True, False),  # the grade may come from an attempt in progress
        ("review", True, False, True),
        ("review", False, False, False),
        ("never", True, False, False),
    ],
)
def test_grade_visibility_follows_the_show_score_rule(show_score, allow_review, include_incomplete, visible):
    from attempts.selectors import grade_visible

    settings = ResourceSettings(show_score=show_score, allow_review=allow_review, include_incomplete=include_incomplete)
    assert grade_visible(settings=settings) is visible
