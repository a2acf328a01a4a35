from django.urls import path
from rest_framework.routers import SimpleRouter

from environment import api, views

router = SimpleRouter()
router.register("sensors", api.SensorViewSet, basename="sensor")
router.register("environment-readings", api.ReadingViewSet, basename="environment-reading")
router.register("reading-annotations", api.AnnotationViewSet, basename="reading-annotation")

urlpatterns = [
    path(
        "readings/environment/",
        views.EnvironmentIngestView.as_view(),
        name="ingest-environment",
    ),
    *router.urls,
]
