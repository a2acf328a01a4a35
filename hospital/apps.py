from importlib import import_module

from django.apps import AppConfig


class HospitalConfig(AppConfig):
    name = "hospital"
    verbose_name = "Hospital site"

    def ready(self) -> None:
        import_module("hospital.spatial")  # connects the index-invalidation signals
        import_module("hospital.schema")  # registers the OpenAPI auth extensions
