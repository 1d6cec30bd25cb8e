from django.urls import path

from lti13 import views

app_name = "lti13"

urlpatterns = [
    path("login/", views.oidc_login, name="login"),
    path("launch/", views.launch, name="launch"),
    path("deep-linking/", views.deep_linking_choose, name="deep_linking"),
    path("jwks/", views.jwks, name="jwks"),
    path("platforms/<id:platform_id>/", views.platform_setup, name="platform_setup"),
    path("register/", views.register, name="register"),
    path("register/<str:token>/", views.register_link, name="register_link"),
    path("canvas.json", views.canvas_config, name="canvas_config"),
]
