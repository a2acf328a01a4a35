"""All websocket routes of the project, collected in one place for the ASGI router."""

from django.urls import path

from alerts.consumers import AlertConsumer
from tracking.consumers import FloorConsumer

websocket_urlpatterns: list = [
    path("ws/floors/<int:floor_id>/", FloorConsumer.as_asgi(), name="ws-floor"),
    path("ws/alerts/", AlertConsumer.as_asgi(), name="ws-alerts"),
]
