from django.urls import path

from reports import views

app_name = "reports"

urlpatterns = [
    path("<id:resource_id>/instructor/reports/", views.reports, name="list"),
    path("<id:resource_id>/instructor/reports/<uuid:report_id>/status/", views.status, name="status"),
    path("<id:resource_id>/instructor/reports/<uuid:report_id>/download/", views.download, name="download"),
]
