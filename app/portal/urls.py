from django.urls import path

from portal import views

app_name = "portal"

urlpatterns = [
    path("<id:resource_id>/", views.student, name="student"),
    path("<id:resource_id>/instructor/", views.instructor, name="instructor"),
    path("<id:resource_id>/instructor/settings/", views.settings_update, name="settings"),
]
