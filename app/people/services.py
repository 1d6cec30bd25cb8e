from people import selectors, zones
from people.models import Preferences


class InvalidZone(ValueError):
    pass


def _check(zone: str) -> str:
    if not zones.is_valid(zone):
        raise InvalidZone(zone)
    return zone


def browser_zone_remember(*, session, zone: str) -> bool:
    """Keeps the zone the browser reported for this session; True when the zone in use changed."""
    _check(zone)
    before = selectors.viewer_zone(session=session).name
    session[zones.SESSION_BROWSER] = zone
    return selectors.viewer_zone(session=session).name != before


def time_zone_choose(*, user, session, zone: str) -> None:
    """The person's own zone ("" for "my browser's"), kept for them and applied to this session."""
    if zone:
        _check(zone)
    Preferences.objects.update_or_create(user=user, defaults={"time_zone": zone})
    if zone:
        session[zones.SESSION_PERSON] = zone
    else:
        session.pop(zones.SESSION_PERSON, None)


def preferences_load_on_login(sender, request, user, **kwargs):
    """At sign-in (an LTI launch, the admin), the person's own zone is copied into the session, so
    that later requests need no query for it."""
    session = getattr(request, "session", None)
    if session is None:
        return
    zone = selectors.preferred_time_zone(user=user)
    if zone and zones.is_valid(zone):
        session[zones.SESSION_PERSON] = zone
    else:
        session.pop(zones.SESSION_PERSON, None)
