"""The admin lists django-axes' access attempts (to see a lockout and lift it early by deleting
its row), not its access and failure logs, which settings.AXES_* leave unwritten."""

from axes.models import AccessFailureLog, AccessLog
from django.contrib import admin

admin.site.unregister(AccessLog)
admin.site.unregister(AccessFailureLog)
