"""The instructor's exam: uploading versions, listing, downloading and choosing them, and moving
attempts between them. Every view is for instructors of the resource (portal.access)."""

import os
import zipfile
from tempfile import SpooledTemporaryFile

from django.contrib import messages
from django.conf import settings
from django.http import FileResponse, Http404, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.utils.http import content_disposition_header
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from attempts import services as attempt_services
from exams import selectors
from exams.packages import PackageRejected
from exams.services import (
    ReplaceNeedsConfirmation, VersionChangeRefused, exam_package_upload, exam_version_make_current, exams_root,
    original_path,
)
from portal.access import resource_view


@require_POST
@resource_view(instructor=True)
def upload(request, membership):
    """Upload a Numbas SCORM package as the resource's new exam version (XHR, answers JSON).
    Over attempts already started, only with the instructor's confirmation (confirm_replace)."""
    upload = request.FILES.get("package")
    if upload is None:
        return JsonResponse({"error": _("Choose a Numbas exam package (.zip) to upload.")}, status=400)
    try:
        package = exam_package_upload(
            resource=membership.resource,
            upload=upload,
            size=upload.size,
            filename=upload.name,
            uploaded_by=request.user,
            replace_confirmed=request.POST.get("confirm_replace") == "yes",
        )
    except ReplaceNeedsConfirmation as refused:
        return JsonResponse({"error": refused.message, "code": "confirm_replace", "attempts": refused.attempts},
                            status=409)
    except PackageRejected as error:
        return JsonResponse({"error": str(error)}, status=400)
    return JsonResponse(
        {
            "title": package.title,
            "version": package.version,
            "questions": package.question_count,
            "duration_seconds": package.duration_seconds,
        },
        status=201,
    )


def _version(membership, exam_id):
    exam = selectors.exam_version_get(resource_id=membership.resource_id, exam_id=exam_id)
    if exam is None:
        raise Http404(_("This activity has no such exam version."))
    return exam


def _download_name(exam) -> str:
    stem = "".join(c if c.isalnum() or c in "-_" else "-" for c in exam.title)[:80].strip("-") or "exam"
    return f"{stem}-v{exam.version}.zip"


@require_GET
@resource_view(instructor=True)
def version_download(request, membership, exam_id):
    """One version as a zip, always as an attachment that the browser cannot run: the zip as it
    was uploaded; for versions uploaded before zips were kept, the stored files zipped again."""
    exam = _version(membership, exam_id)
    original = original_path(exam)
    if original.is_file() and settings.PRIVATE_X_ACCEL_PREFIX:
        # nginx sends the file from its internal location; Django only decides who may have it.
        response = HttpResponse(content_type="application/zip")
        response["X-Accel-Redirect"] = (f"{settings.PRIVATE_X_ACCEL_PREFIX.rstrip('/')}/"
                                        f"{original.relative_to(settings.PRIVATE_ROOT).as_posix()}")
    elif original.is_file():
        response = FileResponse(open(original, "rb"), content_type="application/zip")
    else:
        response = FileResponse(_zip_stored_files(exam), content_type="application/zip")
    response["Content-Disposition"] = content_disposition_header(True, _download_name(exam))
    # Never rendered or sniffed on the application's origin, even if a browser ignored the above.
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = "sandbox; default-src 'none'"
    response["Cross-Origin-Resource-Policy"] = "same-origin"
    return response


def _zip_stored_files(exam) -> SpooledTemporaryFile:
    directory = (exams_root() / exam.directory).resolve()
    if not directory.is_dir():
        raise Http404(_("This version's files are missing."))
    buffer = SpooledTemporaryFile(max_size=8 * 1024 * 1024)
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for root, dirs, names in os.walk(directory, followlinks=False):
            dirs.sort()
            for name in sorted(names):
                path = os.path.join(root, name)
                if not os.path.islink(path):
                    archive.write(path, os.path.relpath(path, directory))
    buffer.seek(0)
    return buffer


@require_POST
@resource_view(instructor=True)
def version_make_current(request, membership, exam_id):
    exam = _version(membership, exam_id)
    try:
        exam_version_make_current(resource_id=membership.resource_id, exam=exam, by=request.user)
    except VersionChangeRefused as refused:
        from portal.views import instructor_page  # the page the form is on, with the message

        messages.error(request, refused.message, extra_tags="exam")
        return instructor_page(request, membership, status=400)
    messages.success(request, _("Version %(version)d is current again: new attempts start on it. Attempts already "
                                "started keep their version unless you move them.") % {"version": exam.version},
                     extra_tags="exam")
    return redirect("portal:instructor", resource_id=membership.resource_id)


class _Choice:
    """The attempts chosen on the move page: all, or a list of ids (bad ones: a message)."""

    def __init__(self, data):
        self.all = data.get("all") == "yes"
        self.ids, self.error = [], ""
        if not self.all:
            for raw in data.getlist("attempt"):
                if not raw.isdigit() or not 0 < int(raw) < 2**63:
                    self.error = _("“%(value)s” is not an attempt of this activity.") % {"value": raw[:40]}
                    return
                self.ids.append(int(raw))
            if not self.ids:
                self.error = _("Choose the attempts to move, or move all of them.")

    @property
    def attempt_ids(self):
        return None if self.all else self.ids


@require_http_methods(["GET", "POST"])
@resource_view(instructor=True)
def attempts_move(request, membership):
    """Move attempts to the current version: choose (GET), see what it would do and confirm
    (POST), move (POST with confirm=yes)."""
    resource_id = membership.resource_id
    context = {"membership": membership, "resource": membership.resource}
    if request.method == "GET":
        preview = selectors.attempts_move_preview(resource_id=resource_id, attempt_ids=None)
        return render(request, "exams/move.html", {**context, "preview": preview, "step": "choose"})
    choice = _Choice(request.POST)
    if choice.error:
        preview = selectors.attempts_move_preview(resource_id=resource_id, attempt_ids=None)
        return render(request, "exams/move.html", {**context, "preview": preview, "step": "choose",
                                                   "error": choice.error}, status=400)
    preview = selectors.attempts_move_preview(resource_id=resource_id, attempt_ids=choice.attempt_ids)
    error, status = "", 400
    if preview.unknown:
        error, status = _("Some of the chosen attempts are not attempts of this activity (or were deleted); "
                          "nothing was moved."), 404
    elif preview.target is None:
        error, status = _("This activity has no exam yet."), 409
    elif not preview.attempts:
        error = _("The chosen attempts already use the current version; nothing to move.")
    elif request.POST.get("confirm") == "yes" and request.POST.get("to") != str(preview.target.pk):
        error, status = _("The current version changed since you chose; check what would move again."), 409
    if error:
        everything = selectors.attempts_move_preview(resource_id=resource_id, attempt_ids=None)
        return render(request, "exams/move.html", {**context, "preview": everything, "step": "choose",
                                                   "error": error}, status=status)
    if request.POST.get("confirm") != "yes":
        return render(request, "exams/move.html", {**context, "preview": preview, "step": "confirm",
                                                   "choice": choice})
    result = attempt_services.attempts_move_to_version(
        resource_id=resource_id, attempt_ids=[a.pk for a in preview.attempts], by=request.user,
        to_exam=preview.target, reason=request.POST.get("reason", "")[:500])
    messages.success(request, ngettext(
        "%(count)d attempt moved to version %(version)d; %(grades)d grade changed.",
        "%(count)d attempts moved to version %(version)d; %(grades)d grades changed.", len(result.moved))
        % {"count": len(result.moved), "version": result.to_version, "grades": result.grades_changed},
        extra_tags="exam")
    return redirect("portal:instructor", resource_id=resource_id)
