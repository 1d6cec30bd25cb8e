from django.urls import path

from dashboard import views

app_name = "dashboard"

urlpatterns = [
    path("<id:resource_id>/instructor/students/", views.students, name="students"),
    path("<id:resource_id>/instructor/students/access/", views.access_list, name="access_list"),
    path("<id:resource_id>/instructor/students/pending/<id:pending_id>/remove/", views.pending_remove,
         name="pending_remove"),
    path("<id:resource_id>/instructor/students/course-list/", views.roster_refresh, name="roster_refresh"),
    path("<id:resource_id>/instructor/students/course-list/<id:member_id>/", views.roster_student,
         name="roster_student"),
    path("<id:resource_id>/instructor/students/course-list/<id:member_id>/access/", views.roster_access_change,
         name="roster_access"),
    path("<id:resource_id>/instructor/students/<id:membership_id>/", views.student, name="student"),
    path("<id:resource_id>/instructor/students/<id:membership_id>/access/", views.access_change, name="access"),
    path("<id:resource_id>/instructor/attempts/<id:attempt_id>/", views.attempt, name="attempt"),
    path("<id:resource_id>/instructor/attempts/<id:attempt_id>/remark/", views.remark, name="remark"),
    path("<id:resource_id>/instructor/attempts/<id:attempt_id>/delete/", views.delete, name="delete"),
    path("<id:resource_id>/instructor/attempts/<id:attempt_id>/restore/", views.restore, name="restore"),
    path("<id:resource_id>/instructor/attempts/<id:attempt_id>/reopen/", views.reopen, name="reopen"),
]
