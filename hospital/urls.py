from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from hospital import observability, views

urlpatterns = [
    path("healthz/", views.healthz, name="healthz"),
    path("admin/", admin.site.urls),
    # Sign-in, sign-out and one's own password only: no self-service reset by e-mail (none is
    # configured, and it would be a second, unthrottled way into an account); an administrator
    # resets passwords in the admin (docs/security.md).
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path(
        "accounts/password_change/",
        auth_views.PasswordChangeView.as_view(),
        name="password_change",
    ),
    path(
        "accounts/password_change/done/",
        auth_views.PasswordChangeDoneView.as_view(),
        name="password_change_done",
    ),
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
    # The split view serves its initialiser as a script file: no inline script (CSP).
    path(
        "api/v1/docs/",
        SpectacularSwaggerSplitView.as_view(url_name="api-schema"),
        name="api-docs",
    ),
]
