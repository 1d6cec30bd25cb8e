from django.conf import settings
from django.shortcuts import render

from attempts import selectors as attempt_selectors
from exams import selectors as exam_selectors
from grading import selectors as grading_selectors

from portal.access import resource_view


@resource_view(instructor=False)
def student(request, membership):
    settings_ = attempt_selectors.resource_settings(resource_id=membership.resource_id)
    attempts = attempt_selectors.attempts_of(membership=membership)
    for attempt in attempts:
        attempt.show_score = attempt_selectors.score_visible(settings=settings_, attempt=attempt)
    return render(
        request,
        "portal/student.html",
        {
            "membership": membership,
            "resource": membership.resource,
            "attempts": attempts,
            "options": attempt_selectors.attempt_options(membership=membership),
            "settings": settings_,
            "grade": grading_selectors.grade_summary_for_student(membership_id=membership.pk),
            "grade_visible": attempt_selectors.grade_visible(settings=settings_),
        },
    )


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
