"""LTI 1.3 on our side: the platforms (LMS registrations) that may launch us, the keys we sign
with, and the OIDC logins in flight.

The courses, activities, people and memberships a 1.3 launch creates are the same `lms` models
a 1.1 launch creates: a platform belongs to an `lms.Consumer` (the LMS), and everything
downstream neither knows nor cares which version launched it.
"""

from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from lms.models import Consumer, Resource


class Platform(models.Model):
    """An LMS registration: the issuer and the client id it gave us, and where its OIDC, token
    and key endpoints are. Several registrations of one issuer share one consumer."""

    name = models.CharField(max_length=200)
    consumer = models.ForeignKey(Consumer, on_delete=models.PROTECT, related_name="platforms")
    issuer = models.CharField(max_length=255, help_text=_("The LMS's issuer (iss), e.g. https://moodle.example.edu"))
    client_id = models.CharField(max_length=255, help_text=_("The client id the LMS gave this tool."))
    auth_login_url = models.URLField(
        _("authentication request URL"), max_length=1000,
        help_text=_("The LMS's OIDC authorization endpoint, where the tool sends the browser during a launch."))
    auth_token_url = models.URLField(
        _("access token URL"), max_length=1000, blank=True,
        help_text=_("The LMS's OAuth2 token endpoint, for grades and rosters (AGS, NRPS)."))
    auth_audience = models.CharField(
        max_length=1000, blank=True,
        help_text=_("The audience of the tool's token requests, if the LMS wants one other than the token URL."))
    keyset_url = models.URLField(
        _("public keyset URL"), max_length=1000, blank=True,
        help_text=_("The LMS's JWKS URL, where its public keys are published."))
    keyset = models.JSONField(
        _("public keyset"), null=True, blank=True,
        help_text=_("The LMS's public keys as a JWKS, for an LMS that publishes no keyset URL."))
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        verbose_name = _("LTI 1.3 platform")
        constraints = [
            models.UniqueConstraint(fields=["issuer", "client_id"], name="platform_unique_client"),
            models.CheckConstraint(condition=~Q(issuer="") & ~Q(client_id=""), name="platform_ids_not_empty"),
            models.CheckConstraint(condition=~Q(keyset_url="") | Q(keyset__isnull=False), name="platform_has_keys"),
        ]

    def __str__(self):
        return f"{self.name} ({self.issuer}, client {self.client_id})"


class Deployment(models.Model):
    """A deployment id of a platform: launches from other deployments are refused."""

    platform = models.ForeignKey(Platform, on_delete=models.CASCADE, related_name="deployments")
    deployment_id = models.CharField(max_length=255)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["platform", "deployment_id"], name="deployment_unique_per_platform"),
            models.CheckConstraint(condition=~Q(deployment_id=""), name="deployment_id_not_empty"),
        ]

    def __str__(self):
        return self.deployment_id


class ToolKey(models.Model):
    """An RSA key pair of the tool. Every key not yet retired is published at the JWKS URL; the
    newest key whose `signs_from` has come signs. A rotation publishes the new key ahead of
    `signs_from`, so platforms that cache our keyset know it before it signs, and keeps the old
    one published until `retires_at`, so what it signed can still be checked."""

    kid = models.CharField(max_length=64, unique=True)
    private_key_pem = models.TextField()
    public_jwk = models.JSONField()
    created_at = models.DateTimeField()
    signs_from = models.DateTimeField()
    retires_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-signs_from", "-id"]
        constraints = [
            models.CheckConstraint(condition=Q(retires_at__isnull=True) | Q(retires_at__gt=models.F("signs_from")),
                                   name="toolkey_retires_after_signing"),
        ]

    def __str__(self):
        return self.kid


class LoginState(models.Model):
    """An OIDC login started by a platform: the state and nonce we sent it, which come back with
    the id_token. Used once (`used_at`): the unique state and the UPDATE that sets used_at are
    what refuse a replayed launch."""

    state = models.CharField(max_length=64, unique=True)
    nonce = models.CharField(max_length=64)
    platform = models.ForeignKey(Platform, on_delete=models.CASCADE, related_name="+")
    # What the platform sent to the login URL, to start over in a new window if need be.
    target_link_uri = models.URLField(max_length=1000)
    login_hint = models.TextField()
    lti_message_hint = models.TextField(blank=True)
    deployment_id = models.CharField(max_length=255, blank=True)
    storage_target = models.CharField(max_length=100, blank=True, help_text="lti_storage_target, if offered.")
    # With platform storage, a secret the login page puts into the platform's storage for this
    # browser; a launch that arrives without our state cookie must bring it back from there.
    storage_secret_hash = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField()
    expires_at = models.DateTimeField(db_index=True)
    used_at = models.DateTimeField(null=True, blank=True)

    def __str__(self):
        return self.state


class Roster(models.Model):
    """A course's list of members as its LMS last gave it (Names and Role Provisioning
    Services), and how the latest try to fetch it went."""

    context = models.OneToOneField("lms.Context", on_delete=models.CASCADE, primary_key=True, related_name="roster")
    platform = models.ForeignKey(Platform, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    source_url = models.URLField(max_length=1000, blank=True, help_text=_("The memberships URL it was read from."))
    fetched_at = models.DateTimeField(null=True, blank=True, help_text=_("When the list was last read."))
    member_count = models.PositiveIntegerField(default=0)
    # False when the LMS listed more than the tool reads at once (pages, people or time): members
    # not seen in that read were kept rather than removed.
    complete = models.BooleanField(default=True)
    tried_at = models.DateTimeField(null=True, blank=True, help_text=_("When the latest fetch was tried."))
    last_error = models.TextField(blank=True, help_text=_("Why the latest fetch failed; empty if it did not."))

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(fetched_at__isnull=True) | ~Q(source_url=""),
                                   name="roster_fetched_has_source"),
        ]

    def __str__(self):
        return f"course list of {self.context}"


class RosterStatus(models.TextChoices):
    ACTIVE = "Active", _("Active")
    INACTIVE = "Inactive", _("Inactive")
    DELETED = "Deleted", _("Deleted")


class RosterMember(models.Model):
    """One member of a course as the LMS listed them, whether or not they have launched us.
    `identity` is the person's `lms.LtiIdentity` once they have launched (same consumer, their
    `sub`, or a 1.1 user id with no `sub` yet)."""

    context = models.ForeignKey("lms.Context", on_delete=models.CASCADE, related_name="roster_members")
    user_id = models.CharField(max_length=255, help_text=_("The member's LTI 1.3 user id (sub)."))
    legacy_user_id = models.CharField(max_length=255, blank=True,
                                      help_text=_("Their LTI 1.1 user id, if the LMS gave it."))
    identity = models.ForeignKey("lms.LtiIdentity", on_delete=models.SET_NULL, null=True, blank=True,
                                 related_name="roster_memberships")
    name = models.CharField(max_length=500, blank=True)
    given_name = models.CharField(max_length=200, blank=True)
    family_name = models.CharField(max_length=200, blank=True)
    email = models.EmailField(max_length=254, blank=True)
    roles = models.TextField(blank=True, help_text=_("The member's roles as the LMS listed them, comma-separated."))
    status = models.CharField(max_length=10, choices=RosterStatus.choices, default=RosterStatus.ACTIVE)
    is_instructor = models.BooleanField(default=False)
    fetched_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["context", "user_id"], name="roster_member_unique_per_context"),
            models.CheckConstraint(condition=~Q(user_id=""), name="roster_member_user_id_not_empty"),
            models.CheckConstraint(condition=Q(status__in=RosterStatus.values), name="roster_member_status_valid"),
        ]
        # A launch links the person to their rows in every course of the LMS (by `sub`).
        indexes = [models.Index(fields=["user_id"], name="roster_member_user_id")]

    def __str__(self):
        return f"{self.name or self.user_id} in {self.context_id}"



class DeepLinkingRequest(models.Model):
    """A checked deep linking request from an instructor, waiting for their choice of activity.

    The picker page carries a random token whose hash is kept here (no session: the picker
    works in an LMS iframe without cookies). The token is good for `expires_at` and for one
    answer (`used_at`): the UPDATE that sets used_at is what refuses a second one."""

    token_hash = models.CharField(max_length=64, unique=True)
    platform = models.ForeignKey(Platform, on_delete=models.CASCADE, related_name="+")
    # The LMS whose courses and activities the instructor may choose from.
    consumer = models.ForeignKey(Consumer, on_delete=models.CASCADE, related_name="+")
    deployment_id = models.CharField(max_length=255)
    # Who asked (the issuer's sub), for the record.
    sub = models.CharField(max_length=255)
    name = models.CharField(max_length=500, blank=True)
    roles = models.TextField(blank=True)
    # The course of the request, if the platform named one (its 1.3 id, and its 1.1 id from the
    # lti1p1 claim for an LMS that upgraded).
    context_lti13_id = models.CharField(max_length=255, blank=True)
    context_legacy_id = models.CharField(max_length=255, blank=True)
    context_title = models.CharField(max_length=500, blank=True)
    context_label = models.CharField(max_length=255, blank=True)
    # The deep_linking_settings claim as the platform sent it (return URL, data to echo, ...).
    settings = models.JSONField()
    return_url = models.URLField(max_length=1000)
    created_at = models.DateTimeField()
    expires_at = models.DateTimeField(db_index=True)
    used_at = models.DateTimeField(null=True, blank=True)
    # The activity the answer linked to.
    resource = models.ForeignKey(Resource, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")

    class Meta:
        constraints = [
            models.CheckConstraint(condition=~Q(return_url=""), name="deeplinking_return_url_not_empty"),
            models.CheckConstraint(condition=Q(expires_at__gt=models.F("created_at")),
                                   name="deeplinking_expires_after_creation"),
        ]

    def __str__(self):
        return f"{self.platform_id}: {self.name or self.sub} at {self.created_at:%Y-%m-%d %H:%M}"


class RegistrationLink(models.Model):
    """A one-time dynamic registration URL an operator hands to an LMS administrator
    (`manage.py lti13_registration_link`): whoever opens it may register one platform, without
    signing in here. Only the token's SHA-256 is kept; the URL is shown once."""

    token_hash = models.CharField(max_length=64, unique=True)
    note = models.CharField(max_length=200, blank=True, help_text=_("Who or what the link was made for."))
    created_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)
    platform = models.ForeignKey(Platform, on_delete=models.SET_NULL, null=True, blank=True, related_name="+",
                                 help_text=_("The platform registered through the link."))

    class Meta:
        ordering = ["-created_at"]
        verbose_name = _("LTI 1.3 registration link")
        constraints = [
            models.CheckConstraint(condition=Q(expires_at__gt=models.F("created_at")),
                                   name="registrationlink_expires_after_creation"),
            models.CheckConstraint(condition=Q(used_at__isnull=True) | Q(used_at__gte=models.F("created_at")),
                                   name="registrationlink_used_after_creation"),
        ]

    def __str__(self):
        state = "used" if self.used_at else "unused"
        return f"{self.note or 'registration link'} ({state}, expires {self.expires_at:%Y-%m-%d})"
