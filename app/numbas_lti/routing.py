"""Websocket routes. Each consumer authenticates its user from the session (AuthMiddlewareStack)."""

from django.urls import path, re_path

from attempts.consumers import AttemptConsumer
from core.consumers import NotFoundConsumer, WhoAmIConsumer
from insights.consumers import LiveConsumer

websocket_urlpatterns = [
    path("ws/whoami/", WhoAmIConsumer.as_asgi()),
    path("ws/attempt/<id:attempt_id>/", AttemptConsumer.as_asgi()),
    path("ws/resource/<id:resource_id>/live/", LiveConsumer.as_asgi()),
    re_path(r"^.*$", NotFoundConsumer.as_asgi()),  # last: whatever no route above matches
]
