"""Writes for importing a numbas-lti-provider v4.x installation (see reference.py for reading it).

The import runs in units (a consumer, a course, an activity with its exams, a few hundred
people, an activity's memberships, a batch of attempts with their data, an access change, an
activity's grades). Each unit commits on its own, together with the link (models.ImportLink)
from every reference object it brought over to ours; a run skips what is linked already. So a
second run changes nothing, and a run killed midway completes on the next run.

Decisions (also in the README, "Moving from numbas-lti-provider"):
- Deleted attempts (the reference's soft delete) are imported as deleted attempts here (hidden
  everywhere, restorable by an instructor), with their data, like the reference keeps them.
- An attempt whose SCORM data says "completed" is ended here, at the time of that value (the
  reference often leaves `end_time` empty and sometimes its status stale).
- Discounts and re-marked parts become our discounts and part overrides; scores are computed
  by our own scoring and compared, attempt by attempt, with the reference's in the summary.
- What the LMS already has (each student's last reported score) becomes the grade's delivered
  score: a grade equal to it is not sent again; a different one is owed (queued now, or left
  for the instructor to report when the activity reports manually).
- Reference access changes become access changes for the students they name (by account, by
  e-mail address or username when we know them) and pending access changes otherwise.
"""

from __future__ import annotations

import hashlib
import io
import os
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from django.contrib.auth import get_user_model
from django.db import connection, transaction
from django.utils import timezone

from attempts.models import (AccessChange, Attempt, AttemptEvent, AttemptEventKind, Batch, CompletionStatus,
                             Element, ElementChange, GradingMethod, PartOverride, PendingAccessChange,
                             ReportWhen, ResourceSettings, ShowScore)
from exams.models import ExamPackage
from exams.services import exam_package_upload, exam_version_make_current
from grading import scoring
from grading import selectors as grading_selectors
from grading.models import AttemptQuestionScore, Discount, GradeReport, ReportState
from lms.models import Consumer, Context, IdentifierField, LtiIdentity, Resource, ResourceMembership, Role
from lms.services import _identity_create
from reference_import.models import IMPORT_BATCH_PREFIX, ImportLink, Kind
from reference_import.reference import Reference

User = get_user_model()

ATTEMPTS_PER_UNIT = int(os.environ.get("IMPORT_REFERENCE_ATTEMPTS_PER_UNIT", "") or 50)
USERS_PER_UNIT = 200
# Test hook: stop the process abruptly (no cleanup, like a kill) after this many committed units.
STOP_AFTER_UNITS_ENV = "IMPORT_REFERENCE_STOP_AFTER_UNITS"

IDENTIFIER_FIELDS = {"email": IdentifierField.EMAIL, "username": IdentifierField.SOURCEDID}
REPORT_WHEN = {"immediately": ReportWhen.IMMEDIATELY, "oncompletion": ReportWhen.ON_COMPLETION,
               "manually": ReportWhen.MANUALLY}
SHOW_SCORE = {"always": ShowScore.ALWAYS, "complete": ShowScore.WHEN_COMPLETE, "review": ShowScore.IN_REVIEW,
              "never": ShowScore.NEVER}
GRADING = {"highest": GradingMethod.HIGHEST, "last": GradingMethod.LAST}
DISCOUNT = {"remove": "remove", "fullmarks": "full_marks", "full_marks": "full_marks"}


class ImportFailed(Exception):
    pass


@dataclass
class Progress:
    dry_run: bool = False
    created: dict = field(default_factory=lambda: defaultdict(int))
    skipped: dict = field(default_factory=lambda: defaultdict(int))  # linked already
    warnings: list = field(default_factory=list)
    units: int = 0


def _links(kind: str) -> dict[int, str]:
    return dict(ImportLink.objects.filter(kind=kind).values_list("reference_pk", "local_pk"))


def _link(kind: str, reference_pk: int, local_pk) -> None:
    ImportLink.objects.create(kind=kind, reference_pk=reference_pk, local_pk=str(local_pk))


class Importer:
    def __init__(self, reference: Reference, media: Path, *, dry_run: bool = False, log=print):
        self.ref, self.media, self.log = reference, Path(media), log
        self.progress = Progress(dry_run=dry_run)
        stop = os.environ.get(STOP_AFTER_UNITS_ENV, "")
        self.stop_after = int(stop) if stop.isdigit() else None
        self.now = timezone.now()

    # --- bookkeeping ------------------------------------------------------------------------

    def _unit_done(self) -> None:
        self.progress.units += 1
        if self.stop_after is not None and self.progress.units >= self.stop_after:
            self.log(f"stopping after {self.progress.units} units ({STOP_AFTER_UNITS_ENV})")
            os._exit(75)

    def _plan(self, kind: str, reference_pks: list[int]) -> list[int]:
        """The reference pks of `kind` still to import; counts the others as skipped."""
        linked = _links(kind)
        todo = [pk for pk in reference_pks if pk not in linked]
        self.progress.skipped[kind] += len(reference_pks) - len(todo)
        if self.progress.dry_run:
            self.progress.created[kind] += len(todo)
            return []
        return todo

    def _parent_ok(self, parent_pk: int, linked: dict) -> bool:
        """Whether a child can be imported now: its parent is imported (in a dry run: would be)."""
        return self.progress.dry_run or parent_pk in linked

    def run(self) -> Progress:
        for phase in (self.consumers, self.contexts, self.resources, self.users, self.memberships, self.attempts,
                      self.access_changes, self.deadlines, self.grades):
            phase()
        return self.progress

    # --- consumers and LTI 1.3 registrations ---------------------------------------------------

    def consumers(self) -> None:
        rows = self.ref.rows(
            "SELECT c.id, c.deleted, c.url, c.identifier_field, k.key, k.secret FROM numbas_lti_lticonsumer c "
            "LEFT JOIN numbas_lti_lti_11_consumer k ON k.consumer_id = c.id ORDER BY c.id")
        by_pk = {}
        for row in rows:  # a consumer with several 1.1 keys: the first (ours has one key per consumer)
            by_pk.setdefault(row["id"], row)
        for pk in self._plan(Kind.CONSUMER, list(by_pk)):
            row = by_pk[pk]
            with transaction.atomic():
                consumer = Consumer.objects.filter(key=row["key"]).first() if row["key"] else None
                if consumer is None:
                    consumer = Consumer.objects.create(
                        name=(row["key"] or row["url"] or f"LMS {pk}")[:200], key=row["key"] or None,
                        secret=row["secret"] or "", active=not row["deleted"],
                        identifier_field=IDENTIFIER_FIELDS.get(row["identifier_field"], IdentifierField.EMAIL))
                _link(Kind.CONSUMER, pk, consumer.pk)
            self.progress.created[Kind.CONSUMER] += 1
            self._unit_done()
        self._platforms()

    def _platforms(self) -> None:
        if not self.ref.table_exists("lti1p3_tool"):
            return
        tools = self.ref.rows(
            "SELECT t.*, c.consumer_id FROM numbas_lti_lti_13_consumer c JOIN lti1p3_tool t ON t.id = c.tool_id "
            "ORDER BY t.id")
        consumers = _links(Kind.CONSUMER)
        from lti13.models import Deployment, Platform

        for pk in self._plan(Kind.PLATFORM, [t["id"] for t in tools]):
            tool = next(t for t in tools if t["id"] == pk)
            with transaction.atomic():
                platform = Platform.objects.filter(issuer=tool["issuer"], client_id=tool["client_id"]).first()
                if platform is None:
                    platform = Platform.objects.create(
                        name=(tool["title"] or tool["issuer"])[:200], consumer_id=int(consumers[tool["consumer_id"]]),
                        issuer=tool["issuer"], client_id=tool["client_id"], auth_login_url=tool["auth_login_url"],
                        auth_token_url=tool["auth_token_url"] or "", auth_audience=tool["auth_audience"] or "",
                        keyset_url=tool["key_set_url"] or "", keyset=tool["key_set"] or None,
                        active=bool(tool["is_active"]))
                for deployment_id in tool["deployment_ids"] or []:
                    Deployment.objects.get_or_create(platform=platform, deployment_id=str(deployment_id))
                _link(Kind.PLATFORM, pk, platform.pk)
            self.progress.created[Kind.PLATFORM] += 1
            self._unit_done()

    # --- courses and activities -----------------------------------------------------------------

    def contexts(self) -> None:
        rows = {r["id"]: r for r in self.ref.rows("SELECT * FROM numbas_lti_lticontext ORDER BY id")}
        consumers = _links(Kind.CONSUMER)
        for pk in self._plan(Kind.CONTEXT, list(rows)):
            row = rows[pk]
            with transaction.atomic():
                context, _ = Context.objects.get_or_create(
                    consumer_id=int(consumers[row["consumer_id"]]), context_id=row["context_id"],
                    defaults={"title": (row["name"] or "")[:500], "label": (row["label"] or "")[:255]})
                _link(Kind.CONTEXT, pk, context.pk)
            self.progress.created[Kind.CONTEXT] += 1
            self._unit_done()

    def _resource_links(self) -> dict[int, dict]:
        """Reference resource pk -> where it lives: consumer, context and resource link id (its
        first LTI 1.1 link; else its first LTI 1.3 link)."""
        found: dict[int, dict] = {}
        for row in self.ref.rows(
                "SELECT l.resource_id, l.resource_link_id, l.context_id, c.consumer_id FROM numbas_lti_lti_11_resourcelink l "
                "JOIN numbas_lti_lticontext c ON c.id = l.context_id ORDER BY l.id"):
            found.setdefault(row["resource_id"], {**row, "lti13": False})
        if self.ref.table_exists("numbas_lti_lti_13_resourcelink"):
            for row in self.ref.rows(
                    "SELECT l.resource_id, l.resource_link_id, l.context_id, c.consumer_id "
                    "FROM numbas_lti_lti_13_resourcelink l JOIN numbas_lti_lticontext c ON c.id = l.context_id "
                    "ORDER BY l.id"):
                found.setdefault(row["resource_id"], {**row, "lti13": True})
        return found

    def resources(self) -> None:
        rows = {r["id"]: r for r in self.ref.rows("SELECT * FROM numbas_lti_resource ORDER BY id")}
        places = self._resource_links()
        for pk in [pk for pk in rows if pk not in places]:
            self.progress.warnings.append(f"activity {pk} ({rows[pk]['title']}) has no LMS link: not imported")
        exams = defaultdict(list)
        for exam in self.ref.rows("SELECT * FROM numbas_lti_exam ORDER BY creation_time, id"):
            exams[exam["resource_id"]].append(exam)
        discounts = defaultdict(list)
        for row in self.ref.rows("SELECT * FROM numbas_lti_discountpart ORDER BY id"):
            discounts[row["resource_id"]].append(row)
        self.progress.skipped[Kind.EXAM] += len(_links(Kind.EXAM))
        self.progress.skipped[Kind.DISCOUNT] += len(_links(Kind.DISCOUNT))
        todo = self._plan(Kind.RESOURCE, [pk for pk in rows if pk in places])
        if self.progress.dry_run:
            linked_resources = _links(Kind.RESOURCE)
            for pk in rows:
                if pk in places and pk not in linked_resources:
                    self.progress.created[Kind.EXAM] += len(exams[pk])
                    self.progress.created[Kind.DISCOUNT] += len(discounts[pk])
        consumers, contexts = _links(Kind.CONSUMER), _links(Kind.CONTEXT)
        for pk in todo:
            row, place = rows[pk], places[pk]
            with transaction.atomic():
                self._resource(row, place, consumers, contexts, exams[pk], discounts[pk])
            self.progress.created[Kind.RESOURCE] += 1
            self._unit_done()

    def _resource(self, row, place, consumers, contexts, exams, discounts) -> None:
        consumer_id = int(consumers[place["consumer_id"]])
        context_id = int(contexts[place["context_id"]]) if place["context_id"] in contexts else None
        id_field = "lti13_id" if place["lti13"] else "resource_link_id"
        values = {"title": (row["title"] or "")[:500], "description": row["description"] or "", "context_id": context_id}
        if place["lti13"]:
            values["resource_link_id"] = place["resource_link_id"]
        resource, _ = Resource.objects.get_or_create(consumer_id=consumer_id, **{id_field: place["resource_link_id"]},
                                                     defaults=values)
        available_from, available_until = row["available_from"], row["available_until"]
        if available_from and available_until and available_from >= available_until:
            self.progress.warnings.append(f"activity {row['id']}: its closing time is not after its opening time; "
                                          "the closing time was left out")
            available_until = None
        ResourceSettings.objects.update_or_create(resource=resource, defaults={
            "max_attempts": min(max(row["max_attempts"] or 0, 0), 1000),
            "available_from": available_from, "available_until": available_until, "due_at": row["due_date"],
            "allow_review": True, "review_from": row["allow_review_from"],
            "allow_student_reopen": bool(row["allow_student_reopen"]),
            "show_score": SHOW_SCORE.get(row["show_marks_when"], ShowScore.ALWAYS),
            "grading_method": GRADING.get(row["grading_method"], GradingMethod.HIGHEST),
            "include_incomplete": bool(row["include_incomplete_attempts"]),
            "report_when": REPORT_WHEN.get(row["report_mark_time"], ReportWhen.ON_COMPLETION),
            "email_receipt": bool(row["email_receipts"]),
        })
        current = None
        for exam in exams:
            package = self._exam(resource, exam)
            if exam["id"] == row["exam_id"]:
                current = package
        if current is not None and len(exams) > 1 and exams[-1]["id"] != row["exam_id"]:
            exam_version_make_current(resource_id=resource.pk, exam=current, by=None)
        for discount in discounts:
            behaviour = DISCOUNT.get(discount["behaviour"])
            if behaviour is None:
                raise ImportFailed(f"discount {discount['id']}: unknown behaviour {discount['behaviour']!r}")
            made, _ = Discount.objects.update_or_create(resource=resource, target=discount["part"],
                                                        defaults={"behaviour": behaviour})
            _link(Kind.DISCOUNT, discount["id"], made.pk)
            self.progress.created[Kind.DISCOUNT] += 1
        _link(Kind.RESOURCE, row["id"], resource.pk)

    def _exam(self, resource: Resource, exam: dict) -> ExamPackage:
        path = (self.media / exam["package"]).resolve()
        if not path.is_relative_to(self.media.resolve()) or not path.is_file():
            raise ImportFailed(f"exam {exam['id']} ({exam['title']}): its file {exam['package']} is not in the media "
                               f"folder {self.media}")
        from exams.packages import PackageRejected

        try:
            with open(path, "rb") as upload:  # validated and extracted exactly like an instructor's upload
                package = exam_package_upload(resource=resource, upload=upload, size=path.stat().st_size,
                                              filename=path.name, uploaded_by=None, replace_confirmed=True)
        except PackageRejected as error:
            raise ImportFailed(f"exam {exam['id']} ({exam['package']}) was refused: {error}") from None
        ExamPackage.objects.filter(pk=package.pk).update(uploaded_at=exam["creation_time"])
        _link(Kind.EXAM, exam["id"], package.pk)
        self.progress.created[Kind.EXAM] += 1
        return package

    # --- people -----------------------------------------------------------------------------

    def users(self) -> None:
        users = {r["id"]: r for r in self.ref.rows("SELECT * FROM auth_user ORDER BY id")}
        todo = self._plan(Kind.USER, list(users))
        if not todo:
            return
        aliases = defaultdict(list)
        for row in self.ref.rows("SELECT * FROM numbas_lti_lti_11_useralias ORDER BY id"):
            aliases[row["user_id"]].append(("1.1", row["consumer_id"], row["consumer_user_id"], None))
        if self.ref.table_exists("numbas_lti_lti_13_useralias"):
            for row in self.ref.rows("SELECT * FROM numbas_lti_lti_13_useralias ORDER BY id"):
                aliases[row["user_id"]].append(("1.3", row["consumer_id"], row["sub"], row))
        sourcedids = {r["user_id"]: r["lis_person_sourcedid"] for r in self.ref.rows(
            "SELECT u.user_id, d.lis_person_sourcedid FROM numbas_lti_ltiuserdata u JOIN numbas_lti_lti_11_userdata d "
            "ON d.user_data_id = u.id WHERE d.lis_person_sourcedid <> '' ORDER BY d.id")}
        consumers = _links(Kind.CONSUMER)
        for start in range(0, len(todo), USERS_PER_UNIT):
            with transaction.atomic():
                for pk in todo[start:start + USERS_PER_UNIT]:
                    user = self._user(users[pk], aliases[pk], sourcedids.get(pk, ""), consumers)
                    _link(Kind.USER, pk, user.pk)
                    self.progress.created[Kind.USER] += 1
            self._unit_done()

    def _user(self, row, aliases, sourcedid, consumers):
        full_name = " ".join(filter(None, [row["first_name"], row["last_name"]]))
        if not aliases:  # a local account (the reference's administrators)
            user = User.objects.filter(username=row["username"]).first()
            if user is None:
                user = User(username=row["username"], password=row["password"], first_name=row["first_name"],
                            last_name=row["last_name"], email=row["email"], is_staff=row["is_staff"],
                            is_superuser=row["is_superuser"], is_active=row["is_active"],
                            date_joined=row["date_joined"])
                user.save(force_insert=True)
            return user
        version, consumer_pk, user_id, extra = aliases[0]
        for other in aliases[1:]:
            self.progress.warnings.append(
                f"user {row['id']}: LMS identity {other[2]!r} (consumer {other[1]}) not imported: a person here has "
                "one LMS identity")
        consumer_id = int(consumers[consumer_pk])
        identity = LtiIdentity.objects.select_related("user").filter(consumer_id=consumer_id,
                                                                     lti_user_id=user_id).first()
        if identity is not None:
            return identity.user
        if version == "1.3":
            identity = _identity_create(consumer=Consumer.objects.get(pk=consumer_id), lti_user_id=user_id, sub=user_id,
                                        full_name=(extra["full_name"] or full_name)[:500],
                                        email=extra["email"] or row["email"], locale=extra["locale"] or "",
                                        sourcedid=extra["lis_person_sourcedid"] or sourcedid)
        else:
            identity = _identity_create(consumer=Consumer.objects.get(pk=consumer_id), lti_user_id=user_id, sub=None,
                                        full_name=full_name[:500], email=row["email"], sourcedid=sourcedid[:255])
        return identity.user

    def memberships(self) -> None:
        rows = self.ref.rows(
            "SELECT u.*, d.lis_result_sourcedid, d.lis_outcome_service_url, "
            "(SELECT max(l.time) FROM numbas_lti_ltilaunch l WHERE l.user_id = u.user_id AND l.resource_id = u.resource_id)"
            " AS last_launch, (SELECT min(l.time) FROM numbas_lti_ltilaunch l WHERE l.user_id = u.user_id AND "
            "l.resource_id = u.resource_id) AS first_launch FROM numbas_lti_ltiuserdata u "
            "LEFT JOIN numbas_lti_lti_11_userdata d ON d.user_data_id = u.id ORDER BY u.resource_id, u.id")
        resources, users = _links(Kind.RESOURCE), _links(Kind.USER)
        todo = set(self._plan(Kind.MEMBERSHIP, [r["id"] for r in rows if self._parent_ok(r["resource_id"], resources)]))
        by_resource = defaultdict(list)
        for row in rows:
            if row["id"] in todo:
                by_resource[row["resource_id"]].append(row)
        for resource_pk, members in by_resource.items():
            with transaction.atomic():
                for row in members:
                    membership = self._membership(row, int(resources[resource_pk]), int(users[row["user_id"]]))
                    _link(Kind.MEMBERSHIP, row["id"], membership.pk)
                    self.progress.created[Kind.MEMBERSHIP] += 1
            self._unit_done()

    def _membership(self, row, resource_id: int, user_id: int) -> ResourceMembership:
        membership = ResourceMembership.objects.filter(resource_id=resource_id, user_id=user_id).first()
        last = row["last_launch"] or self.now
        if membership is None:
            membership = ResourceMembership.objects.create(
                resource_id=resource_id, user_id=user_id,
                role=Role.INSTRUCTOR if row["is_instructor"] else Role.STUDENT,
                lti_roles="Instructor" if row["is_instructor"] else "Learner",
                lis_result_sourcedid=row["lis_result_sourcedid"] or "",
                lis_outcome_service_url=row["lis_outcome_service_url"] or "", last_launched_at=last)
            ResourceMembership.objects.filter(pk=membership.pk).update(first_launched_at=row["first_launch"] or last)
        return membership

    # --- attempts ---------------------------------------------------------------------------

    def attempts(self) -> None:
        rows = self.ref.rows(
            "SELECT a.*, row_number() OVER (PARTITION BY a.resource_id, a.user_id ORDER BY a.start_time, a.id) AS number "
            "FROM numbas_lti_attempt a ORDER BY a.id")
        resources = _links(Kind.RESOURCE)
        todo = self._plan(Kind.ATTEMPT, [r["id"] for r in rows if self._parent_ok(r["resource_id"], resources)])
        self.progress.skipped[Kind.REMARK] += len(_links(Kind.REMARK))
        if self.progress.dry_run:
            linked = _links(Kind.ATTEMPT)
            self.progress.created[Kind.REMARK] += self.ref.scalar(
                "SELECT count(*) FROM numbas_lti_remarkpart WHERE NOT (attempt_id = ANY(%s))",
                [list(linked)])
            return
        if not todo:
            return
        by_pk = {r["id"]: r for r in rows}
        users, exams = _links(Kind.USER), _links(Kind.EXAM)
        for start in range(0, len(todo), ATTEMPTS_PER_UNIT):
            chunk = [by_pk[pk] for pk in todo[start:start + ATTEMPTS_PER_UNIT]]
            history = self.ref.attempt_elements([r["id"] for r in chunk])
            remarks = defaultdict(list)
            for remark in self.ref.rows("SELECT * FROM numbas_lti_remarkpart WHERE attempt_id = ANY(%s) ORDER BY id",
                                        [[r["id"] for r in chunk]]):
                remarks[remark["attempt_id"]].append(remark)
            with transaction.atomic():
                self._attempt_chunk(chunk, history, remarks, resources, users, exams)
            self._unit_done()

    def _attempt_chunk(self, chunk, history, remarks, resources, users, exams) -> None:
        made = []
        for row in chunk:
            values = {key: value for key, value, _ in history[row["id"]]}
            completed_at = [time for key, value, time in history[row["id"]]
                            if key == "cmi.completion_status" and value == CompletionStatus.COMPLETED]
            status = values.get("cmi.completion_status") or row["completion_status"] or CompletionStatus.NOT_ATTEMPTED
            ended_at = row["end_time"] or (completed_at[-1] if status == CompletionStatus.COMPLETED and completed_at
                                           else None)
            if status == CompletionStatus.COMPLETED and ended_at is None:
                ended_at = history[row["id"]][-1][2] if history[row["id"]] else row["start_time"]
            if row["exam_id"] not in exams:
                raise ImportFailed(f"attempt {row['id']}: its exam {row['exam_id']} was not imported")
            made.append(Attempt(
                resource_id=int(resources[row["resource_id"]]), user_id=int(users[row["user_id"]]),
                exam_id=exams[row["exam_id"]], number=row["number"], ended_at=ended_at, completion_status=status[:20],
                success_status=(values.get("cmi.success_status") or "unknown")[:20],
                score_raw=_number(values.get("cmi.score.raw")), score_min=_number(values.get("cmi.score.min")),
                score_max=_number(values.get("cmi.score.max")), score_scaled=_number(values.get("cmi.score.scaled")),
                last_saved_at=history[row["id"]][-1][2] if history[row["id"]] else None,
                deleted_at=self.now if row["deleted"] else None))
        Attempt.all_objects.bulk_create(made)
        table = Attempt._meta.db_table
        with connection.cursor() as cursor:
            cursor.executemany(f"UPDATE {table} SET started_at = %s WHERE id = %s",
                               [(row["start_time"], attempt.pk) for row, attempt in zip(chunk, made)])
        batches = Batch.objects.bulk_create(Batch(
            attempt_id=attempt.pk, batch_id=f"{IMPORT_BATCH_PREFIX}{row['id']}",
            content_hash=hashlib.sha256(f"reference attempt {row['id']}".encode()).hexdigest(),
            element_count=len(history[row["id"]]), received_at=self.now) for row, attempt in zip(chunk, made))
        changes, current = io.StringIO(), io.StringIO()
        for row, attempt, batch in zip(chunk, made, batches):
            latest: dict[str, tuple[str, int]] = {}
            for sequence, (key, value, time) in enumerate(history[row["id"]], start=1):
                changes.write(f"{attempt.pk}\t{_copy(key)}\t{_copy(value)}\t{sequence}\t{time.isoformat()}\t{batch.pk}\n")
                latest[key] = (value, sequence)
            for key, (value, sequence) in latest.items():
                current.write(f"{attempt.pk}\t{_copy(key)}\t{_copy(value)}\t{sequence}\n")
        with connection.cursor() as cursor:
            raw = cursor.cursor  # psycopg2's own cursor: COPY is many times faster than INSERTs here
            changes.seek(0)
            raw.copy_expert(f"COPY {ElementChange._meta.db_table} (attempt_id, key, value, sequence, client_time, "
                            "batch_id) FROM STDIN", changes)
            current.seek(0)
            raw.copy_expert(f"COPY {Element._meta.db_table} (attempt_id, key, value, sequence) FROM STDIN", current)
        overrides, events = [], []
        for row, attempt in zip(chunk, made):
            for remark in remarks[row["id"]]:
                overrides.append((remark["id"], PartOverride(attempt=attempt, part_id=remark["part"],
                                                             score=max(remark["score"], 0.0), by=None, at=self.now)))
            if row["deleted"]:
                events.append(AttemptEvent(attempt=attempt, kind=AttemptEventKind.DELETED, by=None, at=self.now,
                                           reason="Deleted in numbas-lti-provider before it was imported"))
        PartOverride.objects.bulk_create([o for _, o in overrides])
        AttemptEvent.objects.bulk_create(events)
        self._question_scores([a for row, a in zip(chunk, made) if a.ended_at is not None and not row["deleted"]])
        ImportLink.objects.bulk_create(
            [ImportLink(kind=Kind.ATTEMPT, reference_pk=row["id"], local_pk=str(a.pk)) for row, a in zip(chunk, made)]
            + [ImportLink(kind=Kind.REMARK, reference_pk=pk, local_pk=str(o.pk)) for pk, o in overrides])
        self.progress.created[Kind.ATTEMPT] += len(made)
        self.progress.created[Kind.REMARK] += len(overrides)

    def _question_scores(self, attempts: list[Attempt]) -> None:
        """Ended attempts' per-question scores, as grading.services.question_scores_record keeps
        them (re-marks included, discounts not), for a batch of attempts at once."""
        scores = grading_selectors.attempt_scores(attempt_ids=[a.pk for a in attempts])
        AttemptQuestionScore.objects.bulk_create(
            AttemptQuestionScore(attempt_id=a.pk, resource_id=a.resource_id, question_id=q.id[:50], raw=q.raw, max=q.max)
            for a in attempts for q in scores[a.pk].questions)

    # --- access changes ---------------------------------------------------------------------

    def access_changes(self) -> None:
        rows = {r["id"]: r for r in self.ref.rows(
            "SELECT a.*, r.due_date AS resource_due, r.available_until AS resource_until, "
            "r.max_attempts AS resource_max FROM numbas_lti_accesschange a "
            "JOIN numbas_lti_resource r ON r.id = a.resource_id ORDER BY a.id")}
        resources = _links(Kind.RESOURCE)
        todo = self._plan(Kind.ACCESS_CHANGE, [pk for pk, r in rows.items()
                                               if self._parent_ok(r["resource_id"], resources)])
        users = _links(Kind.USER)
        for pk in todo:
            row = rows[pk]
            with transaction.atomic():
                made = self._access_change(row, int(resources[row["resource_id"]]), users)
                _link(Kind.ACCESS_CHANGE, pk, made)
            self.progress.created[Kind.ACCESS_CHANGE] += 1
            self._unit_done()

    def _access_terms(self, row) -> dict:
        terms = {"reason": (row["description"] or "")[:500], "changed_by": None, "changed_at": self.now}
        if row["max_attempts"] is not None:
            resource_max = row["resource_max"] or 0
            if row["max_attempts"] == 0:  # unlimited
                terms["extra_attempts"] = 1000
            elif resource_max:
                terms["extra_attempts"] = max(0, min(1000, row["max_attempts"] - resource_max))
        due, until = row["due_date"] or row["resource_due"], row["available_until"] or row["resource_until"]
        if row["extend_deadline"]:
            due = due + row["extend_deadline"] if due else None
            until = until + row["extend_deadline"] if until else None
        if due != row["resource_due"]:
            terms["due_at"] = due
        if until != row["resource_until"]:
            terms["available_until"] = until
        if row["available_from"]:
            terms["available_from"] = row["available_from"]
        if row["disable_duration"]:
            terms["time_limit_off"] = True
        elif row["extend_duration"]:
            if row["extend_duration_units"] == "percent":
                terms["extra_percent"] = int(round(min(row["extend_duration"], 1000)))
            else:
                terms["extra_minutes"] = int(round(min(row["extend_duration"], 100000)))
        return terms

    def _access_change(self, row, resource_id: int, users) -> int:
        terms = self._access_terms(row)
        targets: set[int] = set()
        for link in self.ref.rows("SELECT user_id FROM numbas_lti_accesschange_users WHERE accesschange_id = %s",
                                  [row["id"]]):
            if link["user_id"] in users:
                targets.add(int(users[link["user_id"]]))
        pending = []
        members = ResourceMembership.objects.filter(resource_id=resource_id).select_related("user__lti_identity")
        for kind, table, column in (("email", "numbas_lti_emailaccesschange", "email"),
                                    ("username", "numbas_lti_usernameaccesschange", "username")):
            for entry in self.ref.rows(f"SELECT {column} AS value FROM {table} WHERE access_change_id = %s",
                                       [row["id"]]):
                value = (entry["value"] or "").strip()
                if not value:
                    continue
                matched = [m.user_id for m in members if _person_matches(m.user, kind, value)]
                targets.update(matched)
                if not matched:
                    pending.append((kind, value))
        made = 0
        for user_id in sorted(targets):
            AccessChange.objects.update_or_create(resource_id=resource_id, user_id=user_id, defaults=terms)
            made += 1
        for kind, value in pending:
            PendingAccessChange.objects.update_or_create(resource_id=resource_id, kind=kind, value_key=value.lower(),
                                                         defaults={**terms, "value": value[:255]})
            made += 1
        return made  # the deadlines they move are computed by the next phase (deadlines)

    # --- this service's rules for the attempts still open --------------------------------------

    def deadlines(self) -> None:
        """Imported attempts still open come under this service's rules: each gets its deadline as
        any attempt here (the student's closing time, the due date when late work is refused, the
        exam's time limit counted from the attempt's start, plus extensions and the grace period).
        The reference enforced none of them on the server; its exam timer counted only time with
        the exam open. The minute task (attempts.tasks) then ends those whose deadline has passed,
        keeping what they stored. Idempotent: a deadline is recomputed, never moved by a rerun."""
        if self.progress.dry_run:
            return
        from attempts.services import attempt_deadlines_refresh

        resources = [int(v) for v in _links(Kind.RESOURCE).values()]
        with_open = (Attempt.objects.filter(resource_id__in=resources, ended_at__isnull=True)
                     .values_list("resource_id", flat=True).distinct().order_by("resource_id"))
        for resource_id in with_open:
            with transaction.atomic():
                attempt_deadlines_refresh(resource_id=resource_id)

    # --- what the LMS has -------------------------------------------------------------------

    def grades(self) -> None:
        rows = self.ref.rows(
            "SELECT u.id, u.resource_id, u.user_id, u.last_reported_score, "
            "(SELECT max(s.time) FROM numbas_lti_userscorereported s WHERE s.user_id = u.user_id AND "
            "s.resource_id = u.resource_id AND s.error IS NULL) AS reported_at "
            "FROM numbas_lti_ltiuserdata u WHERE NOT u.is_instructor ORDER BY u.resource_id, u.id")
        memberships = _links(Kind.MEMBERSHIP)
        todo = set(self._plan(Kind.GRADE, [r["id"] for r in rows if self._parent_ok(r["id"], memberships)]))
        by_resource = defaultdict(list)
        for row in rows:
            if row["id"] in todo:
                by_resource[row["resource_id"]].append(row)
        for rows_of_resource in by_resource.values():
            with transaction.atomic():
                for row in rows_of_resource:
                    report = self._grade(row, int(memberships[row["id"]]))
                    _link(Kind.GRADE, row["id"], report.pk if report else "")
                    self.progress.created[Kind.GRADE] += 1
            self._unit_done()

    def _grade(self, row, membership_id: int) -> GradeReport | None:
        membership = ResourceMembership.objects.get(pk=membership_id)
        if GradeReport.objects.filter(membership=membership).exists():
            return GradeReport.objects.get(membership=membership)
        score, number = current_grade(resource_id=membership.resource_id, user_id=membership.user_id)
        last = row["last_reported_score"]
        if score is None and last is None:
            return None
        settings_ = ResourceSettings.objects.get(resource_id=membership.resource_id)
        report = GradeReport(membership=membership, resource_id=membership.resource_id, score=score,
                             attempt_number=number, updated_at=self.now)
        if last is not None:
            report.sent_score, report.sent_version = last, 1
            report.delivered_at = row["reported_at"] or self.now
        if last is not None and (score is None or abs(score - last) < 1e-6):
            report.version, report.state = (1 if score is not None else 2), ReportState.DELIVERED
        else:
            report.version = 2 if last is not None else 1
            if settings_.report_when == ReportWhen.MANUALLY:
                report.state = ReportState.WAITING
            elif not (membership.lis_result_sourcedid and membership.lis_outcome_service_url):
                report.state = ReportState.NO_OUTCOME
            else:
                report.state, report.due_at = ReportState.PENDING, self.now
        report.save()
        return report


def current_grade(*, resource_id: int, user_id: int) -> tuple[float | None, int | None]:
    """The student's grade here as our grading computes it (see grading.services.grade_refresh)."""
    settings_ = ResourceSettings.objects.get(resource_id=resource_id)
    discounts = grading_selectors.discounts_for(resource_id=resource_id)
    attempts = grading_selectors.attempts_for_grade(resource_id=resource_id, user_id=user_id, discounts=discounts)
    best = scoring.resource_grade(attempts, method=settings_.grading_method,
                                  include_incomplete=settings_.include_incomplete)
    return (None, None) if best is None or best.scaled is None else (round(best.scaled, 6), best.number)


def _person_matches(user, kind: str, value: str) -> bool:
    identity = getattr(user, "lti_identity", None)
    value = value.lower()
    if kind == "email":
        return value in {(user.email or "").lower(), (getattr(identity, "email", "") or "").lower()} - {""}
    return value in {(user.username or "").lower(), (getattr(identity, "username", "") or "").lower(),
                     (getattr(identity, "sourcedid", "") or "").lower()} - {""}


def _number(text):
    return scoring._number(text)


def _copy(text: str) -> str:
    """A value in PostgreSQL's COPY text format."""
    return (text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")
            .replace("\x00", ""))


def import_reference(*, database_url: str, media: Path, dry_run: bool = False, log=print) -> Progress:
    reference = Reference(database_url)
    try:
        return Importer(reference, media, dry_run=dry_run, log=log).run()
    finally:
        reference.close()
