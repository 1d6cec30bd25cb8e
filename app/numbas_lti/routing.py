"""Websocket routes. Each consumer authenticates its user from the session (AuthMiddlewareStack)."""

from django.urls import path

from core.consumers import WhoAmIConsumer

websocket_urlpatterns = [
    path("ws/whoami/", WhoAmIConsumer.as_asgi()),
]
