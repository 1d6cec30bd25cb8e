from django.urls import path

from exams import views

app_name = "exams"

urlpatterns = [
    path("<id:resource_id>/instructor/exam/", views.upload, name="upload"),
    path("<id:resource_id>/instructor/exam/versions/<uuid:exam_id>/download/", views.version_download,
         name="version_download"),
    path("<id:resource_id>/instructor/exam/versions/<uuid:exam_id>/current/", views.version_make_current,
         name="version_make_current"),
    path("<id:resource_id>/instructor/exam/move/", views.attempts_move, name="attempts_move"),
]
