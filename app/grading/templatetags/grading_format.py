"""Filters for grade pages: a grade (0..1) as a percentage, and whether a student's launch lets
their grade reach the LMS's gradebook."""

from django import template
from django.template.defaultfilters import floatformat

from grading import selectors

register = template.Library()


@register.filter
def grade_percent(value) -> str:
    """0.125 -> "12.5 %" (at most one decimal, in the page's language's number format, a
    non-breaking space before the sign); "" for no grade."""
    try:
        number = float(value) * 100
    except (TypeError, ValueError):
        return ""
    return f"{floatformat(number, '-1')}\u00a0%"


@register.filter
def sends_grades(membership) -> bool:
    """Whether the student's latest launch offered a gradebook column to send their grade to."""
    return membership is not None and selectors.membership_can_report(membership)
