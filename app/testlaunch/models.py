"""The demo LMS's own records when it acts as an LTI 1.3 platform (see testlaunch.platform):
its signing key, the gradebook columns (AGS line items) of its courses and the scores the tool
sent to them. Its courses and activities are the demo consumer's `lms.Context` and
`lms.Resource` rows, the same ones the LTI 1.1 test launches use."""

from django.db import models
from django.db.models import Q

from lms.models import Context


class DemoPlatformKey(models.Model):
    """The RSA key the demo LMS signs its id_tokens with: one, made on first use."""

    slot = models.PositiveSmallIntegerField(default=1, unique=True)
    kid = models.CharField(max_length=64, unique=True)
    private_key_pem = models.TextField()
    public_jwk = models.JSONField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.CheckConstraint(condition=Q(slot=1), name="demoplatformkey_single")]

    def __str__(self):
        return self.kid


class DemoLineItem(models.Model):
    """A gradebook column of a demo course (AGS line item); its URL is its id."""

    context = models.ForeignKey(Context, on_delete=models.CASCADE, related_name="+")
    label = models.CharField(max_length=500)
    score_maximum = models.FloatField()
    resource_link_id = models.CharField(max_length=255, blank=True)
    resource_id = models.CharField(max_length=255, blank=True)
    tag = models.CharField(max_length=255, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.CheckConstraint(condition=Q(score_maximum__gt=0), name="demolineitem_maximum_positive"),
            models.CheckConstraint(condition=~Q(label=""), name="demolineitem_label_not_empty"),
        ]

    def __str__(self):
        return self.label


class DemoScore(models.Model):
    """A score the tool posted to a line item, as received (every one is kept)."""

    lineitem = models.ForeignKey(DemoLineItem, on_delete=models.CASCADE, related_name="scores")
    user_id = models.CharField(max_length=255)
    score_given = models.FloatField(null=True, blank=True)
    score_maximum = models.FloatField(null=True, blank=True)
    activity_progress = models.CharField(max_length=20)
    grading_progress = models.CharField(max_length=20)
    comment = models.TextField(blank=True)
    timestamp = models.DateTimeField(help_text="When the tool says the score changed.")
    received_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-received_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=Q(score_given__isnull=True) | Q(score_maximum__gt=0),
                                   name="demoscore_given_has_maximum"),
            models.CheckConstraint(condition=Q(score_given__isnull=True) | Q(score_given__gte=0),
                                   name="demoscore_given_not_negative"),
        ]

    def __str__(self):
        return f"{self.user_id}: {self.score_given}/{self.score_maximum}"


class DemoOutcomeResult(models.Model):
    """The demo LMS's gradebook cell for one person in one activity, for LTI 1.1: the sourcedid
    its launches carry (lis_result_sourcedid) and the score its outcome service last received."""

    resource = models.ForeignKey("lms.Resource", on_delete=models.CASCADE, related_name="+")
    user_id = models.CharField(max_length=255, help_text="The person's id in the demo LMS.")
    full_name = models.CharField(max_length=200, blank=True)
    sourcedid = models.CharField(max_length=64, unique=True)
    score = models.FloatField(null=True, blank=True, help_text="0..1; none until the tool sends one (or deletes it).")
    received_at = models.DateTimeField(null=True, blank=True, help_text="When the tool last changed the score.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-received_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["resource", "user_id"], name="demooutcomeresult_one_per_person"),
            models.CheckConstraint(condition=Q(score__isnull=True) | Q(score__gte=0, score__lte=1),
                                   name="demooutcomeresult_score_range"),
        ]

    def __str__(self):
        return f"{self.user_id} in {self.resource_id}: {self.score}"
