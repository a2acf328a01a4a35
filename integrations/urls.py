"""Report routes, included under /api/v1/ by hospital.urls."""

from django.urls import path

from integrations import views

urlpatterns = [
    path("reports/utilisation/", views.UtilisationView.as_view(), name="report-utilisation"),
]
