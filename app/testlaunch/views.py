"""A local stand-in for an LMS: pick a resource and a role, and be launched with a real
signed LTI 1.1 POST, or as an LTI 1.3 platform (an OIDC login, then a signed id_token; see
testlaunch.platform). It can launch into any resource as anyone, so it exists only when
settings.TEST_LAUNCH_ENABLED (on with DEBUG, for everyone; otherwise an operator's explicit
choice, and then for staff only)."""

from django import forms
from django.conf import settings
from django.http import Http404, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from lms.models import Resource
from testlaunch import platform as demo_platform
from testlaunch import selectors, services
from testlaunch.signing import launch_params, sign_launch

LTI_1P1, LTI_1P3 = "1.1", "1.3"


class TestLaunchForm(forms.Form):
    lti_version = forms.ChoiceField(
        choices=[(LTI_1P1, "1.1 (a signed form post)"), (LTI_1P3, "1.3 (OIDC login, signed id_token, grades by AGS)")],
        widget=forms.RadioSelect, required=False, label="LTI version")
    resource = forms.ModelChoiceField(
        queryset=Resource.objects.filter(consumer__active=True).select_related("consumer", "context"),
        empty_label=None,
    )
    role = forms.ChoiceField(choices=[("student", "Student"), ("instructor", "Instructor")], widget=forms.RadioSelect)
    user_id = forms.CharField(max_length=255, initial="demo-student-1", label="LMS user id")
    full_name = forms.CharField(max_length=200, initial="Demo Student", label="Name")
    in_frame = forms.BooleanField(required=False, initial=True, label="Show it inside a frame, as an LMS does")

    def clean(self):
        data = super().clean()
        data["lti_version"] = data.get("lti_version") or LTI_1P1
        resource = data.get("resource")
        if data["lti_version"] == LTI_1P3 and resource is not None \
                and resource.consumer.key != settings.DEMO_CONSUMER_KEY:
            self.add_error("resource", f"LTI 1.3 test launches come from the demo LMS, so they open its activities "
                                       f"(consumer “{settings.DEMO_CONSUMER_KEY}”) only.")
        return data


def _allowed(request) -> bool:
    staff = request.user.is_authenticated and request.user.is_staff
    return settings.TEST_LAUNCH_ENABLED and (settings.DEBUG or staff)


def _origin(request) -> str:
    return f"{request.scheme}://{request.get_host()}"


@never_cache
def test_launch(request):
    if not _allowed(request):
        raise Http404
    form = TestLaunchForm(request.POST or None, initial={"role": "student", "lti_version": LTI_1P1})
    if request.method == "POST" and form.is_valid():
        if form.cleaned_data["lti_version"] == LTI_1P3:
            try:
                return _lti13_login(request, form.cleaned_data)
            except ValueError as error:  # the address cannot be registered (see demo_platform_ensure)
                form.add_error(None, f"The demo LMS could not be registered for LTI 1.3 at {_origin(request)}: "
                                     f"{error}")
        else:
            return _lti11_launch(request, form.cleaned_data)
    return render(request, "testlaunch/form.html", {"form": form, "scores": selectors.scores_received()})


def _lti11_launch(request, data):
    resource = data["resource"]
    url = request.build_absolute_uri(reverse("lti:launch"))
    params = launch_params(resource=resource, role=data["role"], user_id=data["user_id"], full_name=data["full_name"])
    if data["role"] == "student":  # a gradebook column: the demo LMS's outcome service and this person's cell
        result = services.outcome_result_ensure(resource=resource, user_id=data["user_id"],
                                                full_name=data["full_name"])
        params.update(lis_outcome_service_url=request.build_absolute_uri(reverse("testlaunch:outcomes")),
                      lis_result_sourcedid=result.sourcedid)
    signed = sign_launch(consumer=resource.consumer, url=url, params=params)
    return render(request, "testlaunch/post.html",
                  {"url": url, "params": signed, "in_frame": data["in_frame"], "resource": resource})


def _lti13_login(request, data):
    """Start a third-party-initiated login at the tool, as a platform does (LTI 1.3 Core 5.1.1.1),
    offering this page's storage (platform storage) when the tool is shown in the frame."""
    urls = services.platform_urls(base_url=_origin(request))
    services.demo_platform_ensure(base_url=_origin(request))
    hint = demo_platform.LaunchHint(
        issuer=urls["issuer"], resource_id=data["resource"].pk, role=data["role"], sub=data["user_id"],
        full_name=data["full_name"], target_link_uri=urls["tool_launch"], in_frame=data["in_frame"])
    params = {"iss": urls["issuer"], "login_hint": hint.sub, "target_link_uri": hint.target_link_uri,
              "lti_message_hint": demo_platform.message_hint_make(hint), "client_id": demo_platform.CLIENT_ID,
              "lti_deployment_id": demo_platform.DEPLOYMENT_ID}
    if data["in_frame"]:
        params["lti_storage_target"] = "_parent"
    return render(request, "testlaunch/post.html", {
        "url": urls["tool_login"], "params": params, "in_frame": data["in_frame"], "resource": data["resource"],
        "lti13": True, "storage": {"toolOrigin": _origin(request)} if data["in_frame"] else None})


@never_cache
def gradebook(request):
    """The demo LMS's gradebook: the grades the tool sent it (LTI 1.1 outcomes and 1.3 AGS)."""
    if not _allowed(request):
        raise Http404
    return render(request, "testlaunch/gradebook.html", {"rows": selectors.gradebook()})


@csrf_exempt  # called by the tool's worker, authenticated by its OAuth signature instead
@require_POST
def outcome_service(request):
    """The demo LMS's LTI 1.1 Basic Outcomes endpoint (its launches' lis_outcome_service_url).
    It exists where the test-launch page does; the consumer's secret authenticates each call."""
    if not settings.TEST_LAUNCH_ENABLED:
        raise Http404
    status, xml = services.outcome_request_answer(url=request.build_absolute_uri(), body=request.body,
                                                  authorization=request.headers.get("Authorization", ""))
    return HttpResponse(xml, status=status, content_type="application/xml; charset=utf-8")
