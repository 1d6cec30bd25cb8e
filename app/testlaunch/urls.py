from django.urls import path

from testlaunch import views

app_name = "testlaunch"

urlpatterns = [
    path("", views.test_launch, name="launch"),
]
