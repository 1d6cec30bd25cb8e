"""Re-marking every attempt of a resource with its current exam version's own marking.

The marking itself runs in the instructor's browser, on the exam-content origin (see
static/remarking/remark.js and content/static/content/runtime/remark.js): each attempt's stored
values are loaded into the exam there, the exam marks the answers again, and what it reports
is sent back here one attempt at a time and kept in a `RemarkItem` at once — so a closed page
loses at most the attempt in flight, and reopening the page carries on where it stopped.
Nothing reaches the attempts until the instructor applies the run (services.remark_run_apply).
"""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from attempts.models import Attempt
from exams.models import ExamPackage
from lms.models import Resource


class RemarkScope(models.TextChoices):
    ALL = "all", _("All attempts")
    IN_PROGRESS = "in_progress", _("Attempts in progress")
    FINISHED = "finished", _("Finished attempts")


class RemarkRunStatus(models.TextChoices):
    RUNNING = "running", _("Marking")  # items are being marked, or the preview waits to be applied
    APPLIED = "applied", _("Applied")
    DISCARDED = "discarded", _("Discarded")


class RemarkRun(models.Model):
    resource = models.ForeignKey(Resource, on_delete=models.CASCADE, related_name="remark_runs")
    exam = models.ForeignKey(ExamPackage, on_delete=models.CASCADE, related_name="remark_runs",
                             help_text="The exam version whose marking is used.")
    scope = models.CharField(max_length=20, choices=RemarkScope.choices, default=RemarkScope.ALL)
    status = models.CharField(max_length=20, choices=RemarkRunStatus.choices, default=RemarkRunStatus.RUNNING)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+")
    created_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True, help_text="When it was applied or discarded.")
    finished_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
                                    related_name="+")

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(status__in=RemarkRunStatus.values), name="remark_run_status_valid"),
            models.CheckConstraint(condition=Q(scope__in=RemarkScope.values), name="remark_run_scope_valid"),
            # One run at a time per resource: two would race for the same attempts.
            models.UniqueConstraint(fields=["resource"], condition=Q(status="running"),
                                    name="remark_run_one_running_per_resource"),
        ]

    def __str__(self):
        return f"Re-mark {self.pk} of {self.resource}"


class RemarkItemStatus(models.TextChoices):
    PENDING = "pending", _("Waiting to be marked")
    MARKED = "marked", _("Marked")
    FAILED = "failed", _("The exam could not mark it")
    APPLIED = "applied", _("Applied")
    STALE = "stale", _("Changed since it was marked: not applied")


class RemarkItem(models.Model):
    """One attempt of a run: what the exam gave it before and after marking it again."""

    run = models.ForeignKey(RemarkRun, on_delete=models.CASCADE, related_name="items")
    attempt = models.ForeignKey(Attempt, on_delete=models.CASCADE, related_name="+")
    status = models.CharField(max_length=20, choices=RemarkItemStatus.choices, default=RemarkItemStatus.PENDING)
    # The attempt's next sequence number when its values were handed out for marking: the
    # attempt has changed since (and the result is stale) if it is no longer the same.
    base_sequence = models.BigIntegerField(null=True, blank=True)
    old_raw = models.FloatField(null=True, blank=True)
    old_max = models.FloatField(null=True, blank=True)
    new_raw = models.FloatField(null=True, blank=True)
    new_max = models.FloatField(null=True, blank=True)
    changed = models.BooleanField(default=False, help_text="The exam reported any score differently.")
    # {key: new value} for the scoring values the exam reported differently.
    new_values = models.JSONField(default=dict, blank=True)
    # [{"id": "q0p1", "old": 0, "new": 1}, ...]: questions and parts whose score changed.
    differences = models.JSONField(default=list, blank=True)
    error = models.CharField(max_length=500, blank=True)
    marked_at = models.DateTimeField(null=True, blank=True)
    applied_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["pk"]
        constraints = [
            models.UniqueConstraint(fields=["run", "attempt"], name="remark_item_unique_per_run"),
            models.CheckConstraint(condition=Q(status__in=RemarkItemStatus.values), name="remark_item_status_valid"),
        ]
        indexes = [models.Index(fields=["run", "status"])]
