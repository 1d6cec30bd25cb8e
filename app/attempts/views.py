"""Starting, running and saving attempts. Every view checks the attempt's owner (or an
instructor of its resource, read-only)."""

import json

from django.core.exceptions import RequestDataTooBig

from django.conf import settings
from django.contrib import messages
from django.http import JsonResponse
from django.middleware.csrf import get_token
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from attempts import receipts, selectors, services
from attempts.protocol import ProtocolError, parse_batch
from core import fetch_metadata
from portal.access import resource_view

# The exam runtime's page on the exam-content origin (content/static/content/runtime/).
RUNTIME_PATH = "/runtime/frame.html"


@require_POST
@resource_view(instructor=False)
def start(request, membership):
    try:
        attempt = services.attempt_start(membership=membership)
    except services.AttemptRefused as refused:
        messages.error(request, refused.message)
        return redirect("portal:student", resource_id=membership.resource_id)
    return redirect("attempts:run", attempt_id=attempt.pk)


@require_GET
@resource_view(instructor=True)
def test_runs(request, membership):
    """The instructor's test runs of the activity: start one, resume or review it, remove it."""
    runs = selectors.test_runs_of(resource_id=membership.resource_id, user_id=membership.user_id)
    return render(request, "attempts/test_runs.html", {
        "membership": membership, "resource": membership.resource, "runs": runs,
        "open_run": next((run for run in runs if not run.is_ended), None),
    })


@require_POST
@resource_view(instructor=True)
def test_run_start(request, membership):
    try:
        attempt = services.test_run_start(membership=membership)
    except services.AttemptRefused as refused:
        messages.error(request, refused.message)
        return redirect("attempts:test_runs", resource_id=membership.resource_id)
    return redirect("attempts:run", attempt_id=attempt.pk)


@require_POST
@resource_view(instructor=True)
def test_run_remove(request, membership, attempt_id: int):
    try:
        removal = services.test_run_remove(resource_id=membership.resource_id, attempt_id=attempt_id,
                                           by=request.user)
    except services.AttemptActionRefused as refused:
        return render(request, "attempts/test_runs.html", {
            "membership": membership, "resource": membership.resource, "error": refused.message,
            "runs": selectors.test_runs_of(resource_id=membership.resource_id, user_id=membership.user_id),
        }, status=404)
    messages.success(request, _("Test run %(number)d removed, with everything it saved.") % {"number": removal.number})
    return redirect("attempts:test_runs", resource_id=membership.resource_id)


@require_http_methods(["GET", "POST"])
@resource_view(instructor=False)
def receipt_check(request, membership):
    """"Check a receipt": an instructor pastes any student's receipt code of the activity, a
    student one of theirs; the page says which attempt and score it proves. Reads only."""
    context = {"membership": membership, "resource": membership.resource, "code": ""}
    if request.method == "GET":
        return render(request, "attempts/receipt_check.html", context)
    code = request.POST.get("code", "")[:300]
    context["code"] = code
    if not receipts.receipt_check_allowed(user_id=request.user.pk):
        context["error"] = _("You have checked many receipts in a short time. Wait ten minutes, then try again.")
        return render(request, "attempts/receipt_check.html", context, status=429)
    try:
        result = receipts.receipt_check(code=code, resource_id=membership.resource_id, user_id=request.user.pk,
                                        instructor=membership.is_instructor)
    except receipts.ReceiptInvalid as invalid:
        context["error"] = str(invalid)
        return render(request, "attempts/receipt_check.html", context, status=400)
    settings_ = selectors.resource_settings(resource_id=membership.resource_id)
    context["result"] = result
    context["show_score"] = membership.is_instructor or selectors.score_visible(settings=settings_,
                                                                                attempt=result.attempt)
    return render(request, "attempts/receipt_check.html", context)


@require_POST
def reopen(request, attempt_id: int):
    """The student re-opens their own finished attempt (when the activity allows it)."""
    attempt, access = selectors.attempt_for_user(attempt_id=attempt_id, user=request.user)
    if attempt is None or access != "owner":
        return _not_yours(request, 401 if not request.user.is_authenticated else 403)
    try:
        services.attempt_reopen_by_student(attempt=attempt, user=request.user)
    except services.AttemptActionRefused as refused:
        messages.error(request, refused.message)
        return redirect("portal:student", resource_id=attempt.resource_id)
    return redirect("attempts:run", attempt_id=attempt.pk)


def _not_yours(request, status=403):
    return render(request, "attempts/not_yours.html", {"status": status}, status=status)


@require_GET
@never_cache
def run(request, attempt_id: int):
    """The attempt page: frames the exam runtime on the exam-content origin and saves what the
    exam sends it. Opening it changes nothing: the page takes the attempt over with a POST."""
    attempt, access = selectors.attempt_for_user(attempt_id=attempt_id, user=request.user)
    if attempt is None:
        return _not_yours(request, 401 if not request.user.is_authenticated else 403)
    review = access != "owner" or attempt.is_ended
    if review and access == "owner":
        settings_ = selectors.resource_settings(resource_id=attempt.resource_id)
        if not selectors.review_open(settings=settings_):
            return render(request, "attempts/no_review.html", {"attempt": attempt, "settings": settings_}, status=403)
    config = {
        "attemptId": attempt.pk,
        "mode": "review" if review else "normal",
        # Opened from this site (or typed, bookmarked, reloaded): take over at once; opened from
        # another site, the student is asked first.
        "takeOverAtOnce": fetch_metadata.is_same_origin_navigation(request),
        "takeOverUrl": reverse("attempts:take_over", kwargs={"attempt_id": attempt.pk}),
        "stateUrl": reverse("attempts:state", kwargs={"attempt_id": attempt.pk}),
        "batchUrl": reverse("attempts:batches", kwargs={"attempt_id": attempt.pk}),
        "socketPath": f"/ws/attempt/{attempt.pk}/",
        "examOrigin": settings.EXAM_ORIGIN,
        "runtimePath": RUNTIME_PATH,
        "examPath": attempt.exam.launch_path,
        "backUrl": reverse("attempts:test_runs" if attempt.is_test_run else "portal:student",
                           kwargs={"resource_id": attempt.resource_id}),
        "csrfToken": get_token(request),
    }
    return render(request, "attempts/run.html", {"attempt": attempt, "config": config, "review": review,
                                                 **(_mark_changes(attempt, access) if review else {})})


def _mark_changes(attempt, access: str) -> dict:
    """For the review: marks an instructor changed after the exam gave them (the exam's own
    review shows what it stored), with the numbers when the student may see marks."""
    from grading import selectors as grading_selectors

    changes = grading_selectors.attempt_mark_changes(attempt=attempt)
    if changes is None:
        return {}
    shown = access == "instructor" or selectors.score_visible(
        settings=selectors.resource_settings(resource_id=attempt.resource_id), attempt=attempt)
    return {"mark_changes": changes, "mark_numbers": shown}


@require_POST
def take_over(request, attempt_id: int):
    """This window becomes the one that writes the attempt: a new writer token, and any other
    window of it is told to stop. A POST with the CSRF token, so no other site can do it."""
    attempt, access = selectors.attempt_for_user(attempt_id=attempt_id, user=request.user)
    if attempt is None or access != "owner":
        status = 401 if not request.user.is_authenticated else 403
        return JsonResponse({"error": {"code": "forbidden", "message": _("This attempt is not yours.")}}, status=status)
    if attempt.is_ended:
        return JsonResponse({"error": {"code": "ended", "message": _("This attempt has ended.")}}, status=409)
    try:
        token = services.attempt_take_over(attempt=attempt)
    except services.AttemptRefused as refused:  # its closing time or time limit has passed
        return JsonResponse({"error": {"code": "closed", "message": refused.message}}, status=409)
    # The exam this window should run: another version's when an instructor has moved the attempt.
    return JsonResponse({"token": token, "examPath": attempt.exam.launch_path})


@require_GET
@never_cache
def state(request, attempt_id: int):
    """What the SCORM API starts from: current values and the learner's details."""
    attempt, access = selectors.attempt_for_user(attempt_id=attempt_id, user=request.user)
    if attempt is None:
        return JsonResponse({"error": _("This attempt is not yours.")}, status=401 if not request.user.is_authenticated else 403)
    values, next_sequence = selectors.attempt_values(attempt_id=attempt.pk)
    review = access != "owner" or attempt.is_ended
    has_suspend = bool(values.get("cmi.suspend_data"))
    entry = "resume" if (values.get("cmi.exit") == "suspend" or has_suspend) and not review else ""
    shown = selectors.exam_display_values(attempt=attempt, access=access)
    return JsonResponse(
        {
            "values": values,
            "next_sequence": next_sequence,
            "entry": entry if values else "ab-initio",
            "mode": "review" if review else "normal",
            "learner_id": shown["learner_id"],
            "learner_name": shown["learner_name"],
            "numbas": {**shown["numbas"],
                       **selectors.numbas_keys(access=selectors.student_access_of(
                           resource_id=attempt.resource_id, user_id=attempt.user_id))},
        }
    )


@require_POST
def batches(request, attempt_id: int):
    """HTTP fallback for the websocket: store one batch, answer after it is committed."""
    if not request.user.is_authenticated:
        return JsonResponse({"error": {"code": "not_authenticated", "message": _("Please open the exam from your course again.")}}, status=401)
    too_large = JsonResponse({"error": {"code": "too_large", "message": _("The batch is too large; send it in smaller pieces.")}},
                             status=413)
    try:
        body = request.body
    except RequestDataTooBig:  # over DATA_UPLOAD_MAX_MEMORY_SIZE
        return too_large
    if len(body) > settings.ATTEMPT_MAX_BATCH_CHARS * 2:
        return too_large
    try:
        batch = parse_batch(json.loads(body or b"null"))
    except RecursionError:  # nesting deeper than any batch
        return JsonResponse({"error": {"code": "invalid", "message": _("The batch is not valid JSON.")}}, status=400)
    except ValueError as error:  # ProtocolError is a ValueError; so is invalid JSON
        code = error.code if isinstance(error, ProtocolError) else "invalid"
        message = error.message if isinstance(error, ProtocolError) else _("The batch is not valid JSON.")
        return JsonResponse({"error": {"code": code, "message": message}}, status=413 if code == "too_large" else 400)
    try:
        result = services.batch_store(attempt_id=attempt_id, user_id=request.user.pk, batch=batch)
    except services.BatchRefused as refused:
        status = {"forbidden": 403, "batch_reused": 409, "taken_over": 409, "ended": 409, "closed": 409}[refused.code]
        return JsonResponse({"error": {"code": refused.code, "message": refused.message}, "batch": batch.batch_id}, status=status)
    return JsonResponse({"ack": batch.batch_id, "stored": result.stored, "ended": result.ended})
