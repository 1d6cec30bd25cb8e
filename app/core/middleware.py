from django.conf import settings

# The first path segment of the pages an LMS embeds: the launch (and its error page), the
# "continue in a new window" hand-off, the activity's student and instructor pages and the attempt
# page. The exam files inside it come from the exam-content origin, with its own policy (content/).
LMS_EMBEDDED = frozenset({"lti", "resource", "attempt"})
# Under lti13/, the pages an LMS embeds: the OIDC login (platform storage), the launch (its error,
# platform storage and new window pages, the deep linking picker) and the picker's answer, and
# dynamic registration (the pages that act for a signed-in administrator set frame-ancestors
# 'none' themselves). Not the operator's platform setup page.
LMS_EMBEDDED_LTI13 = frozenset({"login", "launch", "deep-linking", "register"})


def lms_embeds(path: str) -> bool:
    segments = path.split("/", 3)
    return segments[1] in LMS_EMBEDDED or (segments[1] == "lti13" and len(segments) > 2
                                            and segments[2] in LMS_EMBEDDED_LTI13)


def _frame_ancestors(policy: str | None, sources: str) -> str:
    """A Content-Security-Policy with its frame-ancestors directive (if any) replaced."""
    kept = [d.strip() for d in (policy or "").split(";") if d.strip() and d.split()[0].lower() != "frame-ancestors"]
    return "; ".join([*kept, f"frame-ancestors {sources}"])


class FrameAncestorsMiddleware:
    """Who may put our pages in a frame.

    Pages an LMS embeds may be framed by the LMS sites (CSP frame-ancestors FRAME_ANCESTORS;
    no blanket X-Frame-Options, which cannot name other sites). Responses that already carry a
    CSP or an X-Frame-Options of their own are left alone there.

    Every other response — the admin and the staff dashboard (their login page, redirects and
    errors included), the test-launch page, the home page — may be framed by nobody:
    frame-ancestors 'none', and X-Frame-Options: DENY for browsers without CSP. Otherwise any
    site (FRAME_ANCESTORS allows every https: site by default) could frame the admin under a
    signed-in operator and trick their clicks (clickjacking). The one exception is a view that
    chose Django's `xframe_options_sameorigin`: it may be framed by this site only (frame-ancestors
    'self') — the test-launch page's demo LMS, whose authorization endpoint answers inside the frame
    in which that page shows the tool.

    First in MIDDLEWARE, so that responses made by other middleware (CSRF refusals, slash
    redirects, the login lockout page) pass through it too.
    """

    def __init__(self, get_response):
        self.get_response = get_response
        self.header = f"frame-ancestors {settings.FRAME_ANCESTORS}"

    def __call__(self, request):
        response = self.get_response(request)
        if lms_embeds(request.path_info):
            if "Content-Security-Policy" not in response and not response.get("X-Frame-Options"):
                response["Content-Security-Policy"] = self.header
        else:
            own_site = response.get("X-Frame-Options") == "SAMEORIGIN"
            response["Content-Security-Policy"] = _frame_ancestors(response.get("Content-Security-Policy"),
                                                                   "'self'" if own_site else "'none'")
            response["X-Frame-Options"] = "SAMEORIGIN" if own_site else "DENY"
        return response


class BrandedMethodNotAllowedMiddleware:
    """A 405 from a view that takes only some methods (require_POST and the like: an empty body)
    becomes the site's 405 page, for a person who opened or reloaded a form's address; the Allow
    header stays. Answers to scripts (JSON, XMLHttpRequest) are left as they are."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if response.status_code != 405 or response.content or request.method == "HEAD":
            return response
        if request.headers.get("X-Requested-With") == "XMLHttpRequest" or \
                "application/json" in request.headers.get("Accept", ""):
            return response
        from core.views import method_not_allowed

        branded = method_not_allowed(request)
        if response.has_header("Allow"):
            branded["Allow"] = response["Allow"]
        return branded
