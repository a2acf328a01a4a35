from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from hospital import observability, views

urlpatterns = [
    path("healthz/", views.healthz, name="healthz"),
    path("admin/", admin.site.urls),
    path("accounts/", include("django.contrib.auth.urls")),
    path("api/v1/", include("tracking.urls")),
    path("api/v1/", include("tracking.api.urls")),
    path("", include("web.urls")),
    path("api/v1/", include("environment.urls")),
    path("api/v1/", include("alerts.urls")),
    path("api/v1/health/", observability.health_view, name="health"),
    path("metrics", observability.metrics_view, name="metrics"),
    path("fhir/", include("integrations.fhir.urls")),
    path("api/v1/", include("integrations.urls")),
    path("", include("workflows.urls")),
    path("api/v1/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/v1/docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
]
