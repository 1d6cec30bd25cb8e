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
