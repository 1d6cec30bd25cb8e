"""The instructor's statistics page and live view. Thin: the presenter asks the selectors for
the figures; the live view's numbers then come over its websocket (insights/consumers.py)."""

from django.shortcuts import render

from insights.forms import StatisticsFilterForm
from insights.live import live_summary
from insights.presenters import statistics_page
from lms import selectors as lms_selectors
from portal.access import resource_view


@resource_view(instructor=True)
def statistics(request, membership):
    form = StatisticsFilterForm(request.GET)
    valid = form.is_valid()
    all_attempts = form.cleaned_data["all"] if valid else False
    if not valid:
        form = StatisticsFilterForm()
    context = statistics_page(resource_id=membership.resource_id, all_attempts=all_attempts)
    return render(
        request,
        "insights/statistics.html",
        {**context, "membership": membership, "resource": membership.resource, "form": form, "bad_filter": not valid},
        status=200 if valid else 400,
    )


@resource_view(instructor=True)
def live(request, membership):
    return render(request, "insights/live.html", {
        "membership": membership, "resource": membership.resource,
        "summary": live_summary(resource_id=membership.resource_id),
        "identifier_label": lms_selectors.identifier_label(
            lms_selectors.identifier_field_for(resource_id=membership.resource_id)),
    })
