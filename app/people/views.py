from django.http import JsonResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST

from people import selectors, services, zones
from people.forms import TimeZoneForm


def _safe_next(request, candidate: str) -> str:
    if candidate and url_has_allowed_host_and_scheme(candidate, allowed_hosts={request.get_host()},
                                                     require_https=request.is_secure()):
        return candidate
    return ""


def _not_signed_in(request):
    return render(request, "portal/not_allowed.html", {"needs_instructor": False, "status": 401}, status=401)


@never_cache
@require_http_methods(["GET", "POST"])
def preferences(request):
    """A person's own preferences: the time zone in which pages show and read times."""
    if not request.user.is_authenticated:
        return _not_signed_in(request)
    next_url = _safe_next(request, request.POST.get("next") or request.GET.get("next", ""))
    if request.method == "POST":
        form = TimeZoneForm(request.POST)
        if form.is_valid():
            services.time_zone_choose(user=request.user, session=request.session,
                                      zone=form.cleaned_data["time_zone"])
            return redirect(next_url or f"{request.path}?saved=1")
        status = 400
    else:
        form = TimeZoneForm(initial={"time_zone": request.session.get(zones.SESSION_PERSON, ""), "next": next_url})
        status = 200
    return render(request, "people/preferences.html", {
        "form": form, "next_url": next_url, "saved": request.GET.get("saved") == "1",
        "zone": selectors.viewer_zone(session=request.session), "now": timezone.now(),
    }, status=status)


@never_cache
@require_POST
def browser_zone(request):
    """The zone the viewer's browser reports (people/zone.js, once per session): kept in the session."""
    if not request.user.is_authenticated:
        return JsonResponse({"error": _("Open this from your course first: we do not know who you are yet.")},
                            status=401)
    zone = request.POST.get("zone", "")
    try:
        changed = services.browser_zone_remember(session=request.session, zone=zone)
    except services.InvalidZone:
        return JsonResponse({"error": _("“%(zone)s” is not a time zone we know. Send a name such as Europe/Berlin.")
                             % {"zone": zone[:zones.MAX_LENGTH]}}, status=400)
    return JsonResponse({"zone": selectors.viewer_zone(session=request.session).name, "changed": changed})
