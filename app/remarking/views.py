"""The instructor's "Re-mark all attempts" page and the calls its marking loop makes. Only
instructors of the resource (portal.access.resource_view); a run of another resource is 404."""

import json

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import RequestDataTooBig
from django.http import Http404, JsonResponse
from django.middleware.csrf import get_token
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from dashboard.names import ItemNames
from exams.selectors import exam_current
from portal.access import resource_view
from remarking import selectors, services
from remarking.models import RemarkScope

# The marking frame's page on the exam-content origin (content/static/content/runtime/).
MARKING_PATH = "/runtime/remark.html"
MAX_BODY = 2_000_000
# How many marking frames the page runs at once (each marks one attempt at a time).
MARKING_LANES = 2


def _run(membership, run_id):
    run = selectors.remark_run_of(resource_id=membership.resource_id, run_id=run_id)
    if run is None:
        raise Http404(_("There is no such re-mark in this activity."))
    return run


def _hand_out(run, after: int, lane: tuple[int, int]) -> dict | None:
    handed = services.remark_item_hand_out(run=run, after_attempt_id=after, lane=lane[0], lanes=lane[1])
    if handed is None:
        return None
    record = reverse("remarking:record", args=[run.resource_id, run.pk, handed.attempt_id])
    return {"attempt": handed.attempt_id, "exam": handed.exam_path, "state": handed.state,
            "recordUrl": f"{record}?lane={lane[0]}&lanes={lane[1]}"}


def _lane(request) -> tuple[int, int] | None:
    """?lane=k&lanes=K: which of the page's marking frames asks (default: the only one)."""
    lane, lanes = request.GET.get("lane", "0"), request.GET.get("lanes", "1")
    if not (lane.isdigit() and lanes.isdigit() and len(lane) < 3 and len(lanes) < 3):
        return None
    return int(lane), int(lanes)


def _error(message: str, status: int = 400) -> JsonResponse:
    return JsonResponse({"error": {"message": message}}, status=status)


@require_GET
@resource_view(instructor=True)
def page(request, membership):
    return _page(request, membership)


def _page(request, membership, *, status=200, error=""):
    resource = membership.resource
    run = selectors.remark_run_latest(resource_id=resource.pk)
    progress = selectors.remark_progress(run=run) if run else None
    config = None
    if run is not None and run.status == "running":
        config = {
            "nextUrl": reverse("remarking:next", args=[resource.pk, run.pk]),
            "examOrigin": settings.EXAM_ORIGIN,
            "markingPath": MARKING_PATH,
            "csrfToken": get_token(request),
            "progress": progress.as_dict(),
            "lanes": MARKING_LANES,
        }
    preview = selectors.remark_preview(run=run) if run and progress.pending == 0 else []
    if preview:
        names = ItemNames(run.exam.structure)
        for item in preview:  # "Question 2: Primes, part a" rather than "q1p0"
            item.named_differences = [{**d, "label": names.label(str(d.get("id", "")))}
                                      for d in (item.differences or []) if isinstance(d, dict)]
    return render(request, "remarking/page.html", {
        "resource": resource, "run": run, "progress": progress, "config": config, "error": error,
        "preview": preview,
        "exam": exam_current(resource_id=resource.pk), "scopes": RemarkScope.choices,
        "preview_limit": selectors.PREVIEW_LIMIT,
    }, status=status)


@require_POST
@resource_view(instructor=True)
def start(request, membership):
    try:
        services.remark_run_start(resource_id=membership.resource_id, scope=request.POST.get("scope", ""),
                                  by=request.user)
    except services.RemarkRefused as refused:
        return _page(request, membership, status=400, error=refused.message)
    return redirect("remarking:page", membership.resource_id)


def _after(request) -> int | None:
    value = request.GET.get("after", "0")
    return int(value) if value.isdigit() and len(value) < 12 else None


@require_POST
@resource_view(instructor=True)
def next_attempt(request, membership, run_id: int):
    """The next attempt to mark: its values and the exam to mark it with (null when done)."""
    run = _run(membership, run_id)
    after, lane = _after(request), _lane(request)
    if after is None:
        return _error(_("'after' must be an attempt number."))
    if lane is None:
        return _error(_("'lane' and 'lanes' must be small numbers."))
    try:
        item = _hand_out(run, after, lane)
    except services.RemarkRefused as refused:
        return _error(refused.message, 409 if run.status != "running" else 400)
    return JsonResponse({"next": item, "progress": selectors.remark_progress(run=run).as_dict()})


@require_POST
@resource_view(instructor=True)
def record(request, membership, run_id: int, attempt_id: int):
    """What the exam reported for one attempt ({"values": {key: value}} or {"error": text});
    answers with the progress and the next attempt to mark."""
    run = _run(membership, run_id)
    lane = _lane(request)
    if lane is None:
        return _error(_("'lane' and 'lanes' must be small numbers."))
    try:
        body = request.body
    except RequestDataTooBig:
        return _error(_("The marks are too large."), 413)
    if len(body) > MAX_BODY:
        return _error(_("The marks are too large."), 413)
    try:
        data = json.loads(body or b"null")
    except (ValueError, RecursionError):
        return _error(_("The marks are not valid JSON."))
    if not isinstance(data, dict) or not (isinstance(data.get("values"), dict) or isinstance(data.get("error"), str)):
        return _error(_("Send {\"values\": {...}} with the exam's marks, or {\"error\": \"...\"}."))
    try:
        values = data["values"] if isinstance(data.get("values"), dict) else None
        error = "" if values is not None else (data["error"].strip() or _("The exam could not mark it."))
        services.remark_item_record(run=run, attempt_id=attempt_id, values=values, error=error)
        item = _hand_out(run, attempt_id, lane)
    except services.RemarkRefused as refused:
        return _error(refused.message, 409 if run.status != "running" else 400)
    return JsonResponse({"next": item, "progress": selectors.remark_progress(run=run).as_dict()})


@require_POST
@resource_view(instructor=True)
def apply(request, membership, run_id: int):
    run = _run(membership, run_id)
    try:
        result = services.remark_run_apply(run=run, by=request.user)
    except services.RemarkRefused as refused:
        return _page(request, membership, status=400, error=refused.message)
    messages.success(request, _("Re-mark applied: %(applied)s attempts changed, %(stale)s changed since they were "
                                "marked and were left as they are, %(unchanged)s unchanged.")
                     % {"applied": result.applied, "stale": result.stale, "unchanged": result.unchanged})
    return redirect("remarking:page", membership.resource_id)


@require_POST
@resource_view(instructor=True)
def discard(request, membership, run_id: int):
    run = _run(membership, run_id)
    if not request.POST.get("confirmed") and run.status == "running":
        from dashboard.views import confirm_page

        return confirm_page(
            request, resource=membership.resource, title=_("Discard this re-mark?"),
            question=_("The new marks found so far are thrown away; no attempt is changed. You can start a new "
                       "re-mark afterwards."),
            action=request.path, fields={}, button=_("Discard the re-mark"),
            cancel_url=reverse("remarking:page", args=[membership.resource_id]), back_label=_("Re-mark all attempts"))
    try:
        services.remark_run_discard(run=run, by=request.user)
    except services.RemarkRefused as refused:
        return _page(request, membership, status=400, error=refused.message)
    messages.success(request, _("Re-mark discarded; no attempt was changed."))
    return redirect("remarking:page", membership.resource_id)
