from django.urls import path

from dashboard import views

app_name = "dashboard"

urlpatterns = [
    path("<int:resource_id>/instructor/students/", views.students, name="students"),
    path("<int:resource_id>/instructor/students/<int:membership_id>/", views.student, name="student"),
    path("<int:resource_id>/instructor/students/<int:membership_id>/access/", views.access_change, name="access"),
]
