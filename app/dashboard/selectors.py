"""Reads for the instructor's students pages: everyone who opened a resource, with their
attempts, grade and last activity, and the course's students from the LMS's course list (LTI
Names and Role Provisioning) who have not opened it yet — one query per page, whatever the size
of the course."""

from __future__ import annotations

from dataclasses import dataclass

from django.core.paginator import Paginator
from django.db.models import (
    BigIntegerField, CharField, Count, DateTimeField, Exists, F, FloatField, IntegerField, Max,
    OuterRef, Q, QuerySet, Subquery, Value,
)
from django.db import connection
from django.db.models.functions import Coalesce, Concat, Greatest, Left, Length, Lower, NullIf, Trim

from attempts.models import AccessChange, Attempt, AttemptEvent, ElementChange
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
