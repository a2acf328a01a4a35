"""Routes of the FHIR API, included under /fhir/ by hospital.urls (no trailing slashes, as FHIR
clients build them)."""

from django.urls import path

from integrations.fhir import views

urlpatterns = [
    path("metadata", views.MetadataView.as_view(), name="fhir-metadata"),
    path("<str:resource_type>", views.SearchView.as_view(), name="fhir-search"),
    path("<str:resource_type>/<str:ident>", views.ReadView.as_view(), name="fhir-read"),
]
