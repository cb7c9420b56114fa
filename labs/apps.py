from django.apps import AppConfig


class LabsConfig(AppConfig):
    """Runtime: operations on vCenter, and (later) labs, their VMs and snapshots."""

    name = "labs"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Register the operation kinds with the runner.
        from labs import jobs  # noqa: F401
