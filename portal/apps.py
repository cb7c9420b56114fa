from django.apps import AppConfig


class PortalConfig(AppConfig):
    """The project itself: roles, pages shared by every app, management commands."""

    name = "portal"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Make the Celery app current, so shared tasks are sent with its configuration.
        from portal.celery import app  # noqa: F401
