"""`{% load when %}`: `{{ moment|when }}` → <time datetime="…">3 Dec 2026, 14:00 CET</time>, in the
viewer's zone and the page's language (core.when); `|when:"seconds"`, `|when:"date"`,
`|when:"time"` for other precisions. `{{ seconds|duration }}` → "1 hour 30 minutes"."""

from datetime import datetime

from django import template
from django.utils.html import format_html

from core import when as core_when

register = template.Library()


@register.filter
def when(moment, precision="minutes"):
    if moment is None or moment == "":
        return ""
    text = core_when.when_text(moment, precision)
    if not isinstance(moment, datetime):
        return text
    moment = core_when.local(moment)
    return format_html('<time datetime="{}" title="{}">{}</time>',
                       moment.isoformat(timespec="seconds"), core_when.zone_key(moment), text)


@register.filter
def when_text(moment, precision="minutes"):
    """The same words without markup (plain-text e-mails, attributes)."""
    return core_when.when_text(moment, precision)


@register.filter
def duration(seconds):
    return core_when.duration_text(seconds)
