"""CSV report files that instructors ask for and a Huey worker writes.

A `ReportFile` row is the request, its progress and, once done, the file's place under
PRIVATE_ROOT (never under MEDIA_ROOT: the only way to the file is the download view, which
checks who is asking). The id is a random UUID, so report URLs cannot be guessed or counted.
"""

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q

from lms.models import Resource


class ReportKind(models.TextChoices):
    SCORES = "scores", "Scores (one row per student)"
    ATTEMPTS = "attempts", "Attempts (one row per attempt, with each question's score)"
    EXPORT = "export", "Everything about the activity (JSON)"


class ReportFileState(models.TextChoices):
    QUEUED = "queued", "Waiting for a worker"
    RUNNING = "running", "Being written"
    DONE = "done", "Ready to download"
    FAILED = "failed", "Failed"


ACTIVE_STATES = (ReportFileState.QUEUED, ReportFileState.RUNNING)


class ReportFile(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    resource = models.ForeignKey(Resource, on_delete=models.CASCADE, related_name="report_files")
    kind = models.CharField(max_length=20, choices=ReportKind.choices)
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
                                     related_name="+")
    state = models.CharField(max_length=20, choices=ReportFileState.choices, default=ReportFileState.QUEUED)
    progress = models.PositiveSmallIntegerField(default=0, help_text="Percent of the rows written.")
    rows = models.PositiveIntegerField(default=0, help_text="Data rows written so far (without the header).")
    relative_path = models.CharField(max_length=255, blank=True, help_text="Under PRIVATE_ROOT, once done.")
    size_bytes = models.BigIntegerField(null=True, blank=True)
    error = models.TextField(blank=True, help_text="Why it failed, for the instructor.")
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField(help_text="Last change of state or progress (a worker's heartbeat).")
    finished_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True, help_text="The file and this row are removed then.")

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["resource", "-created_at"], name="reportfile_resource_latest"),
            models.Index(fields=["expires_at"], name="reportfile_expiry"),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(kind__in=ReportKind.values), name="reportfile_kind_valid"),
            models.CheckConstraint(condition=Q(state__in=ReportFileState.values), name="reportfile_state_valid"),
            models.CheckConstraint(condition=Q(progress__gte=0, progress__lte=100), name="reportfile_progress_range"),
            models.CheckConstraint(
                condition=~Q(state=ReportFileState.DONE)
                | (~Q(relative_path="") & Q(size_bytes__isnull=False, finished_at__isnull=False,
                                            expires_at__isnull=False, progress=100)),
                name="reportfile_done_has_file",
            ),
            models.CheckConstraint(
                condition=Q(relative_path="") | Q(relative_path__startswith="reports/"),
                name="reportfile_path_under_reports",
            ),
            # Asking again while the same report is being written returns that one.
            models.UniqueConstraint(
                fields=["resource", "kind"], condition=Q(state__in=ACTIVE_STATES), name="reportfile_one_active_per_kind"
            ),
        ]

    def __str__(self):
        return f"{self.get_kind_display()} for {self.resource} ({self.state})"

    @property
    def is_active(self) -> bool:
        return self.state in ACTIVE_STATES
