"""LTI 1.1 endpoints: the launch, the new-window hand-off, and the configuration cartridge."""

import logging

from django.core.exceptions import RequestDataTooBig, TooManyFieldsSent

from django.contrib.auth import login
from django.conf import settings
from django.http import HttpResponseBadRequest, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.clickjacking import xframe_options_exempt
from django.views.decorators.csrf import csrf_exempt
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_POST

from core import languages
from lms import selectors, services
from lms.launch import LaunchRejected, launch_authenticate
from portal.navigation import resource_page_url

logger = logging.getLogger(__name__)


def _rejected(request, error: LaunchRejected):
    try:
        key = request.POST.get("oauth_consumer_key", "")[:64] if request.method == "POST" else ""
    except (RequestDataTooBig, TooManyFieldsSent):
        key = ""
    logger.warning("LTI launch rejected: %s (consumer key %r)", error.code, key)
    response = render(request, "lms/launch_error.html", {"error": error}, status=error.status)
    if error.status == 405:
        response["Allow"] = "POST"
    return response


@csrf_exempt  # authenticated by its OAuth1 signature instead
@never_cache
def launch(request):
    try:
        params = request.POST.dict() if request.method == "POST" else {}
    except (RequestDataTooBig, TooManyFieldsSent):
        return _rejected(request, LaunchRejected(
            status=413, code="too_large", title=_("This launch is far larger than any LMS sends"),
            detail=_("The request carried more data or more fields than a launch can have, so it was not read."),
            admin_checks=[_("Check what the LMS adds to the launch (custom parameters).")],
        ))
    languages.launch_language_activate(request, params.get("launch_presentation_locale"))
    try:
        consumer, data = launch_authenticate(
            method=request.method,
            url=request.build_absolute_uri(request.path),
            params=params,
            headers={"Authorization": request.headers["Authorization"]} if "Authorization" in request.headers else {},
        )
        log, token = services.launch_record(
            consumer=consumer, launch=data, user_agent=request.headers.get("User-Agent", "")
        )
    except LaunchRejected as error:
        return _rejected(request, error)
    membership = log.membership
    login(request, membership.user, backend="django.contrib.auth.backends.ModelBackend")
    languages.launch_language_remember(request, data.locale)
    return HttpResponseRedirect(resource_page_url(membership, handoff_token=token))


@require_GET
@never_cache
def handoff(request, token: str):
    """Continue a launch in a new window, where the browser accepts our cookies."""
    launch = selectors.handoff_get_usable(token=token)
    if launch is None or not services.handoff_consume(launch=launch):
        return render(request, "lms/handoff_invalid.html", status=410)
    membership = launch.membership
    login(request, membership.user, backend="django.contrib.auth.backends.ModelBackend")
    languages.launch_language_remember(request, languages.launch_locale_of(membership.user))
    return HttpResponseRedirect(resource_page_url(membership))


@require_POST
def language_set(request):
    """The language switch (core/_language_switch.html): keep the person's choice, go back."""
    code = languages.language_choose(request, request.POST.get("language", ""))
    if code is None:
        return HttpResponseBadRequest(_("That language is not one this site offers."),
                                      content_type="text/plain; charset=utf-8")
    back = request.POST.get("next", "")
    if not url_has_allowed_host_and_scheme(back, allowed_hosts={request.get_host()},
                                           require_https=request.is_secure()):
        back = "/"
    response = HttpResponseRedirect(back)
    response.set_cookie(settings.LANGUAGE_COOKIE_NAME, code, max_age=settings.LANGUAGE_COOKIE_AGE,
                        path=settings.LANGUAGE_COOKIE_PATH, domain=settings.LANGUAGE_COOKIE_DOMAIN,
                        secure=settings.LANGUAGE_COOKIE_SECURE, httponly=settings.LANGUAGE_COOKIE_HTTPONLY,
                        samesite=settings.LANGUAGE_COOKIE_SAMESITE)
    return response


@require_GET
@xframe_options_exempt
def config_xml(request):
    context = {
        "launch_url": request.build_absolute_uri(reverse("lti:launch")),
        "domain": request.get_host().split(":")[0],
    }
    return render(request, "lms/config.xml", context, content_type="application/xml; charset=utf-8")
