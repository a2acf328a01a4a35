"""OpenAPI descriptions of the project's own authentication schemes (drf-spectacular)."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension


class DeviceTokenScheme(OpenApiAuthenticationExtension):
    """Gateways and sensors send `Authorization: Token ww_<lookup>_<secret>`."""

    target_class = "hospital.devices.DeviceTokenAuthentication"
    name = "deviceToken"

    def get_security_definition(self, auto_schema):
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": "A gateway or sensor token: `Token ww_<lookup>_<secret>`.",
        }
