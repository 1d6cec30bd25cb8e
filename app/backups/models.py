"""What the backup container did: one row per run of `numbas-backup` (full, diff, files,
verify), written by that script with psql (infra/backup/numbas-backup, RECORD_SQL), read by the
staff dashboard (backups.selectors). The app never writes these rows."""

from django.db import models
from django.db.models import F, Q


class BackupKind(models.TextChoices):
    FULL = "full", "Full database backup"
    DIFF = "diff", "Differential database backup"
    FILES = "files", "Media and private files"
    VERIFY = "verify", "Verification (restore into scratch space)"


DATABASE_KINDS = (BackupKind.FULL, BackupKind.DIFF)


class BackupRun(models.Model):
    kind = models.CharField(max_length=10, choices=BackupKind.choices)
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField()
    ok = models.BooleanField()
    size_bytes = models.BigIntegerField(null=True, blank=True, help_text="Bytes stored in the bucket by this run.")
    detail = models.TextField(blank=True, help_text="What the run reported, or why it failed.")

    class Meta:
        ordering = ["-finished_at"]
        indexes = [models.Index(fields=["kind", "-finished_at"], name="backuprun_kind_latest")]
        constraints = [
            models.CheckConstraint(condition=Q(kind__in=BackupKind.values), name="backuprun_kind_valid"),
            models.CheckConstraint(condition=Q(finished_at__gte=F("started_at")), name="backuprun_finished_after_start"),
            models.CheckConstraint(condition=Q(size_bytes__isnull=True) | Q(size_bytes__gte=0),
                                   name="backuprun_size_not_negative"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {'ok' if self.ok else 'failed'} at {self.finished_at:%Y-%m-%d %H:%M}"
