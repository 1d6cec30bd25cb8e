from django.urls import path

from people import views

app_name = "people"

# Under resource/ (core.middleware.LMS_EMBEDDED): the preferences page opens inside the LMS's frame.
urlpatterns = [
    path("preferences/", views.preferences, name="preferences"),
    path("preferences/browser-zone/", views.browser_zone, name="browser_zone"),
]
