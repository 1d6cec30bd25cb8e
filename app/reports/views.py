"""Instructor pages for report files. Every view goes through portal.access.resource_view
(instructors of this resource only); a report of another resource is a 404 here."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.http import FileResponse, Http404, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import content_disposition_header
from django.utils.text import slugify
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods

from portal.access import resource_view
from reports import selectors, services, storage
from reports.models import ReportFile, ReportFileState


def _wants_json(request) -> bool:
    return "application/json" in request.headers.get("Accept", "")


def _status(report: ReportFile) -> dict:
    done = report.state == ReportFileState.DONE
    return {
        "id": str(report.pk),
        "kind": report.kind,
        "state": report.state,
        "state_label": report.get_state_display(),
        "progress": report.progress,
        "rows": report.rows,
        "size_bytes": report.size_bytes,
        "error": report.error,
        "status_url": reverse("reports:status", args=[report.resource_id, report.pk]),
        "download_url": reverse("reports:download", args=[report.resource_id, report.pk]) if done else None,
    }


@require_http_methods(["GET", "POST"])
@resource_view(instructor=True)
def reports(request, membership):
    error = ""
    if request.method == "POST":
        try:
            report = services.report_request(
                resource_id=membership.resource_id, kind=request.POST.get("kind", ""), user=request.user
            )
        except services.ReportRejected as rejected:
            if _wants_json(request):
                return JsonResponse({"error": str(rejected)}, status=400)
            error = str(rejected)
        else:
            if _wants_json(request):
                return JsonResponse(_status(report), status=202)
            return redirect("reports:list", resource_id=membership.resource_id)
    return render(
        request,
        "reports/reports.html",
        {
            "membership": membership,
            "resource": membership.resource,
            "reports": selectors.reports_of(resource_id=membership.resource_id),
            "error": error,
            "retention_days": settings.REPORT_RETENTION_DAYS,
        },
        status=400 if error else 200,
    )


@require_GET
@resource_view(instructor=True)
def status(request, membership, report_id: uuid.UUID):
    report = selectors.report_get(report_id=report_id, resource_id=membership.resource_id)
    if report is None:
        return JsonResponse({"error": _("There is no such report.")}, status=404)
    return JsonResponse(_status(report))


def _filename(report: ReportFile) -> str:
    title = slugify(report.resource.title or report.resource.resource_link_id)[:60] or "resource"
    return (f"{title}-{report.kind}-{timezone.localtime(report.finished_at):%Y%m%d-%H%M}."
            f"{storage.extension_for(report.kind)}")


@require_GET
@resource_view(instructor=True)
def download(request, membership, report_id: uuid.UUID):
    report = selectors.report_for_download(report_id=report_id, user=request.user)
    if report is None or report.resource_id != membership.resource_id:
        raise Http404("There is no such report, or it has expired.")
    path = storage.absolute_path(report.relative_path)
    if path is None:
        raise Http404("There is no such report.")
    filename = _filename(report)
    if settings.PRIVATE_X_ACCEL_PREFIX:
        # nginx sends the file from its internal location (and answers 404 itself if it is gone);
        # Django only decides who may have it.
        response = HttpResponse(content_type=storage.content_type_for(report.kind))
        response["X-Accel-Redirect"] = f"{settings.PRIVATE_X_ACCEL_PREFIX.rstrip('/')}/{report.relative_path}"
        response["Content-Disposition"] = content_disposition_header(True, filename)
        return response
    try:
        file = open(path, "rb")
    except FileNotFoundError:
        raise Http404("The report's file is gone.")
    return FileResponse(file, as_attachment=True, filename=filename, content_type=storage.content_type_for(report.kind))
