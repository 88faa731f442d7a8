"""Websocket routes; the consumers live with their apps and only relay events (STYLE §8)."""

from django.urls import URLPattern

websocket_urlpatterns: list[URLPattern] = []
