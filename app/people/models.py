from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class Preferences(models.Model):
    """One person's own settings for how pages are shown to them."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, primary_key=True,
                                related_name="preferences")
    # An IANA time zone name ("Europe/Berlin"); empty: the browser's zone.
    time_zone = models.CharField(_("time zone"), max_length=64, blank=True, default="")
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self):
        return f"{self.user} ({self.time_zone or 'browser time zone'})"
