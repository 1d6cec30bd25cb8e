from django.contrib import admin
from django.urls import include, path
from django.views.i18n import JavaScriptCatalog

handler500 = "core.views.server_error"

urlpatterns = [
    path("", include("core.urls")),
    path("lti/", include("lms.urls")),
    path("lti13/", include("lti13.urls")),
    path("resource/", include("people.urls")),
    path("resource/", include("portal.urls")),
    path("resource/", include("exams.urls")),
    path("resource/", include("grading.urls")),
    path("resource/", include("reports.urls")),
    path("resource/", include("dashboard.urls")),
    path("resource/", include("insights.urls")),
    path("resource/", include("remarking.urls")),
    path("staff/", include("staff.urls")),
    path("", include("attempts.urls")),
    path("test-launch/", include("testlaunch.urls")),
    path("admin/", admin.site.urls),
    # The translations of our JavaScript's strings (gettext/ngettext/interpolate in the browser).
    path("jsi18n/", JavaScriptCatalog.as_view(), name="javascript-catalog"),
    # numbas-lti-provider's addresses, for LMSs and bookmarks after moving from it (compat.reference).
    # Last: our own routes always win.
    path("", include("compat.urls")),
]

