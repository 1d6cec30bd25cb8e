"""The instructor's grading page: settings, discounts, every student's grade and whether it
reached the LMS (with each try), "re-send" and "report all scores". Thin: services do the work."""

from django.contrib import messages
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _, ngettext
from django.views.decorators.http import require_POST

from attempts import selectors as attempt_selectors
from exams.selectors import exam_current
from grading import selectors, services
from grading.forms import DiscountForm, GradingSettingsForm
from grading.models import GradeReport
from portal.access import resource_view


def _page(request, membership, *, settings_form=None, discount_error="", status=200):
    resource_id = membership.resource_id
    exam = exam_current(resource_id=resource_id)
    settings_ = attempt_selectors.resource_settings(resource_id=resource_id)
    reports = list(selectors.grade_reports_for_resource(resource_id=resource_id))
    return render(
        request,
        "grading/grades.html",
        {
            "membership": membership,
            "resource": membership.resource,
            "settings_form": settings_form or GradingSettingsForm(instance=settings_),
            "targets": selectors.discount_targets(
                structure=exam.structure if exam else [], discounts=selectors.discounts_for(resource_id=resource_id)
            ),
            "discount_error": discount_error,
            "reports": reports,
            "gradebook": selectors.gradebook_link(resource_id=resource_id),
        },
        status=status,
    )


@resource_view(instructor=True)
def grades(request, membership):
    return _page(request, membership)


@require_POST
@resource_view(instructor=True)
def settings_update(request, membership):
    settings_ = attempt_selectors.resource_settings(resource_id=membership.resource_id)
    form = GradingSettingsForm(request.POST, instance=settings_)
    if not form.is_valid():
        return _page(request, membership, settings_form=form, status=400)
    services.resource_settings_save(form=form)
    messages.success(request, _("Grading settings saved."))
    return redirect("grading:grades", resource_id=membership.resource_id)


@require_POST
@resource_view(instructor=True)
def discount_update(request, membership):
    form = DiscountForm(request.POST)
    if not form.is_valid():
        error = " ".join(e for errors in form.errors.values() for e in errors)
        return _page(request, membership, discount_error=error, status=400)
    services.discount_set(resource_id=membership.resource_id, target=form.cleaned_data["target"],
                          behaviour=form.cleaned_data["behaviour"] or None, user=request.user)
    messages.success(request, _("Discount saved. Grades are being recomputed; changed grades will be sent again."))
    return redirect("grading:grades", resource_id=membership.resource_id)


@require_POST
@resource_view(instructor=True)
def report_all(request, membership):
    counts = services.grades_report_all_counted(resource_id=membership.resource_id)
    messages.success(request, report_all_message(counts))
    return redirect("grading:grades", resource_id=membership.resource_id)


def report_all_message(counts: services.ReportAllCounts) -> str:
    """What "report all scores" did, in words: how many were queued and, for the others, why
    not (never a bare "0 grades queued")."""
    parts = []
    if counts.queued:
        parts.append(ngettext("%(count)d grade queued for the LMS.", "%(count)d grades queued for the LMS.",
                              counts.queued) % {"count": counts.queued})
    if counts.already:
        parts.append(ngettext("%(count)d grade is already in the LMS or on its way.",
                              "%(count)d grades are already in the LMS or on their way.",
                              counts.already) % {"count": counts.already})
    if counts.no_gradebook:
        parts.append(ngettext(
            "%(count)d grade was not queued: the LMS offered no gradebook column for that student.",
            "%(count)d grades were not queued: the LMS offered no gradebook column for those students.",
            counts.no_gradebook) % {"count": counts.no_gradebook})
    if counts.no_grade:
        parts.append(ngettext("%(count)d student has no grade yet.", "%(count)d students have no grade yet.",
                              counts.no_grade) % {"count": counts.no_grade})
    if not parts:
        return _("Nothing was queued: no student has attempted this activity yet.")
    if not counts.queued:
        parts.insert(0, _("Nothing was queued."))
    return " ".join(parts)


@require_POST
@resource_view(instructor=True)
def resend(request, membership, report_id: int):
    report = GradeReport.objects.filter(pk=report_id, resource_id=membership.resource_id).first()
    if report is None:
        raise Http404("No such grade in this activity.")
    services.grade_resend(report=report)
    messages.success(request, _("The grade of %(name)s will be sent again now.")
                     % {"name": report.membership.user.get_full_name() or _("the student")})
    return redirect("grading:grades", resource_id=membership.resource_id)
