from django.http import JsonResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from core.health import health_check


@never_cache
@require_GET
def health(request):
    report = health_check()
    return JsonResponse(report, status=200 if report["status"] == "ok" else 503)


def home(request):
    return render(request, "core/home.html")
