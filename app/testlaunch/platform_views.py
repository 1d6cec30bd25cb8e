"""The demo LMS's LTI 1.3 endpoints (see testlaunch.platform): its keys, the OIDC authorization
endpoint the tool sends the browser to, the OAuth 2 token endpoint, and the AGS and NRPS
services the tool calls. They exist only when settings.TEST_LAUNCH_ENABLED; the authorization
endpoint, which answers browsers, follows the test-launch page's own rule (DEBUG, or staff)."""

from __future__ import annotations

import json

from django.conf import settings
from django.http import Http404, HttpResponse, JsonResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.clickjacking import xframe_options_sameorigin
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from lms.models import Resource
from testlaunch import platform as demo_platform
from testlaunch import selectors, services
from testlaunch.views import _allowed, _origin


def _enabled() -> None:
    if not settings.TEST_LAUNCH_ENABLED:
        raise Http404


def _json(value, *, status: int = 200, content_type: str = "application/json", headers=None) -> HttpResponse:
    return HttpResponse(json.dumps(value), status=status, content_type=content_type, headers=headers)


def _oauth_error(status: int, error: str, description: str) -> HttpResponse:
    headers = {"Cache-Control": "no-store"}
    if status == 401:
        headers["WWW-Authenticate"] = f'Bearer error="{error}"'
    return _json({"error": error, "error_description": description}, status=status, headers=headers)


@require_GET
def platform_home(request):
    """What the demo LMS is, for people and tools: its issuer and endpoints."""
    _enabled()
    urls = services.platform_urls(base_url=_origin(request))
    return JsonResponse({"issuer": urls["issuer"], "authorization_endpoint": urls["auth"],
                         "token_endpoint": urls["token"], "jwks_uri": urls["jwks"],
                         "client_id": demo_platform.CLIENT_ID, "deployment_id": demo_platform.DEPLOYMENT_ID})


@require_GET
def platform_jwks(request):
    _enabled()
    return JsonResponse({"keys": [services.platform_key_ensure().public_jwk]})


@xframe_options_sameorigin  # it answers inside the test-launch page's frame, which shows the tool
@csrf_exempt  # the tool's authentication request, a GET or a form post from the tool's page
@never_cache
@require_http_methods(["GET", "POST"])
def platform_auth(request):
    if not _allowed(request):
        raise Http404
    params = request.GET if request.method == "GET" else request.POST
    urls = services.platform_urls(base_url=_origin(request))
    try:
        hint, nonce, state = demo_platform.auth_request_check(params, issuer=urls["issuer"],
                                                             redirect_uris=(urls["tool_launch"],))
        resource = Resource.objects.select_related("context").filter(
            pk=hint.resource_id, consumer__key=settings.DEMO_CONSUMER_KEY).first()
        if resource is None:
            raise demo_platform.AuthRequestRefused("login_required", "the activity is no longer one of the demo LMS's")
    except demo_platform.AuthRequestRefused as refused:
        return render(request, "testlaunch/platform_refused.html", {"refused": refused}, status=400)
    context = resource.context
    lineitem_url = lineitems_url = memberships_url = ""
    if context is not None:
        link_id = resource.lti13_id or resource.resource_link_id
        lineitem = services.lineitem_for_link_ensure(context=context, resource_link_id=link_id, label=resource.title)
        lineitems_url = request.build_absolute_uri(reverse("testlaunch:platform_lineitems", args=[context.pk]))
        lineitem_url = request.build_absolute_uri(reverse("testlaunch:platform_lineitem",
                                                          args=[context.pk, lineitem.pk]))
        memberships_url = request.build_absolute_uri(reverse("testlaunch:platform_memberships", args=[context.pk]))
    claims = demo_platform.id_token_claims(
        hint=hint, nonce=nonce, resource=resource, context=context,
        return_url=request.build_absolute_uri(reverse("testlaunch:launch")), lineitem_url=lineitem_url,
        lineitems_url=lineitems_url, memberships_url=memberships_url)
    key = services.platform_key_ensure()
    id_token = demo_platform.sign(claims, kid=key.kid, private_key_pem=key.private_key_pem)
    return render(request, "testlaunch/platform_form_post.html",
                  {"action": params["redirect_uri"], "fields": {"id_token": id_token, "state": state}})


@csrf_exempt  # the tool's server, authenticated by its signed client assertion
@never_cache
@require_POST
def platform_token(request):
    _enabled()
    token_url = request.build_absolute_uri(reverse("testlaunch:platform_token"))
    try:
        client_id, scopes = demo_platform.client_assertion_check(request.POST, token_url=token_url)
    except demo_platform.ClientRefused as refused:
        return _oauth_error(refused.status, refused.error, refused.description)
    return _json({"access_token": demo_platform.access_token_make(client_id=client_id, scopes=scopes),
                  "token_type": "Bearer", "expires_in": demo_platform.ACCESS_TOKEN_LIFETIME, "scope": " ".join(scopes)},
                 headers={"Cache-Control": "no-store"})


# --- services ------------------------------------------------------------------------------------


def _service(request, course_id: int, *any_of_scopes: str):
    """The demo course the request is about, or the refusal: (course, None) or (None, response)."""
    _enabled()
    scopes = demo_platform.access_token_scopes(request.headers.get("Authorization", ""))
    if scopes is None:
        return None, _oauth_error(401, "invalid_token", "a valid bearer token from the token endpoint is required")
    if not scopes & set(any_of_scopes):
        return None, _oauth_error(403, "insufficient_scope", "the token does not grant " + " or ".join(any_of_scopes))
    course = selectors.demo_course(course_id=course_id)
    if course is None:
        return None, _json({"error": "not_found"}, status=404)
    return course, None


def _lineitem_json(request, item) -> dict:
    value = {"id": request.build_absolute_uri(reverse("testlaunch:platform_lineitem", args=[item.context_id, item.pk])),
             "label": item.label, "scoreMaximum": item.score_maximum}
    for name, field in (("resourceLinkId", item.resource_link_id), ("resourceId", item.resource_id),
                        ("tag", item.tag)):
        if field:
            value[name] = field
    return value


def _body_of(request, *media_types: str):
    if request.content_type not in media_types:
        return None, _json({"error": "unsupported_media_type", "error_description": "send " + media_types[0]},
                           status=415)
    return request.body, None


@csrf_exempt
@require_http_methods(["GET", "POST"])
def platform_lineitems(request, course_id: int):
    """AGS line items container: list (filtered) or add a line item."""
    if request.method == "POST":
        course, refused = _service(request, course_id, demo_platform.SCOPE_LINEITEM)
        if refused:
            return refused
        body, refused = _body_of(request, demo_platform.MEDIA_LINEITEM, "application/json")
        if refused:
            return refused
        try:
            values = demo_platform.lineitem_parse(body)
        except demo_platform.InvalidBody as error:
            return _json({"error": "invalid_request", "error_description": str(error)}, status=400)
        item = services.lineitem_create(context=course, values=values)
        return _json(_lineitem_json(request, item), status=201, content_type=demo_platform.MEDIA_LINEITEM)
    course, refused = _service(request, course_id, demo_platform.SCOPE_LINEITEM, demo_platform.SCOPE_LINEITEM_READONLY)
    if refused:
        return refused
    items = selectors.lineitems_find(context=course, resource_link_id=request.GET.get("resource_link_id", ""),
                                     resource_id=request.GET.get("resource_id", ""), tag=request.GET.get("tag", ""))
    return _json([_lineitem_json(request, item) for item in items],
                 content_type=demo_platform.MEDIA_LINEITEM_CONTAINER)


@require_GET
def platform_lineitem(request, course_id: int, lineitem_id: int):
    course, refused = _service(request, course_id, demo_platform.SCOPE_LINEITEM, demo_platform.SCOPE_LINEITEM_READONLY)
    if refused:
        return refused
    item = selectors.lineitem_of(context=course, lineitem_id=lineitem_id)
    if item is None:
        return _json({"error": "not_found"}, status=404)
    return _json(_lineitem_json(request, item), content_type=demo_platform.MEDIA_LINEITEM)


@csrf_exempt
@require_POST
def platform_scores(request, course_id: int, lineitem_id: int):
    """AGS scores: record the score the tool sends (AGS 2.0 section 3.4)."""
    course, refused = _service(request, course_id, demo_platform.SCOPE_SCORE)
    if refused:
        return refused
    item = selectors.lineitem_of(context=course, lineitem_id=lineitem_id)
    if item is None:
        return _json({"error": "not_found"}, status=404)
    body, refused = _body_of(request, demo_platform.MEDIA_SCORE, "application/json")
    if refused:
        return refused
    try:
        values = demo_platform.score_parse(body)
    except demo_platform.InvalidBody as error:
        return _json({"error": "invalid_request", "error_description": str(error)}, status=400)
    services.score_record(lineitem=item, values=values)
    return HttpResponse(status=204)


@require_GET
def platform_memberships(request, course_id: int):
    """NRPS: the course list (the demo people and whoever opened the course's activities)."""
    course, refused = _service(request, course_id, demo_platform.SCOPE_NRPS)
    if refused:
        return refused
    members = selectors.course_members(context=course)
    role = request.GET.get("role", "")
    if role:
        wanted = role if "://" in role else demo_platform.LIS + "membership#" + role
        members = [m for m in members if wanted in m["roles"]]
    return _json({"id": request.build_absolute_uri(),
                  "context": {"id": course.lti13_id or course.context_id, "label": course.label, "title": course.title},
                  "members": members}, content_type=demo_platform.MEDIA_MEMBERSHIP_CONTAINER)
