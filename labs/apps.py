from django.apps import AppConfig


class LabsConfig(AppConfig):
    """Runtime: operations on vCenter, and (later) labs, their VMs and snapshots."""

    name = "labs"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Register the operation kinds with the runner.
        from courses.usage import register_usage_source
        from labs import jobs, quotas  # noqa: F401

        register_usage_source(quotas.course_usage, quotas.student_usage)
