"""The instructor's students pages: everyone who opened the activity, one person's attempts,
and access changes (extra attempts, their own closing time, extra exam time). Thin: the
selectors read and attempts.services writes."""

from django.contrib import messages
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from attempts import selectors as attempt_selectors
from attempts import services as attempt_services
from dashboard import selectors
from dashboard.forms import AccessChangeForm
from portal.access import resource_view


@resource_view(instructor=True)
def students(request, membership):
    query = selectors.StudentQuery.from_params(request.GET)
    page = selectors.students_page(resource_id=membership.resource_id, query=query)
    return render(request, "dashboard/students.html", {
        "membership": membership, "resource": membership.resource, "page": page, "query": query,
        "columns": [("name", _("Name")), ("attempts", _("Attempts")), ("grade", _("Grade")),
                    ("delivery", _("In the gradebook")), ("activity", _("Last activity"))],
    })


def _student_page(request, membership, person, *, form=None, status=200):
    resource_id = membership.resource_id
    change = attempt_selectors.access_change_of(resource_id=resource_id, user_id=person["user_id"])
    settings_ = attempt_selectors.resource_settings(resource_id=resource_id)
    access = attempt_selectors.student_access(settings=settings_, change=change)
    if form is None:
        initial = {}
        if change is not None:
            until = change.available_until and timezone.localtime(change.available_until)
            initial = {"extra_attempts": change.extra_attempts, "available_until": until,
                       "extra_minutes": change.extra_minutes, "reason": change.reason}
        form = AccessChangeForm(initial=initial)
    return render(request, "dashboard/student.html", {
        "membership": membership, "resource": membership.resource, "person": person, "change": change,
        "settings": settings_, "access": access, "form": form,
        "attempts": selectors.attempts_of_student(resource_id=resource_id, user_id=person["user_id"]),
    }, status=status)


def _person(membership, membership_id):
    person = selectors.student_of_resource(resource_id=membership.resource_id, membership_id=membership_id)
    if person is None:
        raise Http404("Nobody with that id has opened this activity.")
    return person


@resource_view(instructor=True)
def student(request, membership, membership_id: int):
    return _student_page(request, membership, _person(membership, membership_id))


@require_POST
@resource_view(instructor=True)
def access_change(request, membership, membership_id: int):
    person = _person(membership, membership_id)
    form = AccessChangeForm(request.POST)
    if not form.is_valid():
        return _student_page(request, membership, person, form=form, status=400)
    data = form.cleaned_data
    try:
        attempt_services.access_change_set(
            resource_id=membership.resource_id, user_id=person["user_id"], changed_by=request.user,
            extra_attempts=data["extra_attempts"], available_until=data["available_until"],
            extra_minutes=data["extra_minutes"], reason=data["reason"])
    except attempt_services.AccessChangeInvalid as error:
        form.add_error(None, error.message)
        return _student_page(request, membership, person, form=form, status=400)
    messages.success(request, _("Access for %(name)s saved. It applies now, also to an exam they have open.")
                     % {"name": person["display_name"]})
    return redirect("dashboard:student", membership.resource_id, membership_id)
