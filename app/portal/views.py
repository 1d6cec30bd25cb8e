from django.conf import settings
from django.shortcuts import render

from exams import selectors as exam_selectors

from portal.access import resource_view


@resource_view(instructor=False)
def student(request, membership):
    return render(request, "portal/student.html", {"membership": membership, "resource": membership.resource})


@resource_view(instructor=True)
def instructor(request, membership):
    return render(
        request,
        "portal/instructor.html",
        {
            "membership": membership,
            "resource": membership.resource,
            "exam_versions": exam_selectors.exam_versions(resource_id=membership.resource_id),
            "max_upload_mb": settings.EXAM_MAX_UPLOAD_BYTES // (1024 * 1024),
        },
    )
