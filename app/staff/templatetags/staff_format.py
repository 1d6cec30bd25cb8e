"""Short, translatable durations for the staff dashboard ("42 s", "5 min", "3 h 10 min")."""

from django import template
from django.utils.translation import gettext as _

register = template.Library()


@register.filter
def duration(seconds):
    """A number of seconds as a short duration; "—" for nothing (None or not a number)."""
    try:
        seconds = max(0, int(float(seconds)))
    except (TypeError, ValueError):
        return "—"
    if seconds < 60:
        return _("%(s)d s") % {"s": seconds}
    minutes = seconds // 60
    if minutes < 60:
        return _("%(m)d min") % {"m": minutes}
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return _("%(h)d h %(m)d min") % {"h": hours, "m": minutes}
    days, hours = divmod(hours, 24)
    return _("%(d)d d %(h)d h") % {"d": days, "h": hours}


@register.filter
def age(now, then):
    """`now|age:then`: the time from `then` to `now` as a duration ("—" when either is missing)."""
    if not now or not then:
        return "—"
    return duration((now - then).total_seconds())
