from django.apps import AppConfig


class IntegrationsConfig(AppConfig):
    """FHIR read API, MQTT gateway bridge, exports, utilisation reports and outbound webhooks."""

    name = "integrations"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from integrations import (  # noqa: F401  (webhook cache signals, OpenAPI auth scheme)
            events,
            schema,
        )
