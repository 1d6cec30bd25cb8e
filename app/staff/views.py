"""The staff dashboard: what an operator needs at 3 a.m. Site staff only (the admin's login)."""

from django.contrib.admin.views.decorators import staff_member_required
from django.http import JsonResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.clickjacking import xframe_options_deny
from django.views.decorators.http import require_GET

from staff import selectors


@never_cache
@xframe_options_deny
@staff_member_required
@require_GET
def dashboard(request):
    now = timezone.now()
    health = selectors.health(now=now)
    return render(request, "staff/dashboard.html", {
        "now": now,
        "health": health,
        "health_status": selectors.overall_status(health),
        "consumers": selectors.consumers_overview(),
        "active": selectors.active_resources(now=now),
        "backlog": selectors.grade_backlog(now=now),
        "errors": selectors.recent_send_errors(),
        "worker_stale_minutes": int(selectors.WORKER_STALE_AFTER.total_seconds() // 60),
    })


@never_cache
@xframe_options_deny
@staff_member_required
@require_GET
def health(request):
    """For monitoring: always 200 when answered; "status" is "problem" when anything is broken,
    "warning" when something needs attention soon (e.g. a backup that failed once), else "ok"."""
    now = timezone.now()
    items = selectors.health(now=now)
    return JsonResponse({
        "status": selectors.overall_status(items),
        "checked_at": now.isoformat(),
        "checks": {item.name: item.as_json() for item in items},
        "grade_delivery": selectors.grade_backlog(now=now).as_json(),
    })
