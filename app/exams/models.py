"""Numbas exam packages: each upload to a resource is a new version; attempts keep theirs."""

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q

from lms.models import Resource


class ExamPackage(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    resource = models.ForeignKey(Resource, on_delete=models.CASCADE, related_name="exam_packages")
    version = models.PositiveIntegerField()
    title = models.CharField(max_length=500)
    launch_href = models.CharField(max_length=1000, help_text="The SCO's launch file, relative to the package.")
    duration_seconds = models.PositiveIntegerField(null=True, blank=True)
    numbas_version = models.CharField(max_length=100, blank=True)
    structure = models.JSONField(default=list, blank=True, help_text="Questions and their parts, from source.exam.")
    # Extracted under MEDIA_ROOT/exams/<directory>/: a random, unguessable name.
    directory = models.CharField(max_length=100, unique=True)
    file_count = models.PositiveIntegerField()
    expanded_bytes = models.BigIntegerField()
    sha256 = models.CharField(max_length=64)
    original_filename = models.CharField(max_length=255, blank=True)
    uploaded_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True)
    uploaded_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["resource", "-version"]
        constraints = [
            models.UniqueConstraint(fields=["resource", "version"], name="exam_version_unique_per_resource"),
            models.CheckConstraint(condition=Q(version__gte=1), name="exam_version_positive"),
        ]

    def __str__(self):
        return f"{self.title} (v{self.version})"

    @property
    def launch_path(self) -> str:
        """The exam's launch page on the exam-content origin (EXAM_ORIGIN), never the application's."""
        return f"/exams/{self.directory}/{self.launch_href}"

    @property
    def question_count(self) -> int:
        return len(self.structure)


class CurrentVersionChange(models.Model):
    """Which version of a resource's exam new attempts start on, and who chose it when: a row per
    upload (the new version becomes current) and per "make this version current again". The
    resource's newest row says its current version; a resource without rows (exams uploaded
    before versions could be chosen) starts attempts on its newest version."""

    class Why(models.TextChoices):
        UPLOADED = "uploaded", "Uploaded"
        RESTORED = "restored", "Made current again"

    resource = models.ForeignKey(Resource, on_delete=models.CASCADE, related_name="current_version_changes")
    exam = models.ForeignKey(ExamPackage, on_delete=models.CASCADE, related_name="current_changes")
    why = models.CharField(max_length=20, choices=Why.choices)
    by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
                           related_name="+")
    at = models.DateTimeField()

    class Meta:
        ordering = ["resource", "-at", "-pk"]
        indexes = [models.Index(fields=["resource", "-at", "-id"], name="current_version_latest")]
        constraints = [models.CheckConstraint(condition=Q(why__in=["uploaded", "restored"]),
                                              name="current_version_why_valid")]
