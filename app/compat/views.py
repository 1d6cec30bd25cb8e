"""The reference's addresses (compat.reference): redirects and the pages of addresses that are gone.
The LTI launch and configuration addresses are our own views, routed in compat.urls."""

from django.http import HttpResponseRedirect
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt

from compat.reference import OldAddress


def _reference_pk(kwargs) -> int | None:
    value = kwargs.get("pk")
    return int(value) if value is not None else None


@csrf_exempt  # changes nothing; a POST from a page of the old service gets the same answer
@never_cache
def redirect(request, *, address: OldAddress, **kwargs):
    url = address.target(_reference_pk(kwargs))
    if url is None:
        return render(request, "compat/not_imported.html", {"address": address}, status=404)
    return HttpResponseRedirect(url)


@csrf_exempt
@never_cache
def gone(request, *, address: OldAddress, **kwargs):
    return render(request, "compat/gone.html", {"gone": address.gone}, status=410)
