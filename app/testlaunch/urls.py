from django.urls import path

from testlaunch import platform_views, views

app_name = "testlaunch"

urlpatterns = [
    path("", views.test_launch, name="launch"),
    # The demo LMS's gradebook, and its LTI 1.1 outcome service (Basic Outcomes).
    path("gradebook", views.gradebook, name="gradebook"),
    path("outcomes", views.outcome_service, name="outcomes"),
    # The demo LMS as an LTI 1.3 platform (testlaunch.platform); its issuer is the first path.
    path("platform", platform_views.platform_home, name="platform"),
    path("platform/jwks", platform_views.platform_jwks, name="platform_jwks"),
    path("platform/auth", platform_views.platform_auth, name="platform_auth"),
    path("platform/token", platform_views.platform_token, name="platform_token"),
    path("platform/courses/<id:course_id>/lineitems", platform_views.platform_lineitems, name="platform_lineitems"),
    path("platform/courses/<id:course_id>/lineitems/<id:lineitem_id>", platform_views.platform_lineitem,
         name="platform_lineitem"),
    path("platform/courses/<id:course_id>/lineitems/<id:lineitem_id>/scores", platform_views.platform_scores,
         name="platform_scores"),
    path("platform/courses/<id:course_id>/memberships", platform_views.platform_memberships,
         name="platform_memberships"),
]
