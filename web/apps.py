from django.apps import AppConfig
from django.contrib.admin.apps import AdminConfig


class WebConfig(AppConfig):
    name = "web"
    verbose_name = "Web pages"


class WardwiseAdminConfig(AdminConfig):
    """The Django admin, open only to staff with an equipment or facilities role."""

    default_site = "web.admin_site.WardwiseAdminSite"
