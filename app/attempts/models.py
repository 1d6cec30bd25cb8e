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
from lms.models import Resource


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
    """Attempts that have not been deleted (deleting is soft: see attempt_delete)."""

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

    objects = LiveAttempts()
    all_objects = models.Manager()

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


class AccessChange(models.Model):
    """What an instructor changed for one student of a resource: extra attempts, their own
    closing time and extra exam time. Applied at once, also to an attempt that is open."""

    resource = models.ForeignKey(Resource, on_delete=models.CASCADE, related_name="access_changes")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="access_changes")
    extra_attempts = models.PositiveIntegerField(default=0)
    available_until = models.DateTimeField(
        null=True, blank=True, help_text="This student's closing time, instead of the activity's."
    )
    extra_minutes = models.PositiveIntegerField(default=0, help_text="Added to the exam's duration.")
    reason = models.CharField(max_length=500, blank=True)
    changed_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
                                   related_name="+")
    changed_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["resource", "user"], name="access_change_unique_per_student"),
            models.CheckConstraint(condition=Q(extra_attempts__lte=1000), name="access_change_attempts_bounded"),
            models.CheckConstraint(condition=Q(extra_minutes__lte=100000), name="access_change_minutes_bounded"),
        ]

    def __str__(self):
        return f"Access change for {self.user} at {self.resource}"


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
