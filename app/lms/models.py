"""The LTI side of the data model: who launches us (consumers), from where (contexts,
resources), as whom (identities, memberships), and the record of launches and nonces.

Integrity lives in database constraints; services.py is the only writer.
"""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from lms.roles import validate_role_list


class IdentifierField(models.TextChoices):
    """Which of a person's LMS identifiers names them on instructors' pages and in CSVs, next to
    their name (the reference's identifier_field)."""

    EMAIL = "email", _("E-mail address")
    USERNAME = "username", _("LMS username")
    SOURCEDID = "sourcedid", _("Student number (lis_person_sourcedid)")
    LMS_USER_ID = "lti_user_id", _("LMS user id")


class Consumer(models.Model):
    """An LMS allowed to launch us: with LTI 1.1 (an OAuth1 key and secret), with LTI 1.3 (one
    or more `lti13.Platform` registrations of one issuer point here), or both. Courses, activities
    and people belong to the consumer, whichever version launched them, so an LMS that moves
    from 1.1 to 1.3 keeps them (see lti13.services)."""

    name = models.CharField(max_length=200)
    # None for an LMS that only speaks LTI 1.3.
    key = models.CharField(max_length=255, unique=True, null=True, blank=True)
    # The shared secret must be readable to verify HMAC signatures; it is never logged
    # and the admin shows it only to staff who can change consumers.
    secret = models.CharField(max_length=255, blank=True)
    active = models.BooleanField(default=True)
    # Institution and system roles (an LMS's administrators) do not make anyone an instructor
    # of a course (lms.roles); an operator may grant that per LMS.
    instructor_roles = models.TextField(
        _("extra instructor roles"), blank=True, validators=[validate_role_list],
        help_text=_("Roles that also make someone an instructor of the course they launch from, one per line, "
                    "e.g. urn:lti:instrole:ims/lis/Administrator. Course roles Instructor, TeachingAssistant, "
                    "ContentDeveloper, Administrator and Manager always do."),
    )
    identifier_field = models.CharField(
        _("identify students by"), max_length=20, choices=IdentifierField.choices, default=IdentifierField.EMAIL,
        help_text=_("Shown next to students' names on instructors' pages and in CSV files, unless an activity "
                    "chooses otherwise."))
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(condition=~Q(key=""), name="consumer_key_not_empty"),
            models.CheckConstraint(condition=Q(key__isnull=True) | ~Q(secret=""), name="consumer_secret_not_empty"),
        ]

    def __str__(self):
        return f"{self.name} ({self.key})" if self.key else self.name


class Context(models.Model):
    """A course (LTI context) in a consumer."""

    consumer = models.ForeignKey(Consumer, on_delete=models.CASCADE, related_name="contexts")
    context_id = models.CharField(max_length=255)
    # The context claim's id in LTI 1.3 launches. It equals context_id unless the course was
    # first launched with LTI 1.1 and the LMS gives it another id in 1.3 (the lti1p1 claim).
    lti13_id = models.CharField(max_length=255, null=True, blank=True)
    # Names and Role Provisioning: where the LMS lists the course's members (from the latest 1.3 launch).
    nrps_url = models.URLField(max_length=1000, blank=True)
    nrps_platform = models.ForeignKey("lti13.Platform", on_delete=models.SET_NULL, null=True, blank=True,
                                      related_name="+")
    title = models.CharField(max_length=500, blank=True)
    label = models.CharField(max_length=255, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["consumer", "context_id"], name="context_unique_per_consumer"),
            models.UniqueConstraint(fields=["consumer", "lti13_id"], name="context_lti13_unique_per_consumer"),
        ]

    def __str__(self):
        return self.title or self.label or self.context_id


class Resource(models.Model):
    """A placement of the tool in a course (LTI resource link): one exam's home."""

    consumer = models.ForeignKey(Consumer, on_delete=models.CASCADE, related_name="resources")
    resource_link_id = models.CharField(max_length=255)
    # The resource link claim's id in LTI 1.3 launches (see Context.lti13_id).
    lti13_id = models.CharField(max_length=255, null=True, blank=True)
    # The AGS line item our grades go to when the launch names none: found or created once.
    ags_lineitem_url = models.URLField(max_length=1000, blank=True)
    context = models.ForeignKey(
        Context, on_delete=models.SET_NULL, null=True, blank=True, related_name="resources"
    )
    title = models.CharField(max_length=500, blank=True)
    description = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["consumer", "resource_link_id"], name="resource_unique_per_consumer"
            ),
            models.UniqueConstraint(fields=["consumer", "lti13_id"], name="resource_lti13_unique_per_consumer"),
        ]

    def __str__(self):
        return self.title or self.resource_link_id


class ResourceAlias(models.Model):
    """Another LTI 1.3 resource link that opens an existing activity. Deep linking lets an
    instructor add several links to one activity (`lti13.deep_linking`): the first link launched
    owns the Resource (its `lti13_id`); each other link gets a row here on its first launch, and
    its launches are the Resource's (same exam, settings, attempts and grades)."""

    consumer = models.ForeignKey(Consumer, on_delete=models.CASCADE, related_name="+")
    lti13_id = models.CharField(max_length=255)
    resource = models.ForeignKey(Resource, on_delete=models.CASCADE, related_name="aliases")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["consumer", "lti13_id"], name="resource_alias_unique_per_consumer"),
            models.CheckConstraint(condition=~Q(lti13_id=""), name="resource_alias_id_not_empty"),
        ]

    def __str__(self):
        return f"{self.lti13_id} → {self.resource}"


class LtiIdentity(models.Model):
    """An LMS user (consumer + LTI user_id), mapped to exactly one Django user.

    In LTI 1.3 a person is the issuer's `sub` (`sub`, the consumer standing for the issuer). A
    person first seen in 1.3 has lti_user_id = sub; one first seen in 1.1 keeps their 1.1 user_id
    and gains their `sub` on their first 1.3 launch."""

    consumer = models.ForeignKey(Consumer, on_delete=models.CASCADE, related_name="identities")
    lti_user_id = models.CharField(max_length=255)
    sub = models.CharField(max_length=255, null=True, blank=True)
    locale = models.CharField(max_length=35, blank=True, help_text="The language the LMS uses for them (BCP 47).")
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="lti_identity"
    )
    full_name = models.CharField(max_length=500, blank=True)
    email = models.EmailField(max_length=254, blank=True)
    username = models.CharField(max_length=255, blank=True, help_text=(
        "The person's login name in the LMS, as the LMS sent it (Moodle's ext_user_username, Canvas's "
        "login id, Brightspace's ext_d2l_username, a custom 'username' parameter, or OIDC preferred_username)."))
    sourcedid = models.CharField(max_length=255, blank=True, help_text=(
        "The LMS's student-record id for the person (lis_person_sourcedid), often the student number."))
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "LTI identity"
        verbose_name_plural = "LTI identities"
        constraints = [
            models.UniqueConstraint(fields=["consumer", "lti_user_id"], name="identity_unique_per_consumer"),
            models.UniqueConstraint(fields=["consumer", "sub"], name="identity_sub_unique_per_consumer"),
        ]

    def __str__(self):
        return f"{self.full_name or self.lti_user_id} @ {self.consumer.key}"


class LtiVersion(models.TextChoices):
    LTI_1P1 = "1.1", "LTI 1.1"
    LTI_1P3 = "1.3", "LTI 1.3"


class Role(models.TextChoices):
    STUDENT = "student", _("Student")
    INSTRUCTOR = "instructor", _("Instructor")


class ResourceMembership(models.Model):
    """What the latest launch told us about one user in one resource: their role and the
    values needed to report a grade back and to return to the LMS. The latest launch's version
    says how grades go: LTI 1.1 Basic Outcomes (sourcedid and service URL) or LTI 1.3 AGS (the
    platform registration, line item, container and granted scopes)."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    resource = models.ForeignKey(Resource, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=20, choices=Role.choices)
    lti_roles = models.TextField(blank=True, help_text="The roles parameter as the LMS sent it.")
    lis_result_sourcedid = models.TextField(blank=True)
    lis_outcome_service_url = models.URLField(max_length=1000, blank=True)
    return_url = models.URLField(max_length=1000, blank=True)
    lti_version = models.CharField(max_length=3, choices=LtiVersion.choices, default=LtiVersion.LTI_1P1,
                                   db_default=LtiVersion.LTI_1P1)
    platform = models.ForeignKey("lti13.Platform", on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    ags_lineitem_url = models.URLField(max_length=1000, blank=True)
    ags_lineitems_url = models.URLField(max_length=1000, blank=True)
    ags_scopes = models.TextField(blank=True, help_text="The AGS scopes the LMS granted, space-separated.")
    custom = models.JSONField(default=dict, blank=True, help_text="The latest launch's custom parameters.")
    first_launched_at = models.DateTimeField(auto_now_add=True)
    last_launched_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "resource"], name="membership_unique"),
            models.CheckConstraint(condition=Q(role__in=Role.values), name="membership_role_valid"),
            models.CheckConstraint(condition=Q(lti_version__in=LtiVersion.values), name="membership_version_valid"),
        ]

    def __str__(self):
        return f"{self.user} as {self.role} in {self.resource}"

    @property
    def is_instructor(self) -> bool:
        return self.role == Role.INSTRUCTOR


class LaunchLog(models.Model):
    """One row per accepted launch. Also the ticket for "continue in a new window" when the
    browser drops our session cookie inside the LMS iframe."""

    membership = models.ForeignKey(ResourceMembership, on_delete=models.CASCADE, related_name="launches")
    launched_at = models.DateTimeField()
    role = models.CharField(max_length=20, choices=Role.choices)
    user_agent = models.CharField(max_length=500, blank=True)
    handoff_token_hash = models.CharField(max_length=64, unique=True)
    handoff_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-launched_at"]
        indexes = [models.Index(fields=["-launched_at"], name="launchlog_recent")]  # launches in the last 24 h

    def __str__(self):
        return f"{self.membership} at {self.launched_at:%Y-%m-%d %H:%M:%S}"


class UsedNonce(models.Model):
    """An oauth_nonce already used by a consumer. The unique constraint is what rejects a
    replayed launch; rows are purged once their timestamp can no longer be accepted."""

    consumer = models.ForeignKey(Consumer, on_delete=models.CASCADE, related_name="+")
    nonce = models.CharField(max_length=255)
    expires_at = models.DateTimeField(db_index=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["consumer", "nonce"], name="nonce_unique_per_consumer"),
        ]
