"""Where a launched user lands."""

from urllib.parse import urlencode

from django.urls import reverse

from lms.models import ResourceMembership

HANDOFF_PARAM = "launch"


def resource_page_url(membership: ResourceMembership, *, handoff_token: str | None = None) -> str:
    """Instructors land on the resource's instructor page, everyone else on the student page.

    The launch's one-time hand-off token rides along so that, if the browser dropped our
    session cookie in the LMS iframe, the page can offer to continue in a new window.
    """
    name = "portal:instructor" if membership.is_instructor else "portal:student"
    url = reverse(name, kwargs={"resource_id": membership.resource_id})
    if handoff_token:
        url += "?" + urlencode({HANDOFF_PARAM: handoff_token})
    return url
