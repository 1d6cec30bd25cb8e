"""The reference's addresses (numbas-lti-provider), routed after all of ours: see compat.reference."""

from django.urls import path
from django.utils.module_loading import import_string

from compat import reference, views

app_name = "compat"


def _pattern(address: reference.OldAddress):
    if address.kind in (reference.LAUNCH, reference.ALIAS):
        return path(address.route, import_string(address.view), name=address.name)
    view = views.redirect if address.kind == reference.REDIRECT else views.gone
    return path(address.route, view, {"address": address}, name=address.name)


urlpatterns = [_pattern(a) for a in reference.routed()]
