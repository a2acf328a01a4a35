from django.urls import path

from tracking import views

urlpatterns = [
    path("readings/rssi/", views.RssiIngestView.as_view(), name="ingest-rssi"),
    path("scanners/heartbeat/", views.HeartbeatView.as_view(), name="scanner-heartbeat"),
]
