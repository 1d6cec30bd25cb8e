from django.urls import path

from remarking import views

app_name = "remarking"

urlpatterns = [
    path("<id:resource_id>/instructor/remark/", views.page, name="page"),
    path("<id:resource_id>/instructor/remark/start/", views.start, name="start"),
    path("<id:resource_id>/instructor/remark/<id:run_id>/next/", views.next_attempt, name="next"),
    path("<id:resource_id>/instructor/remark/<id:run_id>/attempts/<id:attempt_id>/", views.record, name="record"),
    path("<id:resource_id>/instructor/remark/<id:run_id>/apply/", views.apply, name="apply"),
    path("<id:resource_id>/instructor/remark/<id:run_id>/discard/", views.discard, name="discard"),
]
