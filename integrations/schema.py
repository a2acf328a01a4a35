"""OpenAPI description of the integration API key scheme (drf-spectacular)."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension


class IntegrationKeyScheme(OpenApiAuthenticationExtension):
    """Integration engines send `Authorization: Bearer wwi_<lookup>_<secret>`."""

    target_class = "integrations.keys.IntegrationKeyAuthentication"
    name = "integrationKey"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "An integration client's API key (manage.py integration_key).",
        }
