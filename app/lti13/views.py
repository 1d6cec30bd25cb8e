"""LTI 1.3 endpoints: OIDC login initiation, the launch (a resource link, or deep linking and its
picker), the tool's public keys, and registering the tool with a platform (dynamic registration,
Canvas's JSON configuration)."""

from __future__ import annotations

import logging
from dataclasses import replace
from urllib.parse import urlencode

from django.contrib.admin.views.decorators import staff_member_required
from django.contrib.auth import login
from django.http import HttpResponseRedirect, JsonResponse, QueryDict
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.utils.translation import gettext
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods

from core import languages
from lms.launch import LaunchRejected
from lms.models import Consumer
from lti13 import deep_linking, keys, launch as lti13_launch, registration, selectors, services
from lti13.forms import NEW_ACTIVITY, DeepLinkingForm
from lti13.launch import DEEP_LINKING_REQUEST, LTI1P1, Lti13Launch
from lti13.models import DeepLinkingRequest, LoginState, Platform
from lti13.setup import endpoints, tool_urls
from portal.navigation import resource_page_url

logger = logging.getLogger(__name__)


def _rejected(request, error: LaunchRejected):
    logger.warning("LTI 1.3 %s refused: %s", request.resolver_match.url_name, error.code)
    response = render(request, "lms/launch_error.html", {"error": error}, status=error.status)
    if error.status == 405:
        response["Allow"] = "POST"
    return response


@csrf_exempt  # the platform's form post; checked by the state and the signed id_token
@never_cache
def oidc_login(request):
    if request.method not in ("GET", "POST"):
        return _rejected(request, LaunchRejected(status=405, code="method_not_allowed", title="GET or POST", detail=""))
    origin, paths = lti13_launch.own_launch_settings(request)
    try:
        start = lti13_launch.login_start(request, launch_url=origin + reverse("lti13:launch"), own_paths=paths)
    except LaunchRejected as error:
        return _rejected(request, error)
    storage_secret = services.login_state_create(start=start)
    if storage_secret:
        # The platform offers its storage (cookies may not survive in its iframe): keep a
        # secret for this browser there, then go on to the platform's authorization endpoint.
        response = render(request, "lti13/platform_storage.html", {"storage": {
            "action": "put", "target": start.params["lti_storage_target"],
            "origin": _origin_of(start.platform.auth_login_url),
            "key": lti13_launch.platform_storage_key(start.state), "value": storage_secret,
            "next": start.redirect_url}})
    else:
        response = HttpResponseRedirect(start.redirect_url)
    start.cookies.update_response(response)
    return response


def _origin_of(url: str) -> str:
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


@csrf_exempt  # the platform's form post of the signed id_token
@never_cache
def launch(request):
    origin, paths = lti13_launch.own_launch_settings(request)
    try:
        checked = lti13_launch.launch_check(request, own_origin=origin, own_paths=paths)
        login_state = services.login_state_check(state=checked.state, platform=checked.platform,
                                                 nonce=checked.claims.get("nonce"))
        legacy = lti13_launch.lti1p1_consumer(checked.claims)
        ask = deep_linking.request_check(checked, legacy_consumer=legacy) \
            if checked.message_type == DEEP_LINKING_REQUEST else None
    except LaunchRejected as error:
        return _rejected(request, error)
    unbound = _state_unbound(request, checked, login_state)
    if unbound is not None:
        return unbound
    languages.launch_language_activate(request, lti13_launch.claimed_locale(checked.claims))
    if ask is not None:
        return _deep_linking_start(request, checked=checked, login_state=login_state, ask=ask, legacy=legacy)
    data = checked.data
    if legacy is not None:
        claim = checked.claims.get(LTI1P1) or {}
        data = replace(data, legacy_user_id=str(claim.get("user_id") or "")[:255],
                       legacy_context_id=str(claim.get("context_id") or "")[:255],
                       legacy_resource_link_id=str(claim.get("resource_link_id") or "")[:255])
    try:
        log, token = services.launch_record(login=login_state, data=data, legacy_consumer=legacy,
                                            user_agent=request.headers.get("User-Agent", ""))
    except LaunchRejected as error:
        return _rejected(request, error)
    membership = log.membership
    login(request, membership.user, backend="django.contrib.auth.backends.ModelBackend")
    languages.launch_language_remember(request, data.locale)
    return HttpResponseRedirect(resource_page_url(membership, handoff_token=token))


def _state_unbound(request, checked: Lti13Launch, login_state: LoginState):
    """None when this browser is the one that started the login (our state cookie, or the secret
    the login left in the platform's storage); else the response that gets the secret from the
    platform's storage, refuses, or starts the login again in a new window."""
    if request.COOKIES.get(lti13_launch.state_cookie_name(checked.state)) == checked.state:
        return None
    if login_state.storage_target:
        value = request.POST.get("lti_storage_value", "")
        if not value:
            # Ask the platform's storage for the secret the login left there, then post again.
            return render(request, "lti13/platform_storage.html", {"storage": {
                "action": "get", "target": login_state.storage_target,
                "origin": _origin_of(checked.platform.auth_login_url),
                "key": lti13_launch.platform_storage_key(checked.state), "next": request.build_absolute_uri(),
                "fields": {"id_token": request.POST["id_token"], "state": checked.state}}})
        if services.storage_secret_matches(login=login_state, value=value):
            return None
        return _rejected(request, services.state_mismatch())
    # No cookie and no platform storage: this window cannot prove it started the login.
    # Start again in a new window, where the browser keeps cookies.
    try:
        services.login_state_discard(login=login_state)
    except LaunchRejected as error:
        return _rejected(request, error)
    restart = reverse("lti13:login") + "?" + urlencode({k: v for k, v in {
        "iss": checked.platform.issuer, "client_id": checked.platform.client_id,
        "login_hint": login_state.login_hint, "lti_message_hint": login_state.lti_message_hint,
        "target_link_uri": login_state.target_link_uri, "lti_deployment_id": login_state.deployment_id,
    }.items() if v})
    return render(request, "lti13/new_window.html", {"restart_url": restart}, status=200)


# --- deep linking -----------------------------------------------------------------------------------


def _deep_linking_start(request, *, checked: Lti13Launch, login_state: LoginState, ask: deep_linking.DeepLinkingAsk,
                        legacy: Consumer | None):
    """A checked deep linking request from an instructor, bound to this browser: keep it and
    show the picker."""
    try:
        request_row, token = services.deep_linking_request_record(
            login=login_state, ask=ask, deployment_id=checked.deployment_id, legacy_consumer=legacy)
    except LaunchRejected as error:
        return _rejected(request, error)
    activities = selectors.course_activities(ask=request_row)
    form = DeepLinkingForm(initial={"token": token, "activity": NEW_ACTIVITY,
                                    "title": deep_linking.default_title(request_row)}, activities=activities)
    return _picker(request, request_row, form, activities)


def _picker(request, ask: DeepLinkingRequest, form: DeepLinkingForm, activities: list, *, status: int = 200):
    return render(request, "lti13/deep_linking.html", {
        "ask": ask, "form": form, "activities": activities, "new_activity": NEW_ACTIVITY,
        "chosen": str(form["activity"].value() or NEW_ACTIVITY)}, status=status)


@csrf_exempt  # the picker's one-time token is the proof (the LMS iframe may have no cookies)
@never_cache
def deep_linking_choose(request):
    """The picker's answer: the signed LtiDeepLinkingResponse, auto-posted to the platform."""
    if request.method != "POST":
        return _rejected(request, LaunchRejected(
            status=405, code="method_not_allowed", title=gettext("This address only accepts a choice of activity"),
            detail=gettext("Add the activity from your course in the learning platform.")))
    ask = selectors.deep_linking_request_usable(token=request.POST.get("token", ""))
    if ask is None:
        return _rejected(request, services.deep_linking_token_refused())
    activities = selectors.course_activities(ask=ask)
    form = DeepLinkingForm(request.POST, activities=activities)
    if not form.is_valid():
        return _picker(request, ask, form, activities, status=400)
    try:
        resource = services.deep_linking_complete(ask=ask, resource_id=form.resource_id,
                                                  title=form.cleaned_data["title"])
    except LaunchRejected as error:
        return _rejected(request, error)
    title = form.cleaned_data["title"] or resource.title or gettext("Numbas exam")
    origin, _paths = lti13_launch.own_launch_settings(request)
    item = deep_linking.content_item(resource=resource, title=title, launch_url=origin + reverse("lti13:launch"))
    return render(request, "lti13/deep_linking_return.html", {
        "return_url": ask.return_url, "jwt": deep_linking.response_jwt(platform=ask.platform, ask=ask, item=item),
        "title": title})


@staff_member_required
@require_GET
def platform_setup(request, platform_id: int):
    """The LMS administrator's page for one registration: every URL the LMS needs."""
    platform = get_object_or_404(Platform.objects.select_related("consumer"), pk=platform_id)
    return render(request, "lti13/platform_setup.html", {
        "platform": platform, "urls": tool_urls(request=request),
        "deployments": list(platform.deployments.values_list("deployment_id", flat=True))})


@require_GET
def jwks(request):
    response = JsonResponse(keys.jwks())
    response["Cache-Control"] = "public, max-age=300"
    response["Access-Control-Allow-Origin"] = "*"
    return response


# --- registering the tool with a platform -------------------------------------------------------

REGISTRATION_PARAMS = ("openid_configuration", "registration_token")


def _registration_params(data: QueryDict) -> dict[str, str]:
    return {name: data.get(name, "").strip()[:4000] for name in REGISTRATION_PARAMS}


def _registration_refused(request, error: LaunchRejected):
    logger.warning("LTI 1.3 registration refused: %s", error.code)
    return render(request, "lti13/registration_error.html", {"error": error}, status=error.status)


def _top_level_only(response):
    """A page that acts for a signed-in administrator: never in anyone's frame (clickjacking).
    It may keep the window that opened it (our page in the platform's frame passes the
    platform its close message)."""
    response["Content-Security-Policy"] = "frame-ancestors 'none'"
    response["X-Frame-Options"] = "DENY"
    response["Cross-Origin-Opener-Policy"] = "unsafe-none"
    return response


def _register_complete(request, *, params: dict[str, str], link=None):
    try:
        done = services.platform_register(configuration_url=params["openid_configuration"],
                                          registration_token=params["registration_token"],
                                          urls=endpoints(request=request), link=link,
                                          by=request.user.get_username() if link is None else "")
    except LaunchRejected as error:
        return _registration_refused(request, error)
    return render(request, "lti13/registration_done.html", {
        "done": done, "deployments": list(done.platform.deployments.values_list("deployment_id", flat=True)),
        "missing_scopes": [s for s in done.asked_scopes if s not in done.client.scopes],
        "staff": request.user.is_active and request.user.is_staff})


@never_cache
@require_http_methods(["GET", "POST"])
def register(request):
    """Dynamic registration started by a platform (the URL an LMS administrator gives it),
    confirmed by a tool administrator signed in here: anyone else could register platforms.
    The confirmation is a POST with a CSRF token, on a page no other site may frame; opened in
    the platform's frame, the page offers a new window instead."""
    params = _registration_params(request.POST if request.method == "POST" else request.GET)
    if not params["openid_configuration"]:
        return _registration_refused(request, registration.missing_configuration())
    staff = request.user.is_active and request.user.is_staff
    if request.method == "POST":
        if not staff:
            return _registration_refused(request, registration.staff_required())
        return _top_level_only(_register_complete(request, params=params))
    here = request.get_full_path()
    if not staff or request.headers.get("Sec-Fetch-Dest") == "iframe":
        return render(request, "lti13/registration_elsewhere.html", {
            "error": None if staff else registration.staff_required(), "continue_url": here,
            "login_url": reverse("admin:login") + "?" + urlencode({"next": here})}, status=200 if staff else 403)
    return _top_level_only(render(request, "lti13/registration_confirm.html", {
        "params": params, "configuration_host": _origin_of(params["openid_configuration"]),
        "urls": tool_urls(request=request), "with_csrf": True}))


@csrf_exempt  # the one-time token in the address is what allows the POST
@never_cache
@require_http_methods(["GET", "POST"])
def register_link(request, token: str):
    """Dynamic registration through a one-time registration link from the operator
    (`manage.py lti13_registration_link`): no sign-in, so it works in the platform's frame."""
    params = _registration_params(request.POST if request.method == "POST" else request.GET)
    try:
        link = registration.link_usable(token=token)
    except LaunchRejected as error:
        return _registration_refused(request, error)
    if not params["openid_configuration"]:
        return _registration_refused(request, registration.missing_configuration())
    if request.method == "POST":
        return _register_complete(request, params=params, link=link)
    return render(request, "lti13/registration_confirm.html", {
        "params": params, "configuration_host": _origin_of(params["openid_configuration"]),
        "urls": tool_urls(request=request), "with_csrf": False})


@require_GET
def canvas_config(request):
    """Canvas's developer key configuration (LTI 1.3 key → Enter URL)."""
    response = JsonResponse(registration.canvas_configuration(urls=endpoints(request=request)),
                            json_dumps_params={"indent": 2})
    response["Cache-Control"] = "public, max-age=300"
    return response
