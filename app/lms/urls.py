from django.urls import path

from lms import views

app_name = "lti"

urlpatterns = [
    path("launch/", views.launch, name="launch"),
    path("handoff/<str:token>/", views.handoff, name="handoff"),
    path("language/", views.language_set, name="language"),
    path("config.xml", views.config_xml, name="config_xml"),
]
