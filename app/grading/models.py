"""Discounts, the grade owed to the LMS for each student (the passback outbox), and every
attempt to deliver it.

`GradeReport` is the durable outbox: one row per (student, resource) membership, written in
the same transaction as the score change it reports. The Huey queue only carries hints
("something is due"); the rows are the truth, so losing Redis or a worker loses nothing.
"""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from lms.models import Resource, ResourceMembership


class DiscountBehaviour(models.TextChoices):
    REMOVE = "remove", _("Remove it from the total")
    FULL_MARKS = "full_marks", _("Give everyone full marks for it")


class Discount(models.Model):
    """A question ("q0") or part ("q0p1") of a resource's exam that is discounted."""

    resource = models.ForeignKey(Resource, on_delete=models.CASCADE, related_name="discounts")
    target = models.CharField(max_length=50, help_text='A question id such as "q0" or a part id such as "q0p1".')
    behaviour = models.CharField(max_length=20, choices=DiscountBehaviour.choices)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["resource", "target"]
        constraints = [
            models.UniqueConstraint(fields=["resource", "target"], name="discount_unique_per_target"),
            models.CheckConstraint(condition=Q(behaviour__in=DiscountBehaviour.values), name="discount_behaviour_valid"),
            models.CheckConstraint(condition=Q(target__regex=r"^q[0-9]+(p[0-9]+)?$"), name="discount_target_form"),
        ]

    def __str__(self):
        return f"{self.target}: {self.get_behaviour_display()}"


class ReportState(models.TextChoices):
    WAITING = "waiting", _("Not reported yet")  # a grade exists; the resource's policy has not asked to send it
    PENDING = "pending", _("Waiting to be sent")
    DELIVERED = "delivered", _("In the gradebook")
    FAILED = "failed", _("The LMS refused it")
    NO_OUTCOME = "no_outcome", _("The LMS has no grade column for this student")


class GradeReport(models.Model):
    """The student's grade for a resource and the state of reporting it to the LMS.

    `version` increases on every change of `score`; a send that began at an older version
    does not mark the row delivered, so the latest score is always the one that ends up in
    the gradebook (coalescing: a newer score supersedes a pending one).
    """

    membership = models.OneToOneField(ResourceMembership, on_delete=models.CASCADE, related_name="grade_report")
    resource = models.ForeignKey(Resource, on_delete=models.CASCADE, related_name="grade_reports")
    score = models.FloatField(null=True, blank=True, help_text="0..1; what the LMS should have.")
    attempt_number = models.PositiveIntegerField(null=True, blank=True, help_text="The attempt the score comes from.")
    version = models.PositiveIntegerField(default=1)
    state = models.CharField(max_length=20, choices=ReportState.choices, default=ReportState.WAITING)
    due_at = models.DateTimeField(null=True, blank=True)
    lease_until = models.DateTimeField(null=True, blank=True, help_text="A worker is sending it until then.")
    failures = models.PositiveIntegerField(default=0, help_text="Consecutive failed sends (sets the backoff).")
    # A database default too: rows written by plain SQL (benchmarks, imports) start at 0 like any other.
    non_lti_answers = models.PositiveIntegerField(
        default=0, db_default=0, help_text="Consecutive answers that were not LTI (a login page, say): too many and it fails."
    )
    sent_score = models.FloatField(null=True, blank=True)
    sent_version = models.PositiveIntegerField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    updated_at = models.DateTimeField()

    class Meta:
        indexes = [
            models.Index(fields=["due_at"], name="gradereport_due", condition=Q(state="pending")),
            models.Index(fields=["resource", "state"]),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(score__isnull=True) | Q(score__gte=0, score__lte=1), name="grade_score_range"),
            models.CheckConstraint(condition=Q(state__in=ReportState.values), name="grade_state_valid"),
            models.CheckConstraint(condition=~Q(state="pending") | Q(due_at__isnull=False), name="grade_pending_has_due"),
        ]

    def __str__(self):
        return f"Grade {self.score} for {self.membership} ({self.state})"


class SendOutcome(models.TextChoices):
    DELIVERED = "delivered", _("Accepted by the LMS")
    RETRY = "retry", _("Failed; will retry")
    FAILED = "failed", _("Refused; will not retry")


class GradeSend(models.Model):
    """One attempt to deliver a grade: when, what, and what the LMS answered."""

    id = models.BigAutoField(primary_key=True)
    report = models.ForeignKey(GradeReport, on_delete=models.CASCADE, related_name="sends")
    sent_at = models.DateTimeField()
    score = models.FloatField()
    version = models.PositiveIntegerField()
    outcome = models.CharField(max_length=20, choices=SendOutcome.choices)
    http_status = models.PositiveIntegerField(null=True, blank=True)
    lms_answer = models.TextField(blank=True, help_text="The LMS's status and description, or the network error.")
    duration_ms = models.PositiveIntegerField()

    class Meta:
        ordering = ["-sent_at", "-id"]
        # the staff dashboard reads the latest tries of every grade (recent errors, the last hour)
        indexes = [models.Index(fields=["report", "-sent_at"]), models.Index(fields=["-sent_at"], name="gradesend_recent")]
        constraints = [models.CheckConstraint(condition=Q(outcome__in=SendOutcome.values), name="send_outcome_valid")]


class AttemptQuestionScore(models.Model):
    """An ended attempt's score per question (re-marks included, discounts not), written when
    it ends, is re-marked, reopened, deleted or restored (a deleted or open attempt has none):
    the statistics page averages these rows instead of every attempt's run-time data."""

    attempt = models.ForeignKey("attempts.Attempt", on_delete=models.CASCADE, related_name="question_scores")
    resource = models.ForeignKey(Resource, on_delete=models.CASCADE, related_name="+")  # the attempt's, for one scan
    question_id = models.CharField(max_length=50)
    raw = models.FloatField()
    max = models.FloatField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["attempt", "question_id"], name="question_score_unique")]
        indexes = [models.Index(fields=["resource", "question_id"], include=["raw", "max"],
                                name="question_score_by_resource")]
