"""`{% review_whose attempt %}`: on the review of someone else's attempt, whose it is — their
name, identifier and the attempt's number — with a link back to the attempt's page."""

from django import template

from dashboard import selectors
from lms import selectors as lms_selectors

register = template.Library()


@register.inclusion_tag("dashboard/_review_whose.html")
def review_whose(attempt):
    membership_id = selectors.membership_id_of(resource_id=attempt.resource_id, user_id=attempt.user_id)
    person = selectors.student_of_resource(resource_id=attempt.resource_id, membership_id=membership_id)
    return {
        "attempt": attempt, "person": person,
        "identifier_label": lms_selectors.identifier_label(
            lms_selectors.identifier_field_for(resource_id=attempt.resource_id)),
    }


@register.filter
def attempt_status(attempt) -> str:
    """An attempt's state in a list, in plain words (its page says more)."""
    from django.utils.translation import gettext

    if attempt.deleted_at:
        return gettext("Deleted")
    if attempt.ended_at is None:
        return gettext("In progress")
    if attempt.completion_status == "completed":
        return gettext("Finished")
    return gettext("Ended by the closing time or time limit")
