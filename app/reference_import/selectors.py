"""Reads for the import's closing check: counts and scores per activity, in the reference and
here, side by side. Any difference fails the import (the command exits non-zero)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from attempts.models import AccessChange, Attempt, ElementChange, PartOverride, PendingAccessChange
from grading import selectors as grading_selectors
from grading.models import GradeReport
from lms.models import Consumer, Context, LtiIdentity, ResourceMembership
from reference_import.models import IMPORT_BATCH_PREFIX, ImportLink, Kind
from reference_import.reference import Reference

SCORE_TOLERANCE = 1e-6


@dataclass
class Check:
    lines: list = field(default_factory=list)  # (what, reference, here, ok)
    differences: list = field(default_factory=list)

    def compare(self, what: str, reference, here, ok: bool | None = None) -> None:
        ok = (reference == here) if ok is None else ok
        self.lines.append((what, reference, here, ok))
        if not ok:
            self.differences.append(f"{what}: reference {reference}, here {here}")


def _links(kind: str) -> dict[int, str]:
    return dict(ImportLink.objects.filter(kind=kind).values_list("reference_pk", "local_pk"))


def compare(reference: Reference) -> Check:
    check = Check()
    consumers = _links(Kind.CONSUMER)
    check.compare("LMS consumers", reference.count("numbas_lti_lticonsumer"),
                  Consumer.objects.filter(pk__in=[int(v) for v in consumers.values()]).count())
    check.compare("courses", reference.count("numbas_lti_lticontext"),
                  Context.objects.filter(pk__in=[int(v) for v in _links(Kind.CONTEXT).values()]).count())
    check.compare("LTI 1.3 registrations", reference.count("numbas_lti_lti_13_consumer"), len(_links(Kind.PLATFORM)))
    check.compare("people", reference.count("auth_user"), len(_links(Kind.USER)))
    aliases = reference.count("numbas_lti_lti_11_useralias") + reference.count("numbas_lti_lti_13_useralias")
    imported_users = [int(v) for v in _links(Kind.USER).values()]
    check.compare("LMS identities", aliases, LtiIdentity.objects.filter(user_id__in=imported_users).count())
    check.compare("discounts", reference.count("numbas_lti_discountpart"), len(_links(Kind.DISCOUNT)))
    check.compare("re-marked parts", reference.count("numbas_lti_remarkpart"), len(_links(Kind.REMARK)))
    check.compare("access changes", reference.count("numbas_lti_accesschange"), len(_links(Kind.ACCESS_CHANGE)))

    resources = _links(Kind.RESOURCE)
    check.compare("activities", reference.count("numbas_lti_resource"), len(resources))
    ref_attempts = reference.rows(
        "SELECT a.id, a.resource_id, a.deleted, a.scaled_score, (SELECT count(*) FROM numbas_lti_scormelement e "
        "WHERE e.attempt_id = a.id) AS elements FROM numbas_lti_attempt a ORDER BY a.id")
    attempt_links = _links(Kind.ATTEMPT)
    local_ids = [int(v) for v in attempt_links.values()]
    element_counts = defaultdict(int)
    # What was imported (the import's batch of each attempt), not what this service stored since
    # (an attempt the minute task ended at its deadline, answers given here after the move).
    for attempt_id in ElementChange.objects.filter(attempt_id__in=local_ids, batch__batch_id__startswith=IMPORT_BATCH_PREFIX
                                                   ).values_list("attempt_id", flat=True):
        element_counts[attempt_id] += 1
    local = {a.pk: a for a in Attempt.all_objects.filter(pk__in=local_ids)}
    exams = {pk: int(v) for pk, v in resources.items()}
    ref_exams = defaultdict(int)
    for row in reference.rows("SELECT resource_id, count(*) AS n FROM numbas_lti_exam GROUP BY resource_id"):
        ref_exams[row["resource_id"]] = row["n"]
    from exams.models import ExamPackage

    ref_rows_by_resource = defaultdict(list)
    for row in ref_attempts:
        ref_rows_by_resource[row["resource_id"]].append(row)
    titles = {r["id"]: r["title"] for r in reference.rows("SELECT id, title FROM numbas_lti_resource")}
    for ref_resource, local_resource in sorted(exams.items()):
        name = f"activity {ref_resource} ({titles.get(ref_resource, '')})"
        rows = ref_rows_by_resource[ref_resource]
        discounts = grading_selectors.discounts_for(resource_id=local_resource)
        ours = [local.get(int(attempt_links[r["id"]])) if r["id"] in attempt_links else None for r in rows]
        check.compare(f"{name}: exam versions", ref_exams[ref_resource],
                      ExamPackage.objects.filter(resource_id=local_resource).count())
        check.compare(f"{name}: attempts", sum(not r["deleted"] for r in rows),
                      Attempt.objects.filter(resource_id=local_resource).count())
        check.compare(f"{name}: deleted attempts", sum(bool(r["deleted"]) for r in rows),
                      Attempt.all_objects.filter(resource_id=local_resource, deleted_at__isnull=False,
                                                 is_test_run=False).count())
        check.compare(f"{name}: stored values (SCORM data history)", sum(r["elements"] for r in rows),
                      sum(element_counts[a.pk] for a in ours if a is not None))
        scores = grading_selectors.attempt_scores(attempt_ids=[a.pk for a in ours if a is not None],
                                                  discounts=discounts)
        wrong = []
        ref_total = here_total = 0.0
        for row, attempt in zip(rows, ours):
            theirs = row["scaled_score"] or 0.0
            mine = (scores[attempt.pk].scaled if attempt is not None and attempt.pk in scores else None) or 0.0
            ref_total += theirs
            here_total += mine
            if attempt is None or abs(theirs - mine) > SCORE_TOLERANCE:
                wrong.append(f"attempt {row['id']}: reference {theirs:.6g}, here {mine:.6g}")
        check.compare(f"{name}: total of attempt scores", round(ref_total, 6), round(here_total, 6), ok=not wrong)
        check.differences.extend(f"{name}: {w}" for w in wrong)
        members = reference.rows(
            "SELECT u.user_id, u.last_reported_score FROM numbas_lti_ltiuserdata u WHERE u.resource_id = %s "
            "AND NOT u.is_instructor", [ref_resource])
        check.compare(f"{name}: memberships", reference.count("numbas_lti_ltiuserdata", f"WHERE resource_id = {int(ref_resource)}"),
                      ResourceMembership.objects.filter(resource_id=local_resource).count())
        in_lms_ref = sorted(round(m["last_reported_score"], 6) for m in members if m["last_reported_score"] is not None)
        in_lms_here = sorted(round(s, 6) for s in GradeReport.objects.filter(
            resource_id=local_resource, sent_score__isnull=False).values_list("sent_score", flat=True))
        check.compare(f"{name}: scores the LMS has", in_lms_ref, in_lms_here)
    check.compare("attempts (all activities, deleted included)", len(ref_attempts), len(attempt_links))
    check.compare("access changes here (per student or pending)",
                  sum(int(v or 0) for v in _links(Kind.ACCESS_CHANGE).values()),
                  AccessChange.objects.count() + PendingAccessChange.objects.count(),
                  ok=True)
    check.compare("re-marked parts here", len(_links(Kind.REMARK)),
                  PartOverride.objects.filter(attempt_id__in=local_ids).count())
    return check
