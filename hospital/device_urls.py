"""The URLconf of the device tier (hospital.device_wsgi): the three device endpoints, at the
paths and names they have in hospital.urls, and a JSON 404 for every other path."""

from django.http import JsonResponse
from django.urls import path, re_path

from environment.views import EnvironmentIngestView
from tracking.views import HeartbeatView, RssiIngestView

DEVICE_PATHS = (
    "/api/v1/readings/rssi/",
    "/api/v1/readings/environment/",
    "/api/v1/scanners/heartbeat/",
)


def not_a_device_endpoint(request, *args, **kwargs) -> JsonResponse:
    """Whatever else reaches this server (pages, admin, REST, websockets) is answered here, so
    the people's site is never served without its middleware."""
    return JsonResponse(
        {
            "detail": "not found: this server answers only the device endpoints "
            f"(POST {', '.join(DEVICE_PATHS)})"
        },
        status=404,
    )


urlpatterns = [
    path("api/v1/readings/rssi/", RssiIngestView.as_view(), name="ingest-rssi"),
    path(
        "api/v1/readings/environment/",
        EnvironmentIngestView.as_view(),
        name="ingest-environment",
    ),
    path("api/v1/scanners/heartbeat/", HeartbeatView.as_view(), name="scanner-heartbeat"),
    re_path(r"", not_a_device_endpoint),
]
