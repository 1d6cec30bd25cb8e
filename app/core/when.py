"""Times and durations as people read them: in the viewer's time zone (activated per request by
people.middleware.ViewerTimeZoneMiddleware), in the one date-time format of the page's language
(numbas_lti/formats), with the zone named ("3 Dec 2026, 14:00 CET").

Files for machines (CSV, JSON) keep ISO 8601 in UTC instead: see `iso_utc`.
"""

from datetime import date, datetime, timezone as dt_timezone

from django.utils import timezone
from django.utils.formats import date_format
from django.utils.translation import gettext, ngettext

PRECISIONS = ("minutes", "seconds", "date", "time")


def zone_key(moment: datetime) -> str:
    """The IANA name of the zone a local time is in ("Europe/Berlin"), or "UTC"."""
    tz = moment.tzinfo
    return getattr(tz, "key", None) or getattr(tz, "zone", None) or moment.tzname() or "UTC"


def zone_label(moment: datetime) -> str:
    """The zone's short name at that moment ("CET" in winter, "CEST" in summer, "UTC"); zones
    whose abbreviation is only an offset ("+04") are named by their IANA name instead."""
    abbreviation = moment.tzname() or ""
    return abbreviation if abbreviation.isalpha() else zone_key(moment)


def local(moment: datetime) -> datetime:
    return timezone.localtime(moment) if timezone.is_aware(moment) else moment


def when_text(moment, precision: str = "minutes") -> str:
    """The moment as text in the viewer's zone and language: "3 Dec 2026, 14:00 CET"."""
    if moment is None or moment == "":
        return ""
    if not isinstance(moment, datetime):
        return date_format(moment, "DATE_FORMAT") if isinstance(moment, date) else str(moment)
    moment = local(moment)
    if precision == "date":
        return date_format(moment, "DATE_FORMAT")
    if precision == "time":
        return f"{date_format(moment, 'TIME_FORMAT')} {zone_label(moment)}"
    text = date_format(moment, "DATETIME_FORMAT")
    if precision == "seconds" and "H:i" in _datetime_format():
        text = date_format(moment, _datetime_format().replace("H:i", "H:i:s", 1))
    return f"{text} {zone_label(moment)}"


def _datetime_format() -> str:
    from django.utils.formats import get_format

    return get_format("DATETIME_FORMAT")


def when_parts(moment: datetime) -> dict[str, str]:
    """{"date": "3 Dec 2026", "time": "14:00 CET"} for sentences such as "opens on … at …"."""
    return {"date": when_text(moment, "date"), "time": when_text(moment, "time")}


def iso_utc(moment: datetime | None) -> str:
    """ISO 8601 in UTC ("2026-12-03T13:00:00+00:00"), for files that machines read."""
    return moment.astimezone(dt_timezone.utc).isoformat(timespec="seconds") if moment else ""


def duration_text(seconds) -> str:
    """A length of time in words: "45 seconds", "30 minutes", "1 hour 30 minutes", "2 hours"."""
    try:
        seconds = max(0, round(float(seconds)))
    except (TypeError, ValueError):
        return ""
    if seconds < 60:
        return ngettext("%(count)d second", "%(count)d seconds", seconds) % {"count": seconds}
    minutes = round(seconds / 60)
    hours, minutes = divmod(minutes, 60)
    hour_text = ngettext("%(count)d hour", "%(count)d hours", hours) % {"count": hours}
    minute_text = ngettext("%(count)d minute", "%(count)d minutes", minutes) % {"count": minutes}
    if not hours:
        return minute_text
    if not minutes:
        return hour_text
    return gettext("%(hours)s %(minutes)s") % {"hours": hour_text, "minutes": minute_text}
