from importlib import import_module

from django.apps import AppConfig


class WorkflowsConfig(AppConfig):
    name = "workflows"
    verbose_name = "Equipment workflows"

    def ready(self) -> None:
        import_module("workflows.hooks")  # status history, zone-change and presence listeners
