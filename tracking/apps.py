from django.apps import AppConfig


class TrackingConfig(AppConfig):
    name = "tracking"
    verbose_name = "Equipment tracking"

    def ready(self) -> None:
        # Connects the signals that keep each process's zone -> scanner coverage current,
        # whichever process (web, worker, management command) edits the site.
        from tracking import quality  # noqa: F401
