"""Time zone names: which are valid, and the session keys where a viewer's zones are kept."""

import functools
import zoneinfo

SESSION_BROWSER = "people.browser_zone"  # what the viewer's browser reported (Intl API)
SESSION_PERSON = "people.person_zone"  # the person's own choice, copied from Preferences at login
MAX_LENGTH = 64


@functools.cache
def available() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


@functools.cache
def choices() -> list[str]:
    """Region/City names, sorted; without the legacy aliases ("EST5EDT", "US/Eastern", "Etc/GMT+5")."""
    return sorted(name for name in available()
                  if "/" in name and not name.startswith(("Etc/", "SystemV/", "US/", "posix/", "right/")))


def is_valid(name) -> bool:
    if not isinstance(name, str) or not name or len(name) > MAX_LENGTH:
        return False
    if name == "UTC" or name in available():
        return True
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return False
    return True
