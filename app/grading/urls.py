from django.urls import path

from grading import views

app_name = "grading"

urlpatterns = [
    path("<id:resource_id>/instructor/grades/", views.grades, name="grades"),
    path("<id:resource_id>/instructor/grades/settings/", views.settings_update, name="settings"),
    path("<id:resource_id>/instructor/grades/discounts/", views.discount_update, name="discount"),
    path("<id:resource_id>/instructor/grades/report-all/", views.report_all, name="report_all"),
    path("<id:resource_id>/instructor/grades/<id:report_id>/resend/", views.resend, name="resend"),
]
