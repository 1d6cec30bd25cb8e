from django.conf import settings


class FrameAncestorsMiddleware:
    """Let LMS pages embed ours (CSP frame-ancestors) instead of a blanket X-Frame-Options.

    Responses that already carry a CSP, or that Django marked as not framable (the admin),
    are left alone.
    """

    def __init__(self, get_response):
        self.get_response = get_response
        self.header = f"frame-ancestors {settings.FRAME_ANCESTORS}"

    def __call__(self, request):
        response = self.get_response(request)
        if "Content-Security-Policy" not in response and not response.get("X-Frame-Options"):
            response["Content-Security-Policy"] = self.header
        return response
