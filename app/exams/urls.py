from django.urls import path

from exams import views

app_name = "exams"

urlpatterns = [
    path("<id:resource_id>/instructor/exam/", views.upload, name="upload"),
]
