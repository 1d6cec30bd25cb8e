from django.urls import path

from insights import views

app_name = "insights"

urlpatterns = [
    path("<id:resource_id>/instructor/statistics/", views.statistics, name="statistics"),
    path("<id:resource_id>/instructor/live/", views.live, name="live"),
]
