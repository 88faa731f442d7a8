"""Websocket routes; consumers only relay events (STYLE §8)."""

from django.urls import path

from tradingsite.consumers import EventStreamConsumer

websocket_urlpatterns = [
    path("ws/stream", EventStreamConsumer.as_asgi()),
]
