from django.urls import path

from dashboard import views

app_name = "dashboard"

urlpatterns = [
    path("<int:resource_id>/instructor/students/", views.students, name="students"),
    path("<int:resource_id>/instructor/students/<int:membership_id>/", views.student, name="student"),
    path("<int:resource_id>/instructor/students/<int:membership_id>/access/", views.access_change, name="access"),
    path("<int:resource_id>/instructor/attempts/<int:attempt_id>/", views.attempt, name="attempt"),
    path("<int:resource_id>/instructor/attempts/<int:attempt_id>/remark/", views.remark, name="remark"),
    path("<int:resource_id>/instructor/attempts/<int:attempt_id>/delete/", views.delete, name="delete"),
    path("<int:resource_id>/instructor/attempts/<int:attempt_id>/restore/", views.restore, name="restore"),
    path("<int:resource_id>/instructor/attempts/<int:attempt_id>/reopen/", views.reopen, name="reopen"),
]
