"""Where a request came from, as the browser tells it (Fetch Metadata, then Referer).

Production cookies are `SameSite=None` (the LMS frames us), so a browser sends them with
requests that any other site starts: an `<img src>`, a link, a frame. Pages whose mere opening
would change something ask first unless the browser says the navigation started on our own
origin. "same-site" is not enough: the exam-content origin is usually a sibling host name of
ours, and uploaded exams run there.
"""

from urllib.parse import urlsplit


def is_same_origin_navigation(request) -> bool:
    """True when the browser says this request was started by a page of our own origin, or by
    the person (address bar, bookmark, reload: `Sec-Fetch-Site: none`). Browsers without Fetch
    Metadata are judged by their Referer, which ours send for same-origin requests only."""
    site = request.headers.get("Sec-Fetch-Site")
    if site is not None:
        return site in ("same-origin", "none")
    referer = request.headers.get("Referer", "")
    if not referer:
        return False
    parts = urlsplit(referer)
    return f"{parts.scheme}://{parts.netloc}" == f"{request.scheme}://{request.get_host()}"
