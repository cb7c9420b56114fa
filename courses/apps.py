from django.apps import AppConfig


class CoursesConfig(AppConfig):
    """Configuration: vCenter endpoints, templates, courses, enrollments and quotas."""

    name = "courses"
    default_auto_field = "django.db.models.BigAutoField"
