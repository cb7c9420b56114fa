from django.apps import AppConfig


class PortalConfig(AppConfig):
    """The roof: settings, URLs, the ASGI and Celery apps, home pages, runportal, the demo."""

    name = "portal"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Importing the Celery app makes it current, so shared tasks are sent with its configuration.
        from portal.celery import app  # noqa: F401
