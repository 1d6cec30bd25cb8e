"""Websocket routes. Each consumer authenticates its user from the session (AuthMiddlewareStack)."""

from django.urls import path

from attempts.consumers import AttemptConsumer
from core.consumers import WhoAmIConsumer
from insights.consumers import LiveConsumer

websocket_urlpatterns = [
    path("ws/whoami/", WhoAmIConsumer.as_asgi()),
    path("ws/attempt/<int:attempt_id>/", AttemptConsumer.as_asgi()),
    path("ws/resource/<int:resource_id>/live/", LiveConsumer.as_asgi()),
]
