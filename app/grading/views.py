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
    queued = services.grades_report_all(resource_id=membership.resource_id)
    messages.success(request, ngettext("%(count)d grade queued for the LMS.", "%(count)d grades queued for the LMS.",
                                       queued) % {"count": queued})
    return redirect("grading:grades", resource_id=membership.resource_id)


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
