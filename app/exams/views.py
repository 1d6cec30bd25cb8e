from django.http import JsonResponse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from exams.packages import PackageRejected
from exams.services import exam_package_upload
from portal.access import resource_view


@require_POST
@resource_view(instructor=True)
def upload(request, membership):
    """Upload a Numbas SCORM package as the resource's new exam version (XHR, answers JSON)."""
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
        )
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
