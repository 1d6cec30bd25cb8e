"""Who may see a resource's pages. Every portal view goes through `resource_view`."""

from functools import wraps

from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.cache import never_cache

from lms import selectors as lms_selectors
from lms import services as lms_services
from portal.navigation import HANDOFF_PARAM


def resource_view(*, instructor: bool):
    """Decorate a view taking (request, membership). Refuses anyone without a membership of
    the resource (and, for instructor views, without the instructor role there; staff pass).

    When a launch's hand-off token arrives without a session — the LMS iframe blocked our
    cookie — it offers "continue in a new window" instead of refusing.
    """

    def decorate(view):
        @wraps(view)
        @never_cache
        def wrapper(request, resource_id: int, *args, **kwargs):
            token = request.GET.get(HANDOFF_PARAM, "")
            membership = lms_selectors.membership_get(user=request.user, resource_id=resource_id)
            if membership is not None and (membership.is_instructor or not instructor or request.user.is_staff):
                if token:
                    # The session arrived; the hand-off link must not stay usable.
                    launch = lms_selectors.handoff_get_usable(token=token, resource_id=resource_id)
                    if launch is not None and launch.membership.user_id == request.user.pk:
                        lms_services.handoff_consume(launch=launch)
                return view(request, membership, *args, **kwargs)
            if membership is None and token:
                launch = lms_selectors.handoff_get_usable(token=token, resource_id=resource_id)
                if launch is not None:
                    return render(
                        request,
                        "portal/cookies_blocked.html",
                        {"handoff_url": reverse("lti:handoff", kwargs={"token": token}), "launch": launch},
                        status=200,
                    )
            status = 401 if not request.user.is_authenticated else 403
            return render(
                request, "portal/not_allowed.html", {"needs_instructor": instructor, "status": status}, status=status
            )

        return wrapper

    return decorate
