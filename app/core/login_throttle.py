"""Throttling password logins (the admin's) with django-axes: settings.AXES_* name the pieces
defined here — whose address counts, what a locked-out person sees, and which logins count."""

from __future__ import annotations

from axes.handlers.database import AxesDatabaseHandler
from django.conf import settings
from django.contrib import admin
from django.shortcuts import render


def client_ip(request) -> str | None:
    """The address a login attempt came from: REMOTE_ADDR, which daphne takes from the TCP peer
    or, with --proxy-headers (spec.daphne_command, only ever behind nginx), from
    X-Forwarded-For, which nginx sets to the client's address (replacing what the client sent).
    Never read X-Forwarded-For here: where no proxy overwrites it, anyone can write it and so
    escape the lockout (or lock others out)."""
    return request.META.get("REMOTE_ADDR")


def lockout_response(request, original_response=None, credentials=None):
    """The admin's login page in its locked-out state: what happened, for how long, and what to do."""
    minutes = max(1, round(settings.AXES_COOLOFF_TIME.total_seconds() / 60))
    context = {**admin.site.each_context(request), "title": None, "failure_limit": settings.AXES_FAILURE_LIMIT,
               "minutes": minutes}
    response = render(request, "core/login_locked.html", context, status=429)
    response["Retry-After"] = str(minutes * 60)
    return response


class PasswordLoginHandler(AxesDatabaseHandler):
    """django-axes' database handler (attempts are rows, which the admin lists and can delete to
    lift a lock early), minding password logins only. Every LTI launch signs its user in
    without a password (django.contrib.auth.login); for each, the stock handler would run two
    DELETEs and log a line — on the launch's hot path, for nothing."""

    def user_logged_in(self, sender, request, user, **kwargs):
        if user.has_usable_password():
            super().user_logged_in(sender, request, user, **kwargs)

    def user_logged_out(self, sender, request, user, **kwargs):
        if user is None or user.has_usable_password():
            super().user_logged_out(sender, request, user, **kwargs)
