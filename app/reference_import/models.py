"""Which of our objects each imported numbas-lti-provider ("reference") object became.

One row per imported object: the reference's table (kind) and primary key, and our object's
primary key (text: exam versions have UUIDs). Written in the same transaction as the object,
so a run killed midway leaves no object without its link; a later run skips what is linked.
"""

from django.db import models
from django.db.models import Q


# The batch that holds an imported attempt's SCORM data history is named this plus the reference
# attempt's id; what this service stores later is in batches of its own.
IMPORT_BATCH_PREFIX = "reference-import-"


class Kind(models.TextChoices):
    CONSUMER = "consumer"  # numbas_lti_lticonsumer -> lms.Consumer
    PLATFORM = "platform"  # lti1p3_tool (through numbas_lti_lti_13_consumer) -> lti13.Platform
    CONTEXT = "context"  # numbas_lti_lticontext -> lms.Context
    RESOURCE = "resource"  # numbas_lti_resource -> lms.Resource (+ attempts.ResourceSettings)
    EXAM = "exam"  # numbas_lti_exam -> exams.ExamPackage
    USER = "user"  # auth_user -> auth.User (+ lms.LtiIdentity)
    MEMBERSHIP = "membership"  # numbas_lti_ltiuserdata -> lms.ResourceMembership
    ATTEMPT = "attempt"  # numbas_lti_attempt -> attempts.Attempt (+ its data and history)
    DISCOUNT = "discount"  # numbas_lti_discountpart -> grading.Discount
    REMARK = "remark"  # numbas_lti_remarkpart -> attempts.PartOverride
    ACCESS_CHANGE = "access_change"  # numbas_lti_accesschange -> the number of our rows it became
    GRADE = "grade"  # numbas_lti_ltiuserdata (a student's last reported score) -> grading.GradeReport


class ImportLink(models.Model):
    kind = models.CharField(max_length=20, choices=Kind.choices)
    reference_pk = models.BigIntegerField()
    local_pk = models.CharField(max_length=64)
    imported_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["kind", "reference_pk"], name="import_link_unique_reference"),
            models.CheckConstraint(condition=Q(kind__in=Kind.values), name="import_link_kind_valid"),
        ]
        indexes = [models.Index(fields=["kind", "local_pk"], name="import_link_by_local")]

    def __str__(self):
        return f"{self.kind} {self.reference_pk} -> {self.local_pk}"
