import zoneinfo

from django.utils import timezone

from people import selectors


class ViewerTimeZoneMiddleware:
    """Activates the viewer's time zone for the request (people.selectors.viewer_zone): forms read
    and show times in it, and `|when` names it. Reads the session only: no query of its own."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        zone = selectors.viewer_zone(session=getattr(request, "session", None))
        request.viewer_zone = zone
        try:
            timezone.activate(zoneinfo.ZoneInfo(zone.name))
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            timezone.deactivate()
        try:
            return self.get_response(request)
        finally:
            timezone.deactivate()
