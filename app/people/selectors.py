from dataclasses import dataclass

from django.conf import settings

from people import zones
from people.models import Preferences


@dataclass(frozen=True)
class ViewerZone:
    name: str  # the zone in use for this request
    source: str  # "person" | "browser" | "site"
    browser: str  # what the browser reported ("" until it has)
    person: str  # the person's own choice ("" for none)


def viewer_zone(*, session) -> ViewerZone:
    """The viewer's zone: their own choice if they made one, else their browser's, else the site's."""
    person = session.get(zones.SESSION_PERSON, "") if session is not None else ""
    browser = session.get(zones.SESSION_BROWSER, "") if session is not None else ""
    person = person if zones.is_valid(person) else ""
    browser = browser if zones.is_valid(browser) else ""
    if person:
        return ViewerZone(person, "person", browser, person)
    if browser:
        return ViewerZone(browser, "browser", browser, person)
    return ViewerZone(settings.TIME_ZONE, "site", browser, person)


def preferred_time_zone(*, user) -> str:
    return Preferences.objects.filter(user=user).values_list("time_zone", flat=True).first() or ""
