"""Filters for grade pages: a grade (0..1) as a percentage, and whether a student's launch lets
their grade reach the LMS's gradebook."""

from django import template
from core.templatetags.marks import percent

from grading import selectors

register = template.Library()


@register.filter
def grade_percent(value) -> str:
    """0.125 -> "12.5 %" in the one number format of every page (core's `percent`); "" for no grade."""
    return "" if value is None or value == "" else percent(value)


@register.filter
def sends_grades(membership) -> bool:
    """Whether the student's latest launch offered a gradebook column to send their grade to."""
    return membership is not None and selectors.membership_can_report(membership)
