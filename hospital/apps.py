from importlib import import_module

from django.apps import AppConfig
from django.apps import apps as global_apps
from django.db.models.signals import post_migrate

#: Data that every installation has (roles, presets, default types and policies), created by
#: these data migrations. They are idempotent, and run again after every migrate or flush (a
#: test database flush would otherwise leave the project without its roles and presets).
DEFAULT_DATA = [
    ("hospital.migrations.0003_roles", "create_roles"),
    ("tracking.migrations.0002_default_asset_types", "create_types"),
    ("environment.migrations.0002_threshold_presets", "create_presets"),
    ("alerts.migrations.0002_default_policy", "create"),
    ("workflows.migrations.0002_default_rules", "create_rules"),
    # Last: the role groups' admin permissions cover the models of every app above.
    ("hospital.roles", "grant_role_permissions"),
]


def restore_default_data(sender, using="default", **kwargs) -> None:
    for module, function in DEFAULT_DATA:
        app_label = module.split(".", 1)[0]
        if global_apps.is_installed(app_label):
            getattr(import_module(module), function)(global_apps, None)


class HospitalConfig(AppConfig):
    name = "hospital"
    verbose_name = "Hospital site"

    def ready(self) -> None:
        import_module("hospital.spatial")  # connects the index-invalidation signals
        import_module("hospital.schema")  # registers the OpenAPI auth extensions
        import_module("hospital.audit").register_models()  # the audit trail (docs/security.md)
        import_module("hospital.devices").connect_revocation_signals()
        import_module("hospital.db").register_utc_datetimes()  # before the first connection
        post_migrate.connect(restore_default_data, sender=self, dispatch_uid="wardwise-defaults")
