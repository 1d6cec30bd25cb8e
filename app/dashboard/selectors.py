"""Reads for the instructor's students pages: everyone who opened a resource, with their
attempts, grade and last activity, and the course's students from the LMS's course list (LTI
Names and Role Provisioning) who have not opened it yet — one query per page, whatever the size
of the course."""

from __future__ import annotations

import re
from dataclasses import dataclass

from django.core.paginator import Paginator
from django.db.models import (
    BigIntegerField, CharField, Count, DateTimeField, Exists, F, FloatField, IntegerField, Max,
    OuterRef, Q, QuerySet, Subquery, Value,
)
from django.db import connection
from django.db.models.functions import Coalesce, Concat, Greatest, Left, Length, Lower, NullIf, Trim

from django.utils.translation import gettext, ngettext

from attempts.models import AccessChange, Attempt, AttemptEvent, AttemptEventKind, Element, ElementChange
from lms import selectors as lms_selectors
from lms.models import IdentifierField, ResourceMembership, Role
from lti13.models import RosterMember, RosterStatus

PER_PAGE = 50
MAX_QUERY = 200

# sort key -> (expression name, default direction)
SORTS = {
    "name": ("sort_name", "asc"),
    "attempts": ("attempt_count", "desc"),
    "grade": ("grade", "desc"),
    "delivery": ("grade_state", "asc"),
    "activity": ("last_activity", "desc"),
}


@dataclass(frozen=True)
class StudentQuery:
    search: str = ""
    sort: str = "name"
    direction: str = "asc"
    page: int = 1

    @classmethod
    def from_params(cls, params) -> "StudentQuery":
        """Anything unexpected falls back to the default rather than failing."""
        sort = params.get("sort", "name")
        sort = sort if sort in SORTS else "name"
        direction = params.get("dir", SORTS[sort][1])
        direction = direction if direction in ("asc", "desc") else SORTS[sort][1]
        try:
            page = max(1, min(int(params.get("page", "1")), 10**6))
        except ValueError:
            page = 1
        return cls(search=params.get("q", "").strip()[:MAX_QUERY], sort=sort, direction=direction, page=page)


def _students(resource_id: int) -> QuerySet:
    identifier = lms_selectors.identifier_expression(lms_selectors.identifier_field_for(resource_id=resource_id))
    attempts = Attempt.objects.filter(resource_id=OuterRef("resource_id"), user_id=OuterRef("user_id"))
    counted = attempts.order_by().values("user_id").annotate(n=Count("id")).values("n")
    last_saved = attempts.order_by().values("user_id").annotate(m=Max("last_saved_at")).values("m")
    in_progress = attempts.filter(ended_at__isnull=True).order_by().values("user_id").annotate(n=Count("id")).values("n")
    return (
        ResourceMembership.objects.filter(resource_id=resource_id)
        .annotate(
            display_name=Coalesce(
                NullIf(Trim(Concat("user__first_name", Value(" "), "user__last_name")), Value("")),
                NullIf(F("user__lti_identity__full_name"), Value("")),
                "user__username",
            ),
            sort_name=Lower("display_name"),
            email=Coalesce(NullIf(F("user__email"), Value("")), F("user__lti_identity__email"), Value("")),
            lti_user_id=F("user__lti_identity__lti_user_id"),
            identifier=identifier,
            attempt_count=Coalesce(Subquery(counted, output_field=IntegerField()), Value(0)),
            attempts_open=Coalesce(Subquery(in_progress, output_field=IntegerField()), Value(0)),
            last_activity=Greatest("last_launched_at", Coalesce(Subquery(last_saved), "last_launched_at")),
            grade=F("grade_report__score"),
            grade_state=F("grade_report__state"),
            grade_error=F("grade_report__last_error"),
            has_access_change=Exists(AccessChange.objects.filter(resource_id=resource_id, user_id=OuterRef("user_id"))),
        )
    )


#: The columns of a row of the students page, in the order both kinds of row give them.
ROW = ("pk", "user_id", "role", "display_name", "sort_name", "email", "lti_user_id", "identifier", "attempt_count",
       "attempts_open",
       "last_activity", "grade", "grade_state", "grade_error", "has_access_change", "roster_status", "roster_id")


def _not_launched(*, resource_id: int, context_id: int) -> QuerySet:
    """The course list's students (not its instructors, nor those it lists as deleted) who
    have not opened this resource."""
    opened = ResourceMembership.objects.filter(resource_id=resource_id, user_id=OuterRef("identity__user_id"))
    return (RosterMember.objects.filter(context_id=context_id, is_instructor=False)
            .exclude(status=RosterStatus.DELETED).exclude(Exists(opened)))


def _roster_name():
    """A course-list member's name: as the LMS gave it, else their given and family names,
    else their LMS user id."""
    return Coalesce(NullIf(F("name"), Value("")),
                    NullIf(Trim(Concat("given_name", Value(" "), "family_name")), Value("")), "user_id")


def _roster_access_changed(resource_id: int) -> Exists:
    """Whether a course-list member was given an access change here ahead of their launch."""
    return Exists(AccessChange.objects.filter(resource_id=resource_id, user_id=OuterRef("identity__user_id")))


def _roster_identifier(field: str):
    """A course-list member's chosen identifier: what the list says (e-mail, LMS user id), else
    what their identity says once they are known."""
    if field == IdentifierField.EMAIL:
        return Coalesce(NullIf(F("email"), Value("")), Value(""))
    if field == IdentifierField.LMS_USER_ID:
        return F("user_id")
    return Coalesce(F(f"identity__{field}"), Value(""))


def _not_launched_rows(rows: QuerySet, *, resource_id: int) -> QuerySet:
    """Course-list rows with the columns of `ROW` (each under a name of its own: only their
    order counts in a UNION)."""
    none = {"r_pk": BigIntegerField(), "r_user": IntegerField(), "r_activity": DateTimeField(),
            "r_grade": FloatField(), "r_state": CharField(), "r_error": CharField()}
    return rows.annotate(
        **{name: Value(None, output_field=kind) for name, kind in none.items()},
        r_role=Value(Role.STUDENT, output_field=CharField()),
        r_name=_roster_name(), r_sort=Lower("r_name"), r_lti_user_id=F("user_id"),
        r_identifier=_roster_identifier(lms_selectors.identifier_field_for(resource_id=resource_id)),
        r_attempts=Value(0, output_field=IntegerField()), r_open=Value(0, output_field=IntegerField()),
        r_change=_roster_access_changed(resource_id), r_status=F("status"),
    ).values("r_pk", "r_user", "r_role", "r_name", "r_sort", "email", "r_lti_user_id", "r_identifier", "r_attempts",
             "r_open",
             "r_activity", "r_grade", "r_state", "r_error", "r_change", "r_status", "id")


def students_page(*, resource_id: int, query: StudentQuery, per_page: int = PER_PAGE, context_id: int | None = None):
    """The page of the resource's people the query asks for (searched, sorted) and its
    paginator. With the resource's course (`context_id`), the course list's students who have
    not opened the resource are among them (`pk` None, `roster_status` their status)."""
    rows = _students(resource_id)
    if context_id is not None:
        rows = rows.annotate(roster_status=Subquery(RosterMember.objects.filter(
            context_id=context_id, identity__user_id=OuterRef("user_id")).values("status")[:1]))
    else:
        rows = rows.annotate(roster_status=Value(None, output_field=CharField()))
    rows = rows.annotate(roster_id=Value(None, output_field=BigIntegerField()))
    if query.search:
        term = query.search
        rows = rows.filter(
            Q(user__first_name__icontains=term) | Q(user__last_name__icontains=term)
            | Q(user__email__icontains=term) | Q(user__lti_identity__full_name__icontains=term)
            | Q(user__lti_identity__lti_user_id__iexact=term) | Q(user__username__iexact=term)
            | Q(user__lti_identity__username__iexact=term) | Q(user__lti_identity__sourcedid__iexact=term)
        )
    rows = rows.values(*ROW)
    if context_id is not None:
        listed = _not_launched(resource_id=resource_id, context_id=context_id)
        if query.search:
            term = query.search
            listed = listed.filter(Q(name__icontains=term) | Q(given_name__icontains=term)
                                   | Q(family_name__icontains=term) | Q(email__icontains=term)
                                   | Q(user_id__iexact=term))
        rows = rows.union(_not_launched_rows(listed, resource_id=resource_id), all=True)
    field, _ = SORTS[query.sort]
    ordering = F(field).asc(nulls_last=True) if query.direction == "asc" else F(field).desc(nulls_last=True)
    rows = rows.order_by(ordering, F("pk").asc(nulls_last=True), "roster_id")
    paginator = Paginator(rows, per_page)
    page = paginator.get_page(query.page)
    return page


def not_launched_count(*, resource_id: int, context_id: int) -> int:
    """How many of the course list's students have not opened the resource."""
    return _not_launched(resource_id=resource_id, context_id=context_id).count()


def student_of_resource(*, resource_id: int, membership_id: int) -> dict | None:
    """One person's row (as on the students page), or None if they are not of this resource."""
    return _students(resource_id).filter(pk=membership_id).annotate(
        lms_username=F("user__lti_identity__username"), sourcedid=F("user__lti_identity__sourcedid"),
    ).values(
        "pk", "user_id", "role", "display_name", "email", "lti_user_id", "lms_username", "sourcedid", "identifier",
        "attempt_count",
        "attempts_open", "last_activity", "grade", "grade_state", "grade_error", "has_access_change", "last_launched_at",
        "first_launched_at",
    ).first()


def roster_student_of_resource(*, resource_id: int, context_id: int, member_id: int) -> dict | None:
    """A student on the course list of the resource's course (`context_id`), as the LMS listed
    them — whether or not they have opened the resource (`membership_id`, else None) — or
    None if the list has no such student."""
    opened = ResourceMembership.objects.filter(resource_id=resource_id, user_id=OuterRef("identity__user_id"))
    return (RosterMember.objects.filter(pk=member_id, context_id=context_id, is_instructor=False)
            .exclude(status=RosterStatus.DELETED)
            .annotate(display_name=_roster_name(), lti_user_id=F("user_id"), person_id=F("identity__user_id"),
                      membership_id=Subquery(opened.values("pk")[:1]),
                      has_access_change=_roster_access_changed(resource_id))
            .values("pk", "display_name", "email", "lti_user_id", "status",
                    "fetched_at", "person_id", "membership_id", "has_access_change")
            .first())


def membership_id_of(*, resource_id: int, user_id: int) -> int:
    return ResourceMembership.objects.filter(resource_id=resource_id, user_id=user_id).values_list(
        "pk", flat=True).first() or 0


# --- one attempt, for its instructor ------------------------------------------------------------

TIMELINE_PER_PAGE = 200
VALUE_PREVIEW = 300


def attempt_of_resource(*, resource_id: int, attempt_id: int) -> Attempt | None:
    """The attempt (deleted ones too), if it belongs to this resource."""
    if not 0 < attempt_id < 2**63:
        return None
    return (Attempt.all_objects.filter(pk=attempt_id, resource_id=resource_id)
            .select_related("user", "user__lti_identity", "exam").first())


def attempt_timeline(*, attempt_id: int, page: int = 1, key_contains: str = ""):
    """Every change the exam made, in order, with when the server received it."""
    rows = ElementChange.objects.filter(attempt_id=attempt_id)
    if key_contains:
        rows = rows.filter(key__contains=key_contains[:100])
    rows = (rows.order_by("sequence", "id")
            .annotate(received_at=F("batch__received_at"), preview=Left("value", VALUE_PREVIEW),
                      length=Length("value"))
            .values("sequence", "key", "preview", "length", "client_time", "received_at"))
    return Paginator(rows, TIMELINE_PER_PAGE).get_page(page)


def sequence_at(*, attempt_id: int, moment) -> int:
    """The last change the server had received at `moment` (0: none yet)."""
    return (ElementChange.objects.filter(attempt_id=attempt_id, batch__received_at__lte=moment)
            .aggregate(m=Max("sequence"))["m"] or 0)


def attempt_state_at(*, attempt_id: int, sequence: int) -> dict[str, str]:
    """Every key's value as it was once the change numbered `sequence` had been made."""
    rows = ElementChange.objects.filter(attempt_id=attempt_id, sequence__lte=sequence)
    if connection.vendor == "postgresql":
        latest = rows.order_by("key", "-sequence", "-id").distinct("key").values_list("key", "value")
        return dict(latest)
    state: dict[str, tuple[int, str]] = {}
    for key, value, seq in rows.values_list("key", "value", "sequence").iterator():
        if key not in state or state[key][0] <= seq:
            state[key] = (seq, value)
    return {key: value for key, (_, value) in sorted(state.items())}


def attempt_events(*, attempt_id: int):
    return list(AttemptEvent.objects.filter(attempt_id=attempt_id).select_related("by"))


def attempts_of_student(*, resource_id: int, user_id: int) -> list[Attempt]:
    """Deleted ones too (marked), for the instructor."""
    return list(Attempt.all_objects.filter(resource_id=resource_id, user_id=user_id, is_test_run=False)
                .select_related("exam")
                .order_by("number"))


# --- one attempt in plain words ------------------------------------------------------------------

def attempt_names(*, attempt):
    """Names for the attempt's questions, parts and gaps: what the exam stored for it (right for
    shuffled or picked questions), else its exam version's structure."""
    from dashboard.names import ItemNames

    values = dict(Element.objects.filter(attempt_id=attempt.pk, key__startswith="cmi.objectives.")
                  .filter(Q(key__endswith=".id") | Q(key__endswith=".description")).values_list("key", "value"))
    return ItemNames(attempt.exam.structure, values)


def attempt_status(*, attempt, events) -> str:
    """The attempt's state in plain words."""
    if attempt.deleted_at:
        return gettext("Deleted")
    if attempt.ended_at is None:
        if any(e.kind == AttemptEventKind.REOPENED for e in events):
            return gettext("In progress (reopened)")
        return gettext("In progress")
    endings = [e.kind for e in events if e.kind in (AttemptEventKind.ENDED_AT_DEADLINE, AttemptEventKind.REOPENED)]
    if endings and endings[-1] == AttemptEventKind.ENDED_AT_DEADLINE:
        return gettext("Ended by the closing time or time limit")
    return gettext("Finished")


_STORY_KEYS = r"^cmi\.(completion_status|score\.(raw|max)|interactions\.[0-9]+\.(id|learner_response|result|weighting))$"
_INTERACTION_KEY = re.compile(r"^cmi\.interactions\.(\d+)\.(id|learner_response|result|weighting)$")
ANSWER_PREVIEW = 200


@dataclass
class StoryLine:
    at: object
    text: str
    kind: str  # "exam", "answer", "ended", "instructor", "access"
    sequence: int | None = None  # the last change it covers, for "the attempt as it was then"
    item: str = ""


def _mark_text(raw, max_) -> str:
    from core.templatetags.marks import marks

    if max_ is None:
        return ngettext("%(raw)s mark", "%(raw)s marks", 1 if raw == 1 else 2) % {"raw": marks(raw)}
    return ngettext("%(raw)s/%(max)s mark", "%(raw)s/%(max)s marks", 1 if max_ == 1 else 2) % {
        "raw": marks(raw), "max": marks(max_)}


def _answer_text(value: str) -> str:
    value = " ".join(value.split())
    return value if len(value) <= ANSWER_PREVIEW else value[:ANSWER_PREVIEW] + "…"


def _number_or_none(text):
    try:
        value = float(text)
    except (TypeError, ValueError):
        return None
    return value if value == value and abs(value) != float("inf") else None


def _exam_story(*, attempt, names) -> list[StoryLine]:
    """What the student did, from the changes the exam saved: answers with their marks, the
    exam ending — one line each, in order."""
    rows = (ElementChange.objects.filter(attempt_id=attempt.pk, key__regex=_STORY_KEYS)
            .order_by("sequence", "id")
            .values_list("batch_id", "batch__received_at", "sequence", "key", Left("value", 2000)))
    lines: list[StoryLine] = []
    ids: dict[int, str] = {}
    weights: dict[int, float | None] = {}
    results: dict[int, float | None] = {}
    responses: dict[int, str] = {}
    last_line: dict[int, StoryLine] = {}
    completion = ""
    score: dict[str, float | None] = {}
    batch = None
    touched: dict[int, bool] = {}  # interaction -> its answer changed in this batch
    at = seq = None

    def flush():
        for index, answered in touched.items():
            pid = ids.get(index)
            if not pid:
                continue
            label = names.label(pid)
            result = results.get(index)
            if answered:
                if not responses.get(index, "").strip():
                    text = gettext("%(item)s: answer cleared") % {"item": label}
                else:
                    text = gettext("%(item)s: answered %(answer)s — %(marks)s") % {
                        "item": label, "answer": _answer_text(responses[index]),
                        "marks": _mark_text(result or 0, weights.get(index))}
                line = StoryLine(at, text, "answer", seq, pid)
                lines.append(line)
                last_line[index] = line
            elif responses.get(index, "").strip():
                text = gettext("%(item)s: marked again — %(marks)s") % {
                    "item": label, "marks": _mark_text(result or 0, weights.get(index))}
                previous = last_line.get(index)
                if previous is not None and lines and lines[-1] is previous:
                    # the marks of the answer just given, saved a moment later
                    previous.text = gettext("%(item)s: answered %(answer)s — %(marks)s") % {
                        "item": label, "answer": _answer_text(responses[index]),
                        "marks": _mark_text(result or 0, weights.get(index))}
                    previous.sequence = seq
                else:
                    line = StoryLine(at, text, "answer", seq, pid)
                    lines.append(line)
                    last_line[index] = line
        touched.clear()

    for batch_id, received_at, sequence, key, value in rows.iterator(chunk_size=2000):
        if batch_id != batch:
            flush()
            batch = batch_id
        at, seq = received_at, sequence
        match = _INTERACTION_KEY.match(key)
        if match:
            index, field = int(match[1]), match[2]
            if field == "id":
                ids[index] = value
            elif field == "weighting":
                weights[index] = _number_or_none(value)
            elif field == "learner_response":
                if value != responses.get(index, ""):
                    responses[index] = value
                    touched[index] = True
            elif field == "result":
                number = _number_or_none(value)
                if number != results.get(index):
                    results[index] = number
                    touched.setdefault(index, False)
        elif key == "cmi.completion_status":
            if value == "completed" and completion != "completed":
                flush()
                if score.get("raw") is not None:
                    text = gettext("Exam ended — %(marks)s") % {"marks": _mark_text(score["raw"], score.get("max"))}
                else:
                    text = gettext("Exam ended")
                lines.append(StoryLine(received_at, text, "ended", sequence))
            completion = value
        elif key in ("cmi.score.raw", "cmi.score.max"):
            score[key.rsplit(".", 1)[1]] = _number_or_none(value)
    flush()
    return lines


def _terms_text(change) -> str:
    from django.utils import formats, timezone

    def when(moment):
        return formats.date_format(timezone.localtime(moment), "j M Y H:i")

    pieces = []
    if change.extra_attempts:
        pieces.append(ngettext("%(n)d extra attempt", "%(n)d extra attempts", change.extra_attempts)
                      % {"n": change.extra_attempts})
    if change.available_from:
        pieces.append(gettext("opens %(when)s") % {"when": when(change.available_from)})
    if change.available_until:
        pieces.append(gettext("closes %(when)s") % {"when": when(change.available_until)})
    if change.due_at:
        pieces.append(gettext("due %(when)s") % {"when": when(change.due_at)})
    if change.extra_minutes:
        pieces.append(ngettext("%(n)d extra minute", "%(n)d extra minutes", change.extra_minutes)
                      % {"n": change.extra_minutes})
    if change.extra_percent:
        pieces.append(gettext("%(n)d %% more exam time") % {"n": change.extra_percent})
    if change.time_limit_off:
        pieces.append(gettext("no time limit"))
    return ", ".join(pieces) or gettext("nothing different")


def _who(user) -> str:
    if user is None:
        return gettext("Someone")
    return user.get_full_name() or user.get_username()


def _event_text(event, names) -> str:
    from core.templatetags.marks import marks

    detail = event.detail or {}
    who = _who(event.by)
    if event.kind == AttemptEventKind.REMARKED and detail.get("part"):
        before = detail.get("before")
        before = detail.get("exam_mark") if before is None else before
        after = detail.get("after")
        return gettext("%(who)s re-marked %(item)s: %(before)s → %(after)s") % {
            "who": who, "item": names.label(detail["part"]), "before": marks(before),
            "after": marks(after) if after is not None else gettext("the exam's own mark")}
    if event.kind == AttemptEventKind.REMARKED and detail.get("remark_run"):
        before, after = detail.get("before") or {}, detail.get("after") or {}
        return gettext("%(who)s re-marked all attempts with version %(version)s of the exam: total "
                       "%(before)s → %(after)s") % {
            "who": who, "version": detail.get("exam_version", "?"),
            "before": marks(before.get("raw")), "after": marks(after.get("raw"))}
    if event.kind == AttemptEventKind.DELETED:
        return gettext("%(who)s deleted the attempt") % {"who": who}
    if event.kind == AttemptEventKind.RESTORED:
        return gettext("%(who)s restored the attempt") % {"who": who}
    if event.kind == AttemptEventKind.REOPENED:
        return gettext("%(who)s reopened the attempt") % {"who": who}
    if event.kind == AttemptEventKind.ENDED_AT_DEADLINE:
        return gettext("Exam ended by the closing time or time limit")
    if event.kind == AttemptEventKind.MOVED:
        return gettext("%(who)s moved the attempt to version %(to)s of the exam (from version %(from)s)") % {
            "who": who, "to": detail.get("to_version", "?"), "from": detail.get("from_version", "?")}
    return str(event.get_kind_display())


def attempt_story(*, attempt, names, events) -> list[StoryLine]:
    """The attempt's timeline in plain words: it starting, each answer with its marks, it
    ending, and what instructors did (re-marks, deletion, reopening, moves, access changes),
    in order of time."""
    lines = [StoryLine(attempt.started_at, gettext("Exam started"), "exam", 0)]
    lines += _exam_story(attempt=attempt, names=names)
    for event in events:
        text = _event_text(event, names)
        if event.reason:
            text = gettext("%(text)s (%(reason)s)") % {"text": text, "reason": event.reason}
        lines.append(StoryLine(event.at, text, "ended" if event.kind == AttemptEventKind.ENDED_AT_DEADLINE
                               else "instructor"))
    if attempt.ended_at and not any(line.kind == "ended" for line in lines):
        lines.append(StoryLine(attempt.ended_at, gettext("Exam ended"), "ended"))
    change = AccessChange.objects.filter(resource_id=attempt.resource_id, user_id=attempt.user_id).select_related(
        "changed_by").first()
    if change is not None and change.changed_at:
        text = gettext("%(who)s changed this student's access: %(terms)s") % {
            "who": _who(change.changed_by), "terms": _terms_text(change)}
        if change.reason:
            text = gettext("%(text)s (%(reason)s)") % {"text": text, "reason": change.reason}
        lines.append(StoryLine(change.changed_at, text, "access"))
    lines.sort(key=lambda line: line.at)
    return lines


@dataclass
class PartAnswer:
    id: str
    label: str
    answer: str
    raw: float
    max: float


@dataclass
class QuestionAnswers:
    id: str
    label: str
    raw: float
    max: float
    parts: list


def answers_at(*, state: dict[str, str], names, structure=None) -> list[QuestionAnswers]:
    """The attempt at one moment as the exam's questions: each part's answer and marks."""
    from grading import scoring

    questions = scoring.questions_from(state)
    if structure and questions:
        questions = scoring.with_structure(questions, structure)
    responses: dict[str, str] = {}
    found: dict[int, dict[str, str]] = {}
    for key, value in state.items():
        match = _INTERACTION_KEY.match(key)
        if match and match[2] in ("id", "learner_response"):
            found.setdefault(int(match[1]), {})[match[2]] = value
    for item in found.values():
        if item.get("id"):
            responses[item["id"]] = item.get("learner_response", "")
    return [QuestionAnswers(q.id, names.question(q.id), q.raw, q.max,
                            [PartAnswer(p.id, names.part(p.id), _answer_text(responses.get(p.id, "")), p.raw, p.max)
                             for p in q.parts])
            for q in questions]
