"""Attempts at a resource's exam and every value the exam stores (SCORM 2004 run-time data).

Each element change is appended to `ElementChange` (never updated); `Element` holds the
current value per (attempt, key), updated in the same transaction, so that resuming and
reports never scan the history. A client batch is stored once: `Batch` is unique per
(attempt, batch id).
"""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from exams.models import ExamPackage
from lms.models import IdentifierField, Resource


class ShowScore(models.TextChoices):
    ALWAYS = "always", _("Always")
    WHEN_COMPLETE = "complete", _("When the attempt is complete")
    IN_REVIEW = "review", _("Only when reviewing")
    NEVER = "never", _("Never")


class GradingMethod(models.TextChoices):
    HIGHEST = "highest", _("Highest attempt")
    LAST = "last", _("Last attempt")


class ReportWhen(models.TextChoices):
    IMMEDIATELY = "immediately", _("Immediately, whenever a score changes")
    ON_COMPLETION = "completion", _("When an attempt is completed")
    MANUALLY = "manual", _("Only when the instructor reports all scores")


class LatePolicy(models.TextChoices):
    ACCEPT = "accept", _("Accept answers after the due date and mark the attempt late")
    REFUSE = "refuse", _("Refuse answers after the due date (it works as the closing time)")


class ResourceSettings(models.Model):
    """How students may attempt a resource's exam."""

    resource = models.OneToOneField(Resource, on_delete=models.CASCADE, primary_key=True, related_name="settings")
    max_attempts = models.PositiveIntegerField(default=1, help_text="0 means unlimited.")
    available_from = models.DateTimeField(null=True, blank=True)
    available_until = models.DateTimeField(null=True, blank=True)
    due_at = models.DateTimeField(null=True, blank=True)
    late_policy = models.CharField(max_length=20, choices=LatePolicy.choices, default=LatePolicy.ACCEPT)
    report_after_due = models.BooleanField(
        default=True, help_text="Whether grades that change after the due date are sent to the LMS without the "
                                "instructor reporting them.")
    allow_review = models.BooleanField(default=True)
    allow_student_reopen = models.BooleanField(
        default=False, help_text="Students may re-open their own ended attempts while the activity is open.")
    review_from = models.DateTimeField(
        null=True, blank=True, help_text="Students may review their ended attempts from then on (empty: at once)."
    )
    show_score = models.CharField(max_length=20, choices=ShowScore.choices, default=ShowScore.ALWAYS)
    grading_method = models.CharField(max_length=20, choices=GradingMethod.choices, default=GradingMethod.HIGHEST)
    include_incomplete = models.BooleanField(
        default=False, help_text="Whether attempts the student has not completed count towards their grade."
    )
    report_when = models.CharField(max_length=20, choices=ReportWhen.choices, default=ReportWhen.ON_COMPLETION)
    email_receipt = models.BooleanField(
        default=False, help_text="E-mail students a receipt when they complete an attempt."
    )
    identifier_field = models.CharField(
        max_length=20, choices=IdentifierField.choices, blank=True,
        help_text="Which LMS identifier names students on instructors' pages and in CSVs (empty: the LMS's choice).")

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(available_from__isnull=True) | Q(available_until__isnull=True)
                | Q(available_from__lt=models.F("available_until")),
                name="settings_window_ordered",
            ),
            models.CheckConstraint(condition=Q(grading_method__in=GradingMethod.values), name="settings_grading_method_valid"),
            models.CheckConstraint(condition=Q(max_attempts__lte=1000), name="settings_max_attempts_bounded"),
            models.CheckConstraint(condition=Q(report_when__in=ReportWhen.values), name="settings_report_when_valid"),
            models.CheckConstraint(condition=Q(late_policy__in=LatePolicy.values), name="settings_late_policy_valid"),
        ]


class CompletionStatus(models.TextChoices):
    NOT_ATTEMPTED = "not attempted"
    INCOMPLETE = "incomplete"
    COMPLETED = "completed"
    UNKNOWN = "unknown"


class LiveAttempts(models.Manager):
    """Students' attempts that count: not deleted (deleting is soft: see attempt_delete) and not
    an instructor's test run. Everything that lists, counts or grades attempts reads these."""

    def get_queryset(self):
        return super().get_queryset().filter(deleted_at__isnull=True, is_test_run=False)


class TestRuns(models.Manager):
    """Instructors' test runs (sandbox attempts): never counted, never reported to the LMS."""

    def get_queryset(self):
        return super().get_queryset().filter(deleted_at__isnull=True, is_test_run=True)


class RunnableAttempts(models.Manager):
    """Every attempt a window may open (the runtime page and its saving path): students'
    attempts and instructors' test runs, not deleted ones."""

    def get_queryset(self):
        return super().get_queryset().filter(deleted_at__isnull=True)


class Attempt(models.Model):
    resource = models.ForeignKey(Resource, on_delete=models.CASCADE, related_name="attempts")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="attempts")
    exam = models.ForeignKey(ExamPackage, on_delete=models.PROTECT, related_name="attempts")
    number = models.PositiveIntegerField()
    started_at = models.DateTimeField(auto_now_add=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    completion_status = models.CharField(max_length=20, default=CompletionStatus.NOT_ATTEMPTED)
    success_status = models.CharField(max_length=20, default="unknown")
    score_raw = models.FloatField(null=True, blank=True)
    score_min = models.FloatField(null=True, blank=True)
    score_max = models.FloatField(null=True, blank=True)
    score_scaled = models.FloatField(null=True, blank=True)
    # The window allowed to write: opening the attempt elsewhere takes over (see services).
    writer_token = models.CharField(max_length=64, blank=True)
    last_saved_at = models.DateTimeField(null=True, blank=True)
    # The last time answers reached the server more than a minute after the student gave them
    # (a flaky connection, or a device clock that is wrong): the live view's "saving problems".
    save_delayed_at = models.DateTimeField(null=True, blank=True)
    # Soft delete: the row, its data and its history stay; it no longer counts anywhere.
    deleted_at = models.DateTimeField(null=True, blank=True)
    # No answers are stored from this moment on, and the attempt is ended then (attempts.tasks):
    # the student's closing time, or the end of the exam's time limit (plus extra minutes and
    # a grace period for saving), whichever is first. Null: no limit. Kept up to date by
    # services.attempt_deadlines_refresh when the settings or the student's access change.
    deadline_at = models.DateTimeField(null=True, blank=True)
    # Ended after the activity's due date (its late policy accepting late answers); set when it ends.
    late = models.BooleanField(default=False)
    # An instructor's test run: the exam as a student sees it, in a sandbox attempt that never
    # counts (grades, the LMS, reports, statistics, live counts, attempt limits) — `objects`
    # leaves it out — and that the instructor may remove for good (attempts.services).
    is_test_run = models.BooleanField(default=False)

    objects = LiveAttempts()
    all_objects = models.Manager()
    test_runs = TestRuns()
    runnable = RunnableAttempts()

    class Meta:
        base_manager_name = "all_objects"
        constraints = [
            models.UniqueConstraint(fields=["resource", "user", "number"], name="attempt_number_unique"),
        ]
        indexes = [
            models.Index(fields=["resource", "user"]),
            models.Index(fields=["deadline_at"], condition=Q(ended_at__isnull=True, deadline_at__isnull=False),
                         name="attempt_open_deadline"),
        ]

    def __str__(self):
        return f"Attempt {self.number} by {self.user} at {self.resource}"

    @property
    def is_ended(self) -> bool:
        return self.ended_at is not None


class Batch(models.Model):
    attempt = models.ForeignKey(Attempt, on_delete=models.CASCADE, related_name="batches")
    batch_id = models.CharField(max_length=64)
    content_hash = models.CharField(max_length=64)
    element_count = models.PositiveIntegerField()
    received_at = models.DateTimeField()

    class Meta:
        verbose_name_plural = "batches"
        constraints = [models.UniqueConstraint(fields=["attempt", "batch_id"], name="batch_unique_per_attempt")]


class ElementChange(models.Model):
    """Append-only: one row per SetValue the exam made.

    Rows are only ever written by services.batch_store, in the statement that records their
    batch for an attempt it has just checked; per-row foreign-key triggers would re-check
    that 40 times a batch, so these references are not enforced by the database.
    """

    id = models.BigAutoField(primary_key=True)
    attempt = models.ForeignKey(Attempt, on_delete=models.CASCADE, related_name="changes", db_constraint=False)
    key = models.CharField(max_length=255)
    value = models.TextField()
    sequence = models.BigIntegerField()
    client_time = models.DateTimeField(null=True)
    batch = models.ForeignKey(Batch, on_delete=models.CASCADE, related_name="changes", db_constraint=False)

    class Meta:
        indexes = [models.Index(fields=["attempt", "sequence"])]


class Element(models.Model):
    """The current value of one key in one attempt (written like ElementChange)."""

    id = models.BigAutoField(primary_key=True)
    attempt = models.ForeignKey(Attempt, on_delete=models.CASCADE, related_name="elements", db_constraint=False)
    key = models.CharField(max_length=255)
    value = models.TextField()
    sequence = models.BigIntegerField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["attempt", "key"], name="element_unique_per_attempt")]


MAX_EXTRA_ATTEMPTS, MAX_EXTRA_MINUTES, MAX_EXTRA_PERCENT = 1000, 100000, 1000


class AccessTerms(models.Model):
    """What an access change gives a student: extra attempts, their own opening, closing and
    due times, extra exam time (minutes, or a percentage of the exam's duration), or no time
    limit at all; why, and who decided it."""

    extra_attempts = models.PositiveIntegerField(default=0)
    available_from = models.DateTimeField(
        null=True, blank=True, help_text="This student's opening time, instead of the activity's (may be earlier)."
    )
    available_until = models.DateTimeField(
        null=True, blank=True, help_text="This student's closing time, instead of the activity's."
    )
    due_at = models.DateTimeField(
        null=True, blank=True, help_text="This student's due date, instead of the activity's (same late policy)."
    )
    extra_minutes = models.PositiveIntegerField(default=0, help_text="Added to the exam's duration.")
    extra_percent = models.PositiveIntegerField(
        default=0, help_text="Added to the exam's duration, as a percentage of it.")
    time_limit_off = models.BooleanField(default=False, help_text="The exam's time limit does not apply.")
    reason = models.CharField(max_length=500, blank=True)
    changed_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
                                   related_name="+")
    changed_at = models.DateTimeField()

    class Meta:
        abstract = True

    @property
    def changes_anything(self) -> bool:
        return bool(self.extra_attempts or self.available_from or self.available_until or self.due_at
                    or self.extra_minutes or self.extra_percent or self.time_limit_off)


def _terms_constraints(prefix: str) -> list:
    return [
        models.CheckConstraint(condition=Q(extra_attempts__lte=MAX_EXTRA_ATTEMPTS), name=f"{prefix}_attempts_bounded"),
        models.CheckConstraint(condition=Q(extra_minutes__lte=MAX_EXTRA_MINUTES), name=f"{prefix}_minutes_bounded"),
        models.CheckConstraint(condition=Q(extra_percent__lte=MAX_EXTRA_PERCENT), name=f"{prefix}_percent_bounded"),
        models.CheckConstraint(condition=Q(extra_minutes=0) | Q(extra_percent=0),
                               name=f"{prefix}_minutes_or_percent"),
        models.CheckConstraint(
            condition=Q(available_from__isnull=True) | Q(available_until__isnull=True)
            | Q(available_from__lt=models.F("available_until")), name=f"{prefix}_window_ordered"),
    ]


class AccessChange(AccessTerms):
    """What an instructor changed for one student of a resource (see AccessTerms). Applied at
    once, also to an attempt that is open."""

    resource = models.ForeignKey(Resource, on_delete=models.CASCADE, related_name="access_changes")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="access_changes")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["resource", "user"], name="access_change_unique_per_student"),
            *_terms_constraints("access_change"),
        ]

    def __str__(self):
        return f"Access change for {self.user} at {self.resource}"


class IdentifierKind(models.TextChoices):
    ANY = "any", _("Username, e-mail address or LMS user id")
    USERNAME = "username", _("LMS username")
    EMAIL = "email", _("E-mail address")
    USER_ID = "user_id", _("LMS user id")


class PendingAccessChange(AccessTerms):
    """An access change for someone who has not launched the resource yet, known only by an
    identifier an instructor pasted (their LMS username, e-mail address or LMS user id, in the
    resource's LMS). Their first launch of the resource turns it into their AccessChange, in
    the launch's transaction, and removes it."""

    resource = models.ForeignKey(Resource, on_delete=models.CASCADE, related_name="pending_access_changes")
    kind = models.CharField(max_length=10, choices=IdentifierKind.choices)
    value = models.CharField(max_length=255, help_text="As pasted, trimmed; e-mail addresses and usernames are "
                                                       "matched without regard to case.")
    value_key = models.CharField(max_length=255, help_text="The value as matched (lower case but for user ids).")

    class Meta:
        ordering = ["value_key", "pk"]
        constraints = [
            models.UniqueConstraint(fields=["resource", "kind", "value_key"], name="pending_access_unique_per_entry"),
            models.CheckConstraint(condition=Q(kind__in=IdentifierKind.values), name="pending_access_kind_valid"),
            models.CheckConstraint(condition=~Q(value_key=""), name="pending_access_value_not_empty"),
            *_terms_constraints("pending_access"),
        ]

    def __str__(self):
        return f"Pending access change for {self.value} at {self.resource}"


class AttemptEventKind(models.TextChoices):
    REMARKED = "remarked", _("Part re-marked")
    DELETED = "deleted", _("Deleted")
    RESTORED = "restored", _("Restored")
    REOPENED = "reopened", _("Reopened")
    ENDED_AT_DEADLINE = "ended_at_deadline", _("Ended at the closing time or time limit")
    MOVED = "moved", _("Moved to another exam version")


class AttemptEvent(models.Model):
    """The audit trail of what instructors did to an attempt."""

    attempt = models.ForeignKey(Attempt, on_delete=models.CASCADE, related_name="events")
    kind = models.CharField(max_length=20, choices=AttemptEventKind.choices)
    by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+")
    at = models.DateTimeField()
    reason = models.CharField(max_length=500, blank=True)
    detail = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["at", "pk"]
        constraints = [models.CheckConstraint(condition=Q(kind__in=AttemptEventKind.values), name="attempt_event_kind_valid")]


class TestRunRemoval(models.Model):
    """The audit of an instructor's test run removed for good (its attempt row, data and
    history are gone; this says whose, which and when)."""

    resource = models.ForeignKey(Resource, on_delete=models.CASCADE, related_name="test_run_removals")
    attempt_id = models.BigIntegerField()
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+")
    number = models.PositiveIntegerField()
    started_at = models.DateTimeField()
    ended_at = models.DateTimeField(null=True, blank=True)
    score_raw = models.FloatField(null=True, blank=True)
    changes = models.PositiveIntegerField(help_text="How many stored values went with it.")
    by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+")
    at = models.DateTimeField()

    class Meta:
        ordering = ["at", "pk"]


class PartOverride(models.Model):
    """An instructor's mark for one part (or one gap of a gap-fill part: "q0p0g1") of one attempt,
    replacing what the exam gave."""

    attempt = models.ForeignKey(Attempt, on_delete=models.CASCADE, related_name="overrides")
    part_id = models.CharField(max_length=20)
    score = models.FloatField()
    by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+")
    at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["attempt", "part_id"], name="override_unique_per_part"),
            models.CheckConstraint(condition=Q(part_id__regex=r"^q[0-9]+p[0-9]+(g[0-9]+)?$"),
                                   name="override_part_or_gap_form"),
            models.CheckConstraint(condition=Q(score__gte=0), name="override_score_not_negative"),
        ]
