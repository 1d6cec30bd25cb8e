from django.urls import path

from attempts import views

app_name = "attempts"

urlpatterns = [
    path("resource/<id:resource_id>/attempts/start/", views.start, name="start"),
    path("attempt/<id:attempt_id>/", views.run, name="run"),
    path("attempt/<id:attempt_id>/reopen/", views.reopen, name="reopen"),
    path("attempt/<id:attempt_id>/take-over/", views.take_over, name="take_over"),
    path("attempt/<id:attempt_id>/state/", views.state, name="state"),
    path("attempt/<id:attempt_id>/batches/", views.batches, name="batches"),
]
