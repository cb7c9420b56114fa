from django.apps import AppConfig


class PortalConfig(AppConfig):
    """The project itself: roles, pages shared by every app, management commands."""

    name = "portal"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from portal import signals

        # Importing the Celery app makes it current, so shared tasks are sent with its configuration.
        from portal.celery import app  # noqa: F401

        signals.connect()  # sign-ins into the audit log

        # Model choice fields in the API refuse a value repeating at most a few dozen characters
        # of it (portal.api.ChoiceField), like the explicit ones.
        from rest_framework import serializers

        from portal.api import ChoiceField

        serializers.ModelSerializer.serializer_choice_field = ChoiceField
