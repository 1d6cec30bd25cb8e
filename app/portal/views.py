import math

from django.conf import settings
from django.contrib import messages
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.urls import reverse

from attempts import selectors as attempt_selectors
from exams import selectors as exam_selectors
from grading import selectors as grading_selectors
from grading import services as grading_services
from portal import selectors as portal_selectors
from portal.forms import ResourceSettingsForm

from portal.access import resource_view


@resource_view(instructor=False)
def student(request, membership):
    settings_ = attempt_selectors.resource_settings(resource_id=membership.resource_id)
    attempts = attempt_selectors.attempts_of(membership=membership)
    marks = grading_selectors.attempt_scores(
        attempt_ids=[a.pk for a in attempts], discounts=grading_selectors.discounts_for(resource_id=membership.resource_id))
    for attempt in attempts:
        attempt.show_score = attempt_selectors.score_visible(settings=settings_, attempt=attempt)
        attempt.marks = marks.get(attempt.pk)
        attempt.can_reopen = attempt.is_ended and settings_.allow_student_reopen and not (
            attempt_selectors.attempt_reopen_refusal(attempt=attempt, user=request.user))
        if not attempt.is_ended:
            attempt.closed_message = attempt_selectors.attempt_closed_message(attempt=attempt)
            time_left = attempt_selectors.attempt_time_left(attempt=attempt)
            attempt.minutes_left = None if time_left is None else math.ceil(time_left.total_seconds() / 60)
    options = attempt_selectors.attempt_options(membership=membership)
    rules = portal_selectors.activity_rules(settings=settings_, user_id=membership.user_id, exam=options.exam,
                                            attempts=attempts)
    return render(
        request,
        "portal/student.html",
        {
            "membership": membership,
            "resource": membership.resource,
            "attempts": attempts,
            "options": options,
            "rules": rules,
            "settings": settings_,
            "own_access": attempt_selectors.student_access_of(resource_id=membership.resource_id,
                                                              user_id=membership.user_id),
            "grade": grading_selectors.grade_summary_for_student(membership_id=membership.pk),
            "grade_visible": attempt_selectors.grade_visible(settings=settings_),
            "review_open": attempt_selectors.review_open(settings=settings_),
        },
    )


def _instructor_page(request, membership, *, form=None, status=200):
    if form is None:
        current = attempt_selectors.resource_settings(resource_id=membership.resource_id)
        form = ResourceSettingsForm(instance=current)
    return render(
        request,
        "portal/instructor.html",
        {
            "membership": membership,
            "resource": membership.resource,
            **_exam_context(membership.resource_id),
            "max_upload_mb": settings.EXAM_MAX_UPLOAD_BYTES // (1024 * 1024),
            "settings_form": form,
            "time_zone": timezone.get_current_timezone_name(),
        },
        status=status,
    )


def _exam_context(resource_id: int) -> dict:
    """The exam panel: its versions (with their attempts), the current one, and what the upload
    form must warn about."""
    rows = exam_selectors.exam_version_rows(resource_id=resource_id)
    in_progress, finished = exam_selectors.attempts_started(resource_id=resource_id)
    return {
        "exam_versions": [row.exam for row in rows],
        "version_rows": rows,
        "current_exam": next((row.exam for row in rows if row.is_current), None),
        "attempts_in_progress": in_progress,
        "attempts_finished": finished,
        "attempts_elsewhere": sum(row.attempts for row in rows if not row.is_current),
    }


instructor_page = _instructor_page  # for the exam's views, which answer with this page too


@resource_view(instructor=True)
def instructor(request, membership):
    """The overview: the exam, the test run and the settings. The settings form posts here, so
    that after a refused save the address bar holds this page's address, which a reload or a
    bookmark opens again (rather than a POST-only address that answers 405)."""
    if request.method == "POST":
        return _settings_save(request, membership)
    return _instructor_page(request, membership)


@resource_view(instructor=True)
def settings_update(request, membership):
    """The settings' former address: a POST saves as the overview does; anything else (a reload,
    a bookmark) goes to the settings on the overview."""
    if request.method != "POST":
        return redirect(reverse("portal:instructor", kwargs={"resource_id": membership.resource_id}) + "#settings")
    return _settings_save(request, membership)


def _settings_save(request, membership):
    current = attempt_selectors.resource_settings(resource_id=membership.resource_id)
    form = ResourceSettingsForm(request.POST, instance=current)
    if not form.is_valid():
        return _instructor_page(request, membership, form=form, status=400)
    grading_services.resource_settings_save(form=form)
    messages.success(request, _("Settings saved. They apply to students from now on."))
    return redirect(reverse("portal:instructor", kwargs={"resource_id": membership.resource_id}) + "#settings")
