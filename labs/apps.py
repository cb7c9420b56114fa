from django.apps import AppConfig


class LabsConfig(AppConfig):
    """Runtime: operations on vCenter, and (later) labs, their VMs and snapshots."""

    name = "labs"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Register the operation kinds with the runner.
        from courses.services import register_template_source_check
        from courses.usage import register_usage_source
        from labs import jobs, quotas, selectors, template_sources  # noqa: F401

        register_usage_source(
            quotas.course_usage,
            quotas.student_usage,
            class_summary=lambda course: selectors.class_summaries([course.pk])[course.pk],
        )
        register_template_source_check(template_sources.source_refusal)
