"""The instructor's students pages: everyone who opened the activity (and the course's students
from the LMS's course list who have not yet, with a button to read that list again), one
person's attempts, access changes (extra attempts, their own opening, closing and due times,
extra exam time in minutes or percent, no time limit; for a course-list student, ahead of their
first launch; for several students at once and a pasted list, pending for those not launched yet), and one attempt — its timeline, its
state at any moment, re-marking a part, deleting, restoring and reopening it. Thin: the selectors read, attempts.services, grading.services and lti13.services
write."""

import functools
from datetime import datetime

from django.contrib import messages
from django.http import Http404
from django.core.paginator import Paginator
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from attempts import selectors as attempt_selectors
from attempts import services as attempt_services
from dashboard import selectors
from dashboard.forms import AccessChangeForm, AccessChangeListForm, ReasonForm, RemarkForm
from grading import scoring
from grading import selectors as grading_selectors
from grading import services as grading_services
from lms import selectors as lms_selectors
from lti13 import nrps
from lti13 import selectors as lti13_selectors
from lti13 import services as lti13_services
from portal.access import resource_view


@resource_view(instructor=True)
def students(request, membership):
    return _students_page(request, membership)


def _students_page(request, membership, *, list_form=None, list_result=None, status=200):
    query = selectors.StudentQuery.from_params(request.GET)
    context = membership.resource.context
    page = selectors.students_page(resource_id=membership.resource_id, query=query,
                                   context_id=context.pk if context else None)
    roster = lti13_selectors.roster_get(context_id=context.pk) if context else None
    return render(request, "dashboard/students.html", {
        "list_form": list_form or AccessChangeListForm(), "list_result": list_result,
        "chosen_students": list_form.data.getlist("students") if list_form is not None and list_form.is_bound else [],
        "pending": attempt_selectors.pending_access_changes(resource_id=membership.resource_id),
        "membership": membership, "resource": membership.resource, "page": page, "query": query,
        "columns": [("name", _("Name")), ("attempts", _("Attempts")), ("grade", _("Grade")),
                    ("delivery", _("In the gradebook")), ("activity", _("Last activity"))],
        "roster": roster, "roster_offered": bool(context and context.nrps_url),
        "identifier_label": lms_selectors.identifier_label(
            lms_selectors.identifier_field_for(resource_id=membership.resource_id)),
        "not_launched": selectors.not_launched_count(resource_id=membership.resource_id, context_id=context.pk)
        if roster and roster.fetched_at else 0,
    }, status=status)


@require_POST
@resource_view(instructor=True)
def access_list(request, membership):
    """One access change for the students chosen on the Students page and those a pasted list
    names (applied now to those who have launched, pending for the others)."""
    form = AccessChangeListForm(request.POST)
    if not form.is_valid():
        return _students_page(request, membership, list_form=form, status=400)
    try:
        result = attempt_services.access_change_for_list(
            resource_id=membership.resource_id, changed_by=request.user,
            membership_ids=form.cleaned_data["students"], entries=form.cleaned_data["entries"],
            kind=form.cleaned_data["kind"], **form.terms())
    except attempt_services.AccessChangeInvalid as error:
        form.add_error(None, error.message)
        return _students_page(request, membership, list_form=form, status=400)
    nothing = not (result.applied or result.pending)
    return _students_page(request, membership, list_form=form if nothing else None, list_result=result,
                          status=400 if nothing else 200)


@require_POST
@resource_view(instructor=True)
def pending_remove(request, membership, pending_id: int):
    if not attempt_services.pending_access_change_remove(resource_id=membership.resource_id, pending_id=pending_id):
        raise Http404("This activity has no such pending access change.")
    messages.success(request, _("Pending access change removed."))
    return redirect("dashboard:students", membership.resource_id)


@require_POST
@resource_view(instructor=True)
def roster_refresh(request, membership):
    """Read the course list from the LMS now (Names and Role Provisioning)."""
    context = membership.resource.context
    if context is None:
        messages.error(request, _("This activity belongs to no course in the LMS, so it has no course list."))
        return redirect("dashboard:students", membership.resource_id)
    result = lti13_services.roster_sync(context=context, limits=nrps.INTERACTIVE)
    if not result.ok:
        messages.error(request, result.error)
    elif result.complete:
        messages.success(request, _(
            "Course list read from the LMS: %(members)d people, %(added)d new, %(removed)d no longer listed.")
            % {"members": result.members, "added": result.added, "removed": result.removed})
    else:
        messages.warning(request, _(
            "The LMS lists more people than this tool reads at once; %(members)d are shown, %(added)d of them "
            "new. Nobody was removed.") % {"members": result.members, "added": result.added})
    return redirect("dashboard:students", membership.resource_id)


def _access_context(*, resource_id: int, user_id: int | None, form: AccessChangeForm | None) -> dict:
    """The access panel of a student page: their change (if any), their effective access and
    the form, filled with the change unless it is being shown again with errors."""
    change = attempt_selectors.access_change_of(resource_id=resource_id, user_id=user_id) if user_id else None
    settings_ = attempt_selectors.resource_settings(resource_id=resource_id)
    access = attempt_selectors.student_access(settings=settings_, change=change)
    if form is None:
        initial = {}
        if change is not None:
            initial = {"extra_attempts": change.extra_attempts, "extra_minutes": change.extra_minutes,
                       "extra_percent": change.extra_percent, "time_limit_off": change.time_limit_off,
                       "reason": change.reason}
            for moment in ("available_from", "available_until", "due_at"):
                initial[moment] = getattr(change, moment) and timezone.localtime(getattr(change, moment))
        form = AccessChangeForm(initial=initial)
    return {"change": change, "settings": settings_, "access": access, "form": form}


def _student_page(request, membership, person, *, form=None, status=200):
    resource_id = membership.resource_id
    attempts = selectors.attempts_of_student(resource_id=resource_id, user_id=person["user_id"])
    marks = grading_selectors.attempt_scores(attempt_ids=[a.pk for a in attempts],
                                             discounts=grading_selectors.discounts_for(resource_id=resource_id))
    for attempt_ in attempts:
        attempt_.marks = marks.get(attempt_.pk)
    return render(request, "dashboard/student.html", {
        "membership": membership, "resource": membership.resource, "person": person,
        **_access_context(resource_id=resource_id, user_id=person["user_id"], form=form),
        "attempts": attempts,
    }, status=status)


def _person(membership, membership_id):
    person = selectors.student_of_resource(resource_id=membership.resource_id, membership_id=membership_id)
    if person is None:
        raise Http404("Nobody with that id has opened this activity.")
    return person


def _access_change_save(request, *, save, page):
    """Validate the access form and save it with `save`; the page again (400) with what is
    wrong, or None when it was saved."""
    form = AccessChangeForm(request.POST)
    if not form.is_valid():
        return page(form=form, status=400)
    try:
        save(**form.terms())
    except attempt_services.AccessChangeInvalid as error:
        form.add_error(None, error.message)
        return page(form=form, status=400)
    return None


@resource_view(instructor=True)
def student(request, membership, membership_id: int):
    return _student_page(request, membership, _person(membership, membership_id))


@require_POST
@resource_view(instructor=True)
def access_change(request, membership, membership_id: int):
    person = _person(membership, membership_id)

    def save(**change):
        attempt_services.access_change_set(resource_id=membership.resource_id, user_id=person["user_id"],
                                           changed_by=request.user, **change)

    page = functools.partial(_student_page, request, membership, person)
    if (failed := _access_change_save(request, save=save, page=page)) is not None:
        return failed
    messages.success(request, _("Access for %(name)s saved. It applies now, also to an exam they have open.")
                     % {"name": person["display_name"]})
    return redirect("dashboard:student", membership.resource_id, membership_id)


def _roster_person(membership, member_id):
    context_id = membership.resource.context_id
    person = None if context_id is None else selectors.roster_student_of_resource(
        resource_id=membership.resource_id, context_id=context_id, member_id=member_id)
    if person is None:
        raise Http404("The course list of this activity's course has no such student.")
    return person


def _roster_student_page(request, membership, person, *, form=None, status=200):
    return render(request, "dashboard/roster_student.html", {
        "membership": membership, "resource": membership.resource, "person": person,
        **_access_context(resource_id=membership.resource_id, user_id=person["person_id"], form=form),
    }, status=status)


@resource_view(instructor=True)
def roster_student(request, membership, member_id: int):
    """A student on the course list: who the LMS says they are, and their access — set ahead
    of their first launch. Once they have opened the activity, their own page."""
    person = _roster_person(membership, member_id)
    if person["membership_id"]:
        return redirect("dashboard:student", membership.resource_id, person["membership_id"])
    return _roster_student_page(request, membership, person)


@require_POST
@resource_view(instructor=True)
def roster_access_change(request, membership, member_id: int):
    person = _roster_person(membership, member_id)

    def save(**change):
        lti13_services.roster_member_access_change_set(resource=membership.resource, member_id=person["pk"],
                                                       changed_by=request.user, **change)

    page = functools.partial(_roster_student_page, request, membership, person)
    if (failed := _access_change_save(request, save=save, page=page)) is not None:
        return failed
    messages.success(request, _("Access for %(name)s saved. It applies from their first launch of this activity.")
                     % {"name": person["display_name"]})
    return redirect("dashboard:roster_student", membership.resource_id, person["pk"])


def _attempt(membership, attempt_id):
    attempt = selectors.attempt_of_resource(resource_id=membership.resource_id, attempt_id=attempt_id)
    if attempt is None:
        raise Http404("This activity has no such attempt.")
    return attempt


def _attempt_page(request, membership, attempt, *, error="", status=200):
    values = grading_selectors.scoring_values(attempt_ids=[attempt.pk]).get(attempt.pk, {})
    overrides = grading_selectors.overrides_for(attempt_ids=[attempt.pk]).get(attempt.pk, {})
    discounts = grading_selectors.discounts_for(resource_id=attempt.resource_id)
    score = grading_selectors.attempt_scores(attempt_ids=[attempt.pk], discounts=discounts)[attempt.pk]
    exam_marks = {p.id: p.raw for q in scoring.questions_from(values) for p in q.parts}
    names = selectors.attempt_names(attempt=attempt)
    events = selectors.attempt_events(attempt_id=attempt.pk)
    questions = [{"id": q.id, "label": names.question(q.id), "raw": q.raw, "max": q.max,
                  "parts": [{"id": p.id, "label": names.part(p.id), "full_label": names.label(p.id), "raw": p.raw,
                             "max": p.max, "exam_mark": exam_marks.get(p.id), "remarked": p.id in overrides}
                            for p in q.parts]}
                 for q in score.questions]
    page_number = _page_number(request.GET.get("page"))
    story = Paginator(selectors.attempt_story(attempt=attempt, names=names, events=events),
                      STORY_PER_PAGE).get_page(page_number)
    key_contains = request.GET.get("key", "").strip()[:100]
    timeline = selectors.attempt_timeline(attempt_id=attempt.pk, page=_page_number(request.GET.get("raw_page")),
                                          key_contains=key_contains)
    as_at, as_at_sequence, as_at_error, as_at_answers = None, None, "", None
    if "seq" in request.GET or "at" in request.GET:
        try:
            if request.GET.get("at"):
                moment = timezone.make_aware(datetime.strptime(request.GET["at"], "%Y-%m-%dT%H:%M"))
                as_at_sequence = selectors.sequence_at(attempt_id=attempt.pk, moment=moment)
            else:
                as_at_sequence = max(0, min(int(request.GET["seq"]), 2**62))
            as_at = selectors.attempt_state_at(attempt_id=attempt.pk, sequence=as_at_sequence)
            as_at_answers = selectors.answers_at(state=as_at, names=names, structure=attempt.exam.structure)
        except (ValueError, OverflowError):
            as_at_error = _("Give a date and time, like 2026-11-25 14:30.")
            status = 400
    return render(request, "dashboard/attempt.html", {
        "membership": membership, "resource": membership.resource, "attempt": attempt, "score": score,
        "questions": questions, "overrides": overrides, "discounts": discounts, "timeline": timeline,
        "story": story, "status_text": selectors.attempt_status(attempt=attempt, events=events),
        "key_contains": key_contains, "as_at": as_at, "as_at_sequence": as_at_sequence, "as_at_error": as_at_error,
        "as_at_answers": as_at_answers, "raw_open": bool(key_contains or "raw_page" in request.GET),
        "error": error,
        "person": selectors.student_of_resource(
            resource_id=membership.resource_id,
            membership_id=selectors.membership_id_of(resource_id=attempt.resource_id, user_id=attempt.user_id)),
    }, status=status)


STORY_PER_PAGE = 200


def _page_number(text) -> int:
    try:
        return max(1, min(int(text or "1"), 10**6))
    except ValueError:
        return 1


def confirm_page(request, *, resource, title, question, action, fields, button, cancel_url, back_label,
                 danger=True):
    """Ask before something that cannot simply be taken back (no script needed): the same POST
    again, with `confirmed`, or back where they came from."""
    return render(request, "dashboard/confirm.html", {
        "resource": resource, "title": title, "question": question, "action": action, "fields": fields,
        "button": button, "danger": danger, "cancel_url": cancel_url, "back_label": back_label,
    })


def _confirm_page(request, membership, attempt, **asked):
    return confirm_page(request, resource=membership.resource,
                        cancel_url=reverse("dashboard:attempt", args=[membership.resource_id, attempt.pk]),
                        back_label=_("Attempt %(number)d") % {"number": attempt.number}, **asked)


@resource_view(instructor=True)
def attempt(request, membership, attempt_id: int):
    return _attempt_page(request, membership, _attempt(membership, attempt_id))


@require_POST
@resource_view(instructor=True)
def remark(request, membership, attempt_id: int):
    attempt_ = _attempt(membership, attempt_id)
    form = RemarkForm(request.POST)
    if not form.is_valid():
        message = " ".join(e for errors in form.errors.values() for e in errors)
        return _attempt_page(request, membership, attempt_, error=message, status=400)
    part_id, score = form.cleaned_data["part"], form.cleaned_data["score"]
    overrides = grading_selectors.overrides_for(attempt_ids=[attempt_.pk]).get(attempt_.pk, {})
    if score is None and part_id in overrides and not form.cleaned_data["confirmed"]:
        label = selectors.attempt_names(attempt=attempt_).label(part_id)
        return _confirm_page(
            request, membership, attempt_, title=_("Remove your mark?"),
            question=_("Remove the mark given by an instructor for %(item)s? The exam's own mark counts again.")
            % {"item": label},
            action=reverse("dashboard:remark", args=[membership.resource_id, attempt_.pk]),
            fields={"part": part_id, "score": "", "reason": form.cleaned_data["reason"]},
            button=_("Remove the mark"))
    if score is None and part_id not in overrides:
        messages.info(request, _("Nothing changed: that part already has the exam's own mark."))
        return redirect("dashboard:attempt", membership.resource_id, attempt_.pk)
    try:
        grading_services.part_remark(attempt=attempt_, part_id=part_id, score=score, by=request.user,
                                     reason=form.cleaned_data["reason"])
    except grading_services.RemarkRefused as refused:
        return _attempt_page(request, membership, attempt_, error=refused.message, status=400)
    messages.success(request, _("Mark saved; the student's grade has been recomputed."))
    return redirect("dashboard:attempt", membership.resource_id, attempt_.pk)


def _action(action, done_message, confirm=None):
    @require_POST
    @resource_view(instructor=True)
    def view(request, membership, attempt_id: int):
        attempt_ = _attempt(membership, attempt_id)
        form = ReasonForm(request.POST)
        if not form.is_valid():
            return _attempt_page(request, membership, attempt_, error=" ".join(form.errors["reason"]), status=400)
        asked = confirm(attempt_) if confirm is not None and not form.cleaned_data["confirmed"] else None
        if asked is not None:
            return _confirm_page(request, membership, attempt_, action=request.path,
                                 fields={"reason": form.cleaned_data["reason"]}, **asked)
        try:
            action(attempt=attempt_, by=request.user, reason=form.cleaned_data["reason"])
        except attempt_services.AttemptActionRefused as refused:
            return _attempt_page(request, membership, attempt_, error=refused.message, status=400)
        messages.success(request, done_message())
        return redirect("dashboard:attempt", membership.resource_id, attempt_.pk)

    view.__name__ = view.__qualname__ = action.__name__.replace("attempt_", "")
    return view


delete = _action(attempt_services.attempt_delete,
                 lambda: _("Attempt deleted. It no longer counts; you can restore it."),
                 confirm=lambda attempt_: None if attempt_.deleted_at else {
                     "title": _("Delete this attempt?"),
                     "question": _("Attempt %(number)d will no longer count towards the student's grade, and the "
                                   "grade is sent again. You can restore it later.") % {"number": attempt_.number},
                     "button": _("Delete the attempt")})
restore = _action(attempt_services.attempt_restore, lambda: _("Attempt restored."))
reopen = _action(attempt_services.attempt_reopen,
                 lambda: _("Attempt reopened: the student can carry on where they were."))
