import logging
import sys
from pathlib import Path

from django.db import InterfaceError, OperationalError
from django.conf import settings
from django.http import FileResponse, HttpResponse, JsonResponse
from django.shortcuts import render
from django.template import loader
from django.utils.translation import gettext as _, gettext_lazy
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from core.health import health_check


@never_cache
@require_GET
def health(request):
    report = health_check()
    return JsonResponse(report, status=200 if report["status"] == "ok" else 503)


def home(request):
    return render(request, "core/home.html")


_UNAVAILABLE = gettext_lazy("The service cannot reach its database just now. Nothing you sent was lost: "
                            "try again in a few seconds (an open exam does this by itself).")


def server_error(request):
    """Django's handler500. While the database is down or restarting (a connection that broke,
    a server that refuses connections) the answer is 503 with Retry-After — something to wait
    for, not a bug — and a page that says so. It touches neither the database nor templates
    that might."""
    error = sys.exc_info()[1]
    if isinstance(error, (OperationalError, InterfaceError)):
        logging.getLogger("numbas_lti.availability").warning("database unavailable: %s", error)
        status, message = 503, str(_UNAVAILABLE)
    else:
        status, message = 500, _("Something went wrong on our side. It has been logged; please try again later.")
    wants_json = "application/json" in request.headers.get("Accept", "") or \
        request.content_type == "application/json"
    if wants_json:
        response = JsonResponse({"error": "unavailable" if status == 503 else "server_error", "message": message},
                                status=status)
    else:
        response = HttpResponse(_error_html(status, message), status=status, content_type="text/html; charset=utf-8")
    if status == 503:
        response["Retry-After"] = "5"
    return response


def _error_html(status: int, message: str) -> str:
    """The branded 500.html, rendered without the request (no context processor, no session, no
    database); a bare page if even that fails."""
    heading = _("Please try again")
    try:
        return loader.get_template("500.html").render(
            {"status": status, "heading": heading, "message": message, "instance_name": settings.INSTANCE_NAME})
    except Exception:  # a broken template must not hide the error page itself
        logging.getLogger(__name__).exception("500.html could not be rendered")
        return f"<!doctype html><title>{heading}</title><h1>{heading}</h1><p>{message}</p>"


FAVICON = Path(__file__).resolve().parent / "static" / "core" / "favicon.ico"


def favicon(request):
    """/favicon.ico, which browsers ask for whatever the page links to."""
    response = FileResponse(open(FAVICON, "rb"), content_type="image/x-icon")
    response["Cache-Control"] = "public, max-age=86400"
    return response


def method_not_allowed(request, allowed=()):
    """A branded page for a 405 (an address that only takes a form's POST, opened or reloaded)."""
    return render(request, "405.html", status=405)
