"""A local stand-in for an LMS: pick a resource and a role, and be launched with a real
signed LTI 1.1 POST. It can sign a launch into any resource as anyone, so it exists only when
settings.TEST_LAUNCH_ENABLED (on with DEBUG, for everyone; otherwise an operator's explicit
choice, and then for staff only)."""

from django import forms
from django.conf import settings
from django.http import Http404
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.cache import never_cache

from lms.models import Resource
from testlaunch.signing import launch_params, sign_launch


class TestLaunchForm(forms.Form):
    resource = forms.ModelChoiceField(
        queryset=Resource.objects.filter(consumer__active=True).select_related("consumer", "context"),
        empty_label=None,
    )
    role = forms.ChoiceField(choices=[("student", "Student"), ("instructor", "Instructor")], widget=forms.RadioSelect)
    user_id = forms.CharField(max_length=255, initial="demo-student-1", label="LMS user id")
    full_name = forms.CharField(max_length=200, initial="Demo Student", label="Name")
    in_frame = forms.BooleanField(required=False, initial=True, label="Show it inside a frame, as an LMS does")


def _allowed(request) -> bool:
    staff = request.user.is_authenticated and request.user.is_staff
    return settings.TEST_LAUNCH_ENABLED and (settings.DEBUG or staff)


@never_cache
def test_launch(request):
    if not _allowed(request):
        raise Http404
    form = TestLaunchForm(request.POST or None, initial={"role": "student"})
    if request.method == "POST" and form.is_valid():
        resource = form.cleaned_data["resource"]
        url = request.build_absolute_uri(reverse("lti:launch"))
        params = launch_params(
            resource=resource,
            role=form.cleaned_data["role"],
            user_id=form.cleaned_data["user_id"],
            full_name=form.cleaned_data["full_name"],
        )
        signed = sign_launch(consumer=resource.consumer, url=url, params=params)
        return render(
            request,
            "testlaunch/post.html",
            {"url": url, "params": signed, "in_frame": form.cleaned_data["in_frame"], "resource": resource},
        )
    return render(request, "testlaunch/form.html", {"form": form})
