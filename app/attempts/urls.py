from django.urls import path

from attempts import views

app_name = "attempts"

urlpatterns = [
    path("resource/<id:resource_id>/attempts/start/", views.start, name="start"),
    path("resource/<id:resource_id>/test-runs/", views.test_runs, name="test_runs"),
    path("resource/<id:resource_id>/test-runs/start/", views.test_run_start, name="test_run_start"),
    path("resource/<id:resource_id>/test-runs/<id:attempt_id>/remove/", views.test_run_remove,
         name="test_run_remove"),
    path("resource/<id:resource_id>/receipts/check/", views.receipt_check, name="receipt_check"),
    path("attempt/<id:attempt_id>/", views.run, name="run"),
    path("attempt/<id:attempt_id>/reopen/", views.reopen, name="reopen"),
    path("attempt/<id:attempt_id>/take-over/", views.take_over, name="take_over"),
    path("attempt/<id:attempt_id>/state/", views.state, name="state"),
    path("attempt/<id:attempt_id>/batches/", views.batches, name="batches"),
]
