from django.apps import AppConfig


class LabsConfig(AppConfig):
    """Runtime: labs, their VMs and snapshots, and the operations that change them in vCenter."""

    name = "labs"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Register the operation kinds with the runner.
        from core.audit import register_object_kind
        from courses.services import register_template_source_check
        from courses.usage import register_usage_source
        from labs import capacity, dispatch, jobs, quotas, selectors, template_sources  # noqa: F401

        register_usage_source(
            quotas.course_usage,
            quotas.student_usage,
            class_summary=lambda course: selectors.class_summaries([course.pk])[course.pk],
        )
        register_template_source_check(template_sources.source_refusal)
        # Builds admitted by a slot given back or a build done go to a builder (labs.dispatch).
        capacity.on_builds_admitted(dispatch.builds_admitted)
        register_object_kind("labs.Lab", kind="lab", words="lab", url_kwarg="lab_id")
        register_object_kind("labs.Operation", kind="operation", words="operation", url_kwarg="operation_id")
        register_object_kind("labs.LabSnapshot", kind="snapshot", words="snapshot")
